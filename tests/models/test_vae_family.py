"""The FC-HVAE replica and the conv VAE family, built the way configs build them: by registry name."""

import contextlib
import math

import pytest
import torch
from torch import nn

from facegen.models import build_model
from facegen.models.base import StepContext, gaussian_kl

N_COND = 5
ARCHS = {"fc_hvae": {}, "vae": {}, "beta_vae": {"latent_dim": 4, "beta": 0.01}, "cvae": {"n_cond": N_COND}}
# Narrow conv nets at 16x16 for the tests that train: they check the step, not the capacity.
SMALL = {"fc_hvae": {}, "vae": {"channels": (8, 16, 32, 64), "latent_dim": 16},
         "beta_vae": {"channels": (8, 16, 32, 64)}, "cvae": {"channels": (8, 16, 32, 64), "latent_dim": 16}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: a second intra-op thread only adds spin-waiting, which turns
    # pathological when other processes share the 2 cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build(arch, size=32, **extra):
    torch.manual_seed(0)
    return build_model(arch, size, **{**ARCHS[arch], **extra})


def cond(arch, n):
    return torch.eye(N_COND)[torch.arange(n) % N_COND] if arch == "cvae" else None


def faces(n=8, size=32, seed=0):
    """Smooth, face-like structure (gradients and blobs) that a small model can fit quickly."""
    g = torch.Generator().manual_seed(seed)
    r = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    imgs = []
    for _ in range(n):
        c = torch.rand(3, 3, generator=g)
        cx, cy, w = (torch.rand(3, generator=g) - 0.5).tolist()
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.2 + 0.3 * abs(w)))
        imgs.append(c[:, 0, None, None] * blob + c[:, 1, None, None] * (xx + 1) / 2 * (1 - blob) + 0.1 * c[:, 2, None, None])
    return torch.stack(imgs).clamp(0, 1)


def ctx(step=0, steps=30):
    return StepContext(epoch=0, epochs=1, step=step, steps_per_epoch=steps, autocast=contextlib.nullcontext)


def train(model, x, y, steps, lr=1e-3):
    opt = {"model": torch.optim.Adam(model.parameters(), lr=lr)}
    model.train()
    return [model.train_step(x, y, opt, ctx(i, steps)) for i in range(steps)]


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_shapes_ranges_and_loss_keys(arch, size):
    model = build(arch, size)
    x, y = faces(4, size), cond(arch, 4)
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (4, model.latent_dim)
    out = model.decode(torch.randn(4, model.latent_dim), y)
    assert out.shape == (4, 3, size, size)
    assert 0 <= out.min() and out.max() <= 1
    model.eval()
    s = model.sample(3, cond(arch, 3), torch.Generator().manual_seed(1))
    assert s.shape == (3, 3, size, size) and 0 <= s.min() and s.max() <= 1
    parts = model.loss(x, y, ctx())
    assert {"loss", "recon", "kl"} <= set(parts)
    assert all(v.dim() == 0 and math.isfinite(float(v.detach())) for v in parts.values())
    # 'recon' is always the per-pixel MSE on [0, 1]: bounded by 1 whatever the optimised likelihood.
    assert 0 < float(parts["recon"].detach()) < 1 and float(parts["kl"].detach()) >= 0


def test_fc_hvae_layers_match_the_paper():
    model = build("fc_hvae", 32)
    enc = [(m.in_features, m.out_features) for m in model.encoder if isinstance(m, nn.Linear)]
    assert enc == [(3072, 512), (512, 256), (256, 128)]
    assert (model.fc_mu.in_features, model.fc_mu.out_features) == (128, 128)
    assert (model.fc_logvar.in_features, model.fc_logvar.out_features) == (128, 128)
    dec = [(m.in_features, m.out_features) for m in model.decoder if isinstance(m, nn.Linear)]
    assert dec == [(128, 128), (128, 256), (256, 512), (512, 3072)]
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 9
    # tanh after every hidden layer, sigmoid only at the output, nothing else
    acts = [type(m) for m in model.modules() if isinstance(m, (nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Sigmoid))]
    assert acts == [nn.Tanh] * 3 + [nn.Tanh] * 3 + [nn.Sigmoid]
    assert model.beta == 0.01 and model.latent_dim == 128


def test_fc_hvae_loss_is_paper_normalised():
    model = build("fc_hvae", 32)
    x = faces(4)
    torch.manual_seed(3)
    parts = model.loss(x, None, ctx())
    assert torch.allclose(parts["loss"], parts["recon"] + 0.01 * parts["kl"])
    assert torch.allclose(parts["kl_per_dim"] * 128, parts["kl"])
    # the KL is the textbook per-sample sum over latent dims, averaged over the batch
    mu, logvar = model.encode(x)
    assert torch.allclose(parts["kl"], gaussian_kl(mu, logvar).mean())


def test_fc_hvae_summed_reconstruction_is_the_per_image_sum():
    model = build("fc_hvae", 32, recon_reduction="sum")
    x = faces(4)
    torch.manual_seed(3)
    parts = model.loss(x, None, ctx())
    torch.manual_seed(3)
    mu, logvar = model.encode(x)
    x_hat = model.decode(model.reparameterize(mu, logvar))
    sse = (x_hat - x).pow(2).sum((1, 2, 3)).mean()
    assert torch.allclose(parts["loss"], sse + 0.01 * parts["kl"], rtol=1e-5)
    assert torch.allclose(parts["recon"], (x_hat - x).pow(2).mean())  # logged per pixel either way


def test_kl_known_answers():
    assert torch.equal(gaussian_kl(torch.zeros(2, 7), torch.zeros(2, 7)), torch.zeros(2))
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    assert torch.allclose(gaussian_kl(torch.ones(3, 4), torch.zeros(3, 4)), torch.full((3,), 2.0))


@pytest.mark.parametrize("recon_loss", ["mse", "bce"])
def test_conv_vae_objective_is_a_per_image_sum(recon_loss, monkeypatch):
    model = build("vae", 32, beta=0.5, recon_loss=recon_loss)
    x = faces(4)
    mu, logvar = torch.zeros(4, 128), torch.zeros(4, 128)
    monkeypatch.setattr(model, "encode", lambda x, y=None: (mu, logvar))
    torch.manual_seed(0)
    parts = model.loss(x, None, ctx())
    torch.manual_seed(0)
    x_hat = model.decode(model.reparameterize(mu, logvar))
    per_pixel = (x_hat - x).pow(2) if recon_loss == "mse" else nn.functional.binary_cross_entropy(x_hat, x, reduction="none")
    expected = per_pixel.sum((1, 2, 3)).mean()
    assert torch.allclose(parts["recon_nll"], expected, rtol=1e-4)
    assert float(parts["kl"]) == 0.0  # mu = 0, logvar = 0 is the prior itself
    assert torch.allclose(parts["loss"], parts["recon_nll"])
    assert torch.allclose(parts["recon"], (x_hat - x).pow(2).mean())


@pytest.mark.parametrize("arch", ["fc_hvae", "vae", "cvae"])
def test_reconstruct_modes(arch):
    model = build(arch).eval()
    x, y = faces(2), cond(arch, 2)
    assert torch.equal(model.reconstruct(x, y), model.reconstruct(x, y))
    a = model.reconstruct(x, y, deterministic=False, generator=torch.Generator().manual_seed(1))
    b = model.reconstruct(x, y, deterministic=False, generator=torch.Generator().manual_seed(2))
    a2 = model.reconstruct(x, y, deterministic=False, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, b) and torch.equal(a, a2)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_train_steps_fit_a_batch(arch):
    model = build(arch, 16, **SMALL[arch])
    x, y = faces(8, 16), cond(arch, 8)
    logs = train(model, x, y, 30)
    assert all(math.isfinite(v) for log in logs for v in log.values())
    first, last = logs[0], logs[-1]
    assert last["loss"] < 0.8 * first["loss"], (first, last)
    assert last["recon"] < first["recon"]


def test_training_is_deterministic():
    x = faces(8, 16)
    params = []
    for _ in range(2):
        model = build("vae", 16, **SMALL["vae"])
        torch.manual_seed(123)  # the reparameterisation noise
        train(model, x, None, 3)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*params)


def test_cvae_needs_y_and_uses_it():
    model = build("cvae").eval()
    with pytest.raises(ValueError, match=r"\by\b"):
        model.sample(4)
    with pytest.raises(ValueError, match=r"\by\b"):
        model.encode(faces(2))
    with pytest.raises(ValueError, match="shape"):
        model.sample(4, torch.zeros(4, N_COND + 1))
    z = torch.randn(4, model.latent_dim)
    y0, y1 = torch.eye(N_COND)[[0] * 4], torch.eye(N_COND)[[3] * 4]
    assert not torch.allclose(model.decode(z, y0), model.decode(z, y1))
    # one condition row is shared by the whole batch: n faces of one group
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(model.sample(4, torch.eye(N_COND)[3], g()), model.sample(4, y1, g()))
    assert not torch.equal(model.sample(4, y0, g()), model.sample(4, y1, g()))
    assert model.conditional and not build("vae").conditional


@pytest.mark.parametrize("arch", list(ARCHS))
def test_bad_hyperparameters_raise(arch):
    with pytest.raises(ValueError):
        build(arch, 48)
    with pytest.raises(ValueError):
        build(arch, 32, no_such_option=1)


def test_bad_options_raise():
    with pytest.raises(ValueError):
        build("vae", 32, recon_loss="l1")
    with pytest.raises(ValueError):
        build("fc_hvae", 32, activation="swish")
    with pytest.raises(ValueError, match="recon_reduction"):
        build("fc_hvae", 32, recon_reduction="median")
    with pytest.raises(ValueError):
        build("beta_vae", 32, beta=-1.0)
    with pytest.raises(ValueError):
        build("fc_hvae", 32, latent_dim=0)
    with pytest.raises(ValueError):
        build_model("cvae", 32, n_cond=0)
    with pytest.raises(ValueError):
        build_model("cvae", 32)  # n_cond is required
