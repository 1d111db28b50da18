"""The training engine: determinism, resume-equivalence, divergence, collapse flags, schedules."""

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from facegen.models.base import GenerativeModel, VAEModel, gaussian_kl, pixel_mse
from facegen.training.trainer import Trainer, TrainingDiverged, TrainSettings, _lr_lambda


class TinyVAE(VAEModel):
    """Small enough to train in milliseconds; uses the global RNG (reparameterisation) like real models."""

    def __init__(self, image_size=16, latent_dim=4, nan_at_epoch=None, stop_at_epoch=None):
        super().__init__(image_size)
        d = 3 * image_size * image_size
        self.latent_dim = latent_dim
        self.enc = nn.Linear(d, 2 * latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, d), nn.Sigmoid())
        self.nan_at_epoch, self.stop_at_epoch = nan_at_epoch, stop_at_epoch

    def encode(self, x, y=None):
        return self.enc(x.flatten(1)).chunk(2, dim=1)

    def decode(self, z, y=None):
        return self.dec(z).view(-1, 3, self.image_size, self.image_size)

    def loss(self, x, y, ctx):
        if self.stop_at_epoch is not None and ctx.epoch == self.stop_at_epoch:
            raise KeyboardInterrupt("simulated kill")
        mu, logvar = self.encode(x)
        recon = self.decode(self.reparameterize(mu, logvar))
        mse = pixel_mse(recon, x)
        kl = gaussian_kl(mu, logvar).mean()
        loss = mse * 100 + kl
        if self.nan_at_epoch is not None and ctx.epoch == self.nan_at_epoch:
            loss = loss * float("nan")
        return {"loss": loss, "recon": mse, "kl": kl}


class FakeCollapsedGAN(GenerativeModel):
    family = "gan"

    def __init__(self, image_size=16):
        super().__init__(image_size)
        self.w = nn.Parameter(torch.zeros(1))

    def train_step(self, x, y, optimizers, ctx):
        return {"d_loss": 1e-4, "g_loss": 9.0, "d_real": 0.999, "d_fake": 0.0005}


def images(n=96, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def settings(**kw):
    base = dict(epochs=4, batch_size=16, lr=1e-3, betas=(0.9, 0.999), checkpoint_every=1, device="cpu")
    return TrainSettings(**{**base, **kw})


def fit(tmp, model, seed=0, monitor=None, **kw):
    torch.manual_seed(123)  # weight init is the caller's; the trainer seeds its own stream
    return Trainer(model, settings(**kw), tmp, seed).fit(images(), monitor=monitor)


def killed_after(epochs):
    """A monitor that stops a run as a kill would, once ``epochs`` epochs are checkpointed (it runs before
    the epoch's checkpoint): outside the step, so a compiled step need not trace it."""
    def monitor(model, epoch):
        if epoch == epochs:
            raise KeyboardInterrupt("simulated kill")
        return {}
    return monitor


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_weights_and_history(tmp_path):
    torch.manual_seed(1)
    m1 = TinyVAE()
    h1 = fit(tmp_path / "a", m1)
    torch.manual_seed(1)
    m2 = TinyVAE()
    h2 = fit(tmp_path / "b", m2)
    assert_same_weights(weights(m1), weights(m2))
    cols = ["loss", "recon", "kl"]
    pd.testing.assert_frame_equal(h1[cols], h2[cols])
    assert list(h1["epoch"]) == [1, 2, 3, 4]
    assert {"seconds", "img_per_s", "lr", "d_collapse"} <= set(h1.columns)
    assert h1["loss"].iloc[-1] < h1["loss"].iloc[0]


def test_other_seed_other_weights(tmp_path):
    torch.manual_seed(1)
    m1 = TinyVAE()
    fit(tmp_path / "a", m1, seed=0)
    torch.manual_seed(1)
    m2 = TinyVAE()
    fit(tmp_path / "b", m2, seed=1)
    assert not torch.equal(m1.enc.weight, m2.enc.weight)


def test_killed_run_resumes_to_identical_weights(tmp_path):
    torch.manual_seed(1)
    full = TinyVAE()
    h_full = fit(tmp_path / "full", full)

    torch.manual_seed(1)
    killed = TinyVAE(stop_at_epoch=2)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "resumed", killed)
    assert (tmp_path / "resumed" / "last.pt").exists()
    assert len(pd.read_csv(tmp_path / "resumed" / "history.csv")) == 2

    torch.manual_seed(999)  # a fresh process: different init, overwritten by the checkpoint
    resumed = TinyVAE()
    h_res = fit(tmp_path / "resumed", resumed)
    assert_same_weights(weights(full), weights(resumed))
    pd.testing.assert_frame_equal(h_full[["epoch", "loss", "kl"]], h_res[["epoch", "loss", "kl"]])


def test_compiled_training_is_deterministic_resumes_and_moves_only_the_rounding(tmp_path):
    """One small compile (seconds) serves every check: a second compile of the same run (a fresh process
    would compile again), a killed compiled run resumed in a 'fresh process', and eager training."""
    def run(name, compile="on", monitor=None, init=1):
        torch.manual_seed(init)
        model = TinyVAE()
        fit(tmp_path / name, model, compile=compile, monitor=monitor)
        assert "loss" not in vars(model)  # the compiled part is gone with the run: a plain model is saved
        return weights(model)

    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    full = run("full")
    assert counters["stats"]["unique_graphs"] == graphs + 1  # one graph, compiled once for the whole run
    torch._dynamo.reset()
    with torch._inductor.config.patch(fx_graph_cache=False), torch._functorch.config.patch(enable_autograd_cache=False):
        assert_same_weights(full, run("again"))
    with pytest.raises(KeyboardInterrupt):
        run("resumed", monitor=killed_after(2))
    assert len(pd.read_csv(tmp_path / "resumed" / "history.csv")) == 2
    assert_same_weights(full, run("resumed", init=999))  # a fresh init, overwritten by the checkpoint
    eager = run("eager", compile="off")
    for k in full:
        torch.testing.assert_close(full[k], eager[k], rtol=0, atol=1e-6)


def test_divergence_names_epoch_and_last_checkpoint(tmp_path):
    torch.manual_seed(1)
    with pytest.raises(TrainingDiverged) as info:
        fit(tmp_path, TinyVAE(nan_at_epoch=2))
    msg = str(info.value)
    assert "epoch 3" in msg and "loss=nan" in msg
    assert f"{tmp_path / 'last.pt'} (end of epoch 2)" in msg


def test_divergence_before_any_checkpoint(tmp_path):
    torch.manual_seed(1)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1.*Last good checkpoint: none yet"):
        fit(tmp_path, TinyVAE(nan_at_epoch=0))


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_discriminator_collapse_is_flagged(tmp_path):
    hist = fit(tmp_path, FakeCollapsedGAN(), epochs=2)
    assert hist["d_collapse"].tolist() == [True, True]


@pytest.mark.parametrize("schedule,epoch,factor", [("none", 5, 1.0), ("cosine", 0, 1.0), ("cosine", 5, 0.5), ("cosine", 10, 0.0), ("step", 10, 0.5), ("step", 25, 0.25)])
def test_lr_schedules(schedule, epoch, factor):
    assert math.isclose(_lr_lambda(TrainSettings(epochs=10, schedule=schedule, step_every=10))(epoch), factor, abs_tol=1e-12)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown lr schedule 'warp'; allowed: none, cosine, step"):
        _lr_lambda(TrainSettings(schedule="warp"))


def test_bf16_run(tmp_path):
    torch.manual_seed(1)
    hist = fit(tmp_path, TinyVAE(), epochs=1, precision="bf16")
    assert np.isfinite(hist["loss"]).all()


def test_balanced_resampling_evens_out_groups():
    from facegen.training.trainer import balanced_weights, epoch_order

    groups = np.array(["a"] * 900 + ["b"] * 90 + ["c"] * 10)
    order = epoch_order(len(groups), 7, balanced_weights(groups)).numpy()
    shares = pd.Series(groups[order]).value_counts(normalize=True)
    assert np.allclose(shares.sort_index().to_numpy(), [1 / 3] * 3, atol=0.05)
    assert (epoch_order(len(groups), 7, balanced_weights(groups)).numpy() == order).all()  # seeded
    assert sorted(epoch_order(50, 1).tolist()) == list(range(50))  # unbalanced: a permutation


def test_reweighting_gives_every_group_the_same_total_weight():
    from facegen.models.base import StepContext
    from facegen.training.trainer import reweighting_weights

    groups = np.array(["a"] * 90 + ["b"] * 10)
    w = reweighting_weights(groups).numpy()
    assert w.mean() == pytest.approx(1.0)
    assert w[groups == "a"].sum() == pytest.approx(w[groups == "b"].sum()) == pytest.approx(50.0)
    ctx = StepContext(0, 1, 0, 1, sample_weights=torch.tensor([3.0, 1.0]))
    assert float(ctx.mean(torch.tensor([1.0, 5.0]))) == pytest.approx((3 + 5) / 4)  # known answer
    assert float(StepContext(0, 1, 0, 1).mean(torch.tensor([1.0, 5.0]))) == 3.0


def test_gan_loss_reweights_only_when_weights_are_set():
    from facegen.models.base import StepContext
    from facegen.models.gan import bce_logits

    logits = torch.tensor([0.5, -1.0, 2.0])
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(3), reduction="none")
    assert float(bce_logits(logits, 1.0, StepContext(0, 1, 0, 1))) == pytest.approx(float(plain.mean()))
    ctx = StepContext(0, 1, 0, 1, sample_weights=torch.tensor([1.0, 0.0, 1.0]))
    assert float(bce_logits(logits, 1.0, ctx)) == pytest.approx(float((plain[0] + plain[2]) / 2))


class WeightRecordingVAE(TinyVAE):
    sample_weighting = True

    def __init__(self):
        super().__init__()
        self.seen = []

    def loss(self, x, y, ctx):
        self.seen.append(ctx.sample_weights.clone())
        return super().loss(x, y, ctx)


def test_trainer_reweights_losses_and_refuses_models_without_per_image_losses(tmp_path):
    images = (np.random.default_rng(0).random((40, 16, 16, 3)) * 255).astype(np.uint8)
    groups = np.array(["a"] * 30 + ["b"] * 10)
    model = WeightRecordingVAE()
    Trainer(model, TrainSettings(epochs=1, batch_size=8, balance_mode="reweight"), tmp_path / "r", 0).fit(images, groups=groups)
    seen = torch.cat(model.seen).numpy()
    assert len(seen) == 40 and np.allclose(np.sort(seen), [2 / 3] * 30 + [2.0] * 10)  # a permutation, weighted
    with pytest.raises(ValueError, match="balance_mode 'reweight'.*TinyVAE.*use balance_mode 'resample'"):
        Trainer(TinyVAE(), TrainSettings(epochs=1, batch_size=8, balance_mode="reweight"), tmp_path / "s", 0).fit(images, groups=groups)


def test_deterministic_setup_turns_off_cudnns_autotuner_for_a_gpu_without_touching_one(monkeypatch):
    """Only flags and the environment are set, so the CUDA branch is checked on a CPU machine too."""
    import torch

    from facegen.training.trainer import deterministic_setup

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    for flag, value in (("benchmark", True), ("deterministic", False)):
        monkeypatch.setattr(torch.backends.cudnn, flag, value)
    deterministic_setup(torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark  # the CPU leaves cuDNN alone
    deterministic_setup(torch.device("cuda"))
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_training_images_are_pinned_only_for_a_gpu():
    import numpy as np
    import torch

    from facegen.training.trainer import host_tensor

    images = np.zeros((2, 4, 4, 3), np.uint8)
    data = host_tensor(images, torch.device("cpu"))
    assert data.dtype == torch.uint8 and data.shape == (2, 4, 4, 3) and not data.is_pinned()
