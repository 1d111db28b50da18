"""The hierarchical (Ladder / NVAE-style) VAE: shapes, ranges, per-layer KL, warm-up, learning, determinism."""

import contextlib

import pytest
import torch

from facegen.models import StepContext, build_model
from facegen.models.hvae import LadderVAE

SMALL = dict(channels=(8, 16, 16), latent_channels=4)


def ctx_at(progress: float, total: int = 100) -> StepContext:
    return StepContext(epoch=0, epochs=1, step=int(round(progress * total)), steps_per_epoch=total,
                       autocast=contextlib.nullcontext)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Learnable structure (smooth colour fields) rather than incompressible noise."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_ranges(size):
    torch.manual_seed(0)
    m = build_model("hvae", size, **SMALL)
    assert isinstance(m, LadderVAE) and m.family == "vae"
    assert m.n_latent_layers >= 2
    m.eval()
    x = images(4, size)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (4, m.latent_dim)
    assert m.latent_dim == 4 * m.top_resolution ** 2  # top latent only
    outs = {
        "decode": m.decode(mu),
        "decode_t": m.decode(torch.randn(4, m.latent_dim), temperature=0.7),
        "sample": m.sample(5, generator=torch.Generator().manual_seed(1)),
        "sample_t0": m.sample(5, temperature=0.0),
        "reconstruct": m.reconstruct(x),
        "reconstruct_stoch": m.reconstruct(x, deterministic=False),
    }
    for name, out in outs.items():
        assert out.shape[1:] == (3, size, size), name
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, name
    assert outs["sample"].shape[0] == 5
    # Lower layers sit at finer resolutions than the top one.
    assert m.layer_res[-1] == m.top_resolution and m.layer_res[0] > m.top_resolution
    kl = m.kl_per_layer(x)
    assert kl.shape == (4, m.n_latent_layers) and (kl >= -1e-4).all()


def test_default_size_is_small():
    for size in (32, 64):
        m = build_model("hvae", size)
        assert sum(p.numel() for p in m.parameters()) < 2_000_000
        assert m.n_latent_layers >= 2


def test_loss_keys_and_per_layer_kl_sum():
    torch.manual_seed(0)
    m = build_model("hvae", 32, n_latent_layers=3, **SMALL)
    parts = m.loss(images(6, 32), None, ctx_at(0.5))
    want = {"loss", "recon", "kl", "beta"} | {f"kl_{i}" for i in range(3)}
    assert want <= set(parts)
    assert "kl_3" not in parts
    total = sum(parts[f"kl_{i}"] for i in range(3))
    assert torch.allclose(total, parts["kl"], rtol=1e-5, atol=1e-4)
    for v in parts.values():
        assert v.dim() == 0 and torch.isfinite(v)
    assert all(parts[f"kl_{i}"] >= -1e-4 for i in range(3))
    x = images(6, 32)
    # recon is the per-pixel MSE on [0, 1] of a reconstruction, so at most 1.
    assert 0 <= parts["recon"] <= 1
    # with beta = 1 after warm-up and fixed sigma, loss = SE / (2 sigma^2) + KL (per sample)
    torch.manual_seed(3)
    p1 = m.loss(x, None, ctx_at(1.0))
    n_pix = 3 * 32 * 32
    expected = p1["recon"] * n_pix / (2 * m.obs_sigma ** 2) + p1["kl"]
    assert torch.allclose(p1["loss"], expected, rtol=1e-4)


def test_two_layers_minimum_and_more_layers():
    with pytest.raises(ValueError):
        build_model("hvae", 32, n_latent_layers=1)
    m = build_model("hvae", 32, n_latent_layers=4, **SMALL)  # extra layer shares the finest scale
    parts = m.loss(images(2, 32), None, ctx_at(1.0))
    assert {f"kl_{i}" for i in range(4)} <= set(parts)
    assert m.sample(2).shape == (2, 3, 32, 32)


def test_beta_warmup_schedule():
    m = build_model("hvae", 32, beta=2.0, warmup=0.4, beta_floor=0.0, **SMALL)
    x = images(2, 32)
    assert m.beta_at(0.0) == 0.0
    assert m.beta_at(0.2) == pytest.approx(1.0)
    assert m.beta_at(0.4) == pytest.approx(2.0)
    assert m.beta_at(0.9) == pytest.approx(2.0)
    assert float(m.loss(x, None, ctx_at(0.0))["beta"]) == 0.0
    assert float(m.loss(x, None, ctx_at(0.5))["beta"]) == pytest.approx(2.0)
    floored = build_model("hvae", 32, beta=1.0, warmup=0.3, **SMALL)
    assert 0 <= floored.beta_at(0.0) < 1e-2  # the default small floor
    assert floored.beta_at(0.15) == pytest.approx(0.5, abs=1e-3)
    assert floored.beta_at(0.3) == pytest.approx(1.0)
    assert build_model("hvae", 32, warmup=0.0, **SMALL).beta_at(0.0) == 1.0


def test_free_bits_change_objective_not_reported_kl():
    torch.manual_seed(0)
    m = build_model("hvae", 32, free_bits=1e6, **SMALL)
    x = images(2, 32)
    torch.manual_seed(1)
    with torch.no_grad():
        p = m.loss(x, None, ctx_at(1.0))
    # every layer is below the (huge) floor, so the KL part of the objective is L * free_bits
    kl_obj = p["loss"] - p["recon"] * 3 * 32 * 32 / (2 * m.obs_sigma ** 2)
    assert float(kl_obj) == pytest.approx(m.n_latent_layers * 1e6, rel=1e-4)
    assert float(p["kl"]) < 1e5


def test_encode_matches_top_posterior_and_decode_matches_prior_mean_sample():
    torch.manual_seed(0)
    m = build_model("hvae", 32, **SMALL).eval()
    x = images(3, 32)
    with torch.no_grad():
        mu, logvar = m.encode(x)
        top = m.encode_all(x)[-1]
        assert torch.allclose(mu, top["mu_q"].flatten(1), atol=1e-6)
        assert torch.allclose(logvar, top["logvar_q"].flatten(1), atol=1e-6)
        # all-prior-means generation == decoding the top prior mean (zero) with lower prior means
        assert torch.allclose(m.sample(2, temperature=0.0), m.decode(torch.zeros(2, m.latent_dim)), atol=1e-6)


def test_bf16_autocast_loss_is_finite():
    torch.manual_seed(0)
    m = build_model("hvae", 32, **SMALL)
    ctx = StepContext(epoch=0, epochs=1, step=50, steps_per_epoch=100,
                      autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    opt = {"model": torch.optim.Adam(m.parameters(), lr=1e-3)}
    logs = m.train_step(smooth_images(4, 32), None, opt, ctx)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs


def test_deterministic_reconstruct_is_repeatable():
    torch.manual_seed(0)
    m = build_model("hvae", 32, **SMALL).eval()
    x = images(3, 32)
    assert torch.equal(m.reconstruct(x), m.reconstruct(x))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(m.sample(3, generator=g1), m.sample(3, generator=g2))
    z = torch.randn(3, m.latent_dim)
    assert torch.equal(m.decode(z), m.decode(z))


def _train(m, x, steps, lr=2e-3):
    opt = {name: torch.optim.Adam(ps, lr=lr) for name, ps in m.param_groups().items()}
    logs = []
    for s in range(steps):
        # progress past the warm-up: full beta
        ctx = StepContext(epoch=0, epochs=1, step=80 + s, steps_per_epoch=100, autocast=contextlib.nullcontext)
        logs.append(m.train_step(x, None, opt, ctx))
    return logs


def test_training_lowers_loss():
    torch.manual_seed(0)
    m = build_model("hvae", 32, **SMALL)
    x = smooth_images(8, 32, seed=2)
    logs = _train(m, x, 30)
    first = sum(l["loss"] for l in logs[:3]) / 3
    last = sum(l["loss"] for l in logs[-3:]) / 3
    assert all(torch.isfinite(torch.tensor(l["loss"])) for l in logs)
    assert last < 0.8 * first, (first, last)
    assert logs[-1]["beta"] == pytest.approx(1.0)
    assert {"kl_0", "kl_1", "kl_2", "grad_norm"} <= set(logs[-1])


def test_same_seed_same_weights():
    def run():
        torch.manual_seed(123)
        m = build_model("hvae", 32, **SMALL)
        _train(m, images(4, 32, seed=7), 3)
        return m.state_dict()

    a, b = run(), run()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_bad_hyperparameters():
    with pytest.raises(ValueError):
        build_model("hvae", 32, top_resolution=32)
    with pytest.raises(ValueError):
        build_model("hvae", 32, latent_channels=[4, 4])  # wrong length for 3 layers
    with pytest.raises(ValueError):
        build_model("hvae", 32, nonsense=1)
