"""LPIPS against the lpips package's own module, and the KL / IWAE likelihood estimates."""

import numpy as np
import pandas as pd
import pytest
import torch

from facegen.metrics import likelihood
from facegen.metrics import lpips as lp
from facegen.models import build_model
from facegen.models.base import gaussian_kl


@pytest.fixture(scope="module")
def model(real_weights_dir):
    return lp.LPIPS(real_weights_dir)


@pytest.fixture(scope="module")
def real_weights_dir():
    from test_pretrained import get_real_weights
    return get_real_weights()


def pairs(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    return x, (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_matches_the_reference_lpips_package(model):
    import lpips

    ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False, model_path=str(lp.linear_heads_path()))
    ours_convs = [m for m in model.net.features if isinstance(m, torch.nn.Conv2d)]
    ref_convs = [m for s in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5)
                 for m in s if isinstance(m, torch.nn.Conv2d)]
    for a, b in zip(ours_convs, ref_convs, strict=True):  # the same ImageNet backbone in both
        b.weight.data.copy_(a.weight.data)
        b.bias.data.copy_(a.bias.data)
    x, y = pairs()
    with torch.no_grad():
        expected = ref(x, y, normalize=True).flatten()
        got = model(x, y)
    assert torch.allclose(got, expected, atol=1e-6)
    assert (got > 0).all()


def test_identity_symmetry_and_order(model):
    x, y = pairs(seed=1)
    with torch.no_grad():
        assert torch.allclose(model(x, x), torch.zeros(len(x)), atol=1e-7)
        assert torch.allclose(model(x, y), model(y, x), atol=1e-6)
        far = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
        assert (model(x, far) > model(x, y)).all()


def test_distances_and_diversity(model):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    assert np.allclose(lp.distances(model, a, a), 0, atol=1e-7)
    same = np.repeat(a[:1], 6, axis=0)
    assert lp.diversity(model, same, pairs=20) == pytest.approx(0, abs=1e-7)
    assert lp.diversity(model, a, pairs=20) > 0.05
    with pytest.raises(ValueError, match="same shape"):
        lp.distances(model, a, a[:3])
    with pytest.raises(ValueError, match="at least 2"):
        lp.diversity(model, a[:1])


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return build_model("vae", 32, latent_dim=8, channels=[8, 16, 32, 64]).eval()


def test_kl_per_image_is_the_posterior_kl(vae):
    x = torch.rand(5, 3, 32, 32)
    mu, logvar = vae.encode(x)
    assert np.allclose(likelihood.kl_per_image(vae, x)["kl"], gaussian_kl(mu.double(), logvar.double()).detach().numpy())


def test_iwae_tightens_with_more_samples_and_is_finite(vae):
    x = torch.rand(6, 3, 32, 32)
    # sigma2 small enough that the gain from K (about 1e-3 bits/dim) stands above one draw's noise (about 2e-4)
    one = likelihood.iwae_bits_per_dim(vae, x, None, sigma2=0.005, k=1, seed=0)
    many = likelihood.iwae_bits_per_dim(vae, x, None, sigma2=0.005, k=64, seed=0)
    assert np.isfinite(many).all() and many.mean() < one.mean()
    with pytest.raises(ValueError, match="variance must be positive"):
        likelihood.iwae_bits_per_dim(vae, x, None, sigma2=0.0)


def test_gaussian_decoder_nll_by_hand():
    """An identity "VAE" whose posterior is the prior and whose decoder ignores z: ln p(x) = ln N(x; 0.5, s2),
    scored at x + u with u uniform on the pixel's bin of width 1/255, so E(x + u - 0.5)^2 = 0.2^2 + 1 / (12 255^2)
    (to 1e-4 over 12,288 pixels)."""
    class Fixed(torch.nn.Module):
        def encode(self, x, y=None):
            return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

        def decode(self, z, y=None):
            return torch.full((len(z), 3, 64, 64), 0.5)

    x = torch.full((1, 3, 64, 64), 0.7)
    s2, d = 0.01, 3 * 64 * 64
    log_px = d * (-0.5 * np.log(2 * np.pi * s2) - (0.04 + 1 / (12 * 255 ** 2)) / (2 * s2))
    expected = (-log_px + d * np.log(255)) / (d * np.log(2))  # 8-bit values k/255: bins of width 1/255
    assert likelihood.iwae_bits_per_dim(Fixed(), x, None, s2, k=8)[0] == pytest.approx(expected, rel=1e-4)


def test_the_dequantized_bound_lies_above_the_discrete_nll():
    """A decoder whose output is a known Gaussian in each pixel: the model's probability of the 8-bit image is
    the Gaussian's mass over each pixel's bin (scipy). Near the Gaussian's peak the density at a bin's centre
    exceeds the bin's mean density, so the undequantized figure falls below the discrete NLL; the dequantized
    one does not."""
    from scipy.stats import norm

    class Fixed(torch.nn.Module):
        def encode(self, x, y=None):
            return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

        def decode(self, z, y=None):
            return torch.full((len(z), 3, 32, 32), 0.5)

    s2 = 1e-4  # sigma = 2.55 bins: pixels 126..129 lie where the density is concave
    k = torch.randint(126, 130, (4, 3, 32, 32), generator=torch.Generator().manual_seed(0)).double()
    sd = np.sqrt(s2)
    mass = norm.cdf((k.numpy() + 0.5) / 255, 0.5, sd) - norm.cdf((k.numpy() - 0.5) / 255, 0.5, sd)
    discrete = -np.log2(mass).reshape(4, -1).mean(1)
    centre = -np.log2(norm.pdf(k.numpy() / 255, 0.5, sd) / 255).reshape(4, -1).mean(1)
    assert (centre < discrete - 0.005).all()
    bound = likelihood.iwae_bits_per_dim(Fixed(), k / 255, None, s2, k=4, seed=0)
    # a bound in expectation over the one uniform draw: above on average, within its noise per image
    assert bound.mean() > discrete.mean() and (bound > discrete - 0.002).all() and (bound - discrete < 0.02).all()


def test_decoder_variance_is_fitted_on_its_own_split_not_the_scored_one():
    from facegen.evaluation.run import decoder_variance

    class Half(torch.nn.Module):
        def reconstruct(self, x, y=None, deterministic=True):
            return torch.full_like(x, 0.5)

    images = np.concatenate([np.full((4, 2, 2, 3), 255, np.uint8), np.zeros((4, 2, 2, 3), np.uint8)])
    meta = pd.DataFrame({"split": ["val"] * 4 + ["test"] * 4})
    ev = {"decoder_variance_split": "val", "n_recon": None, "seed": 0}
    assert decoder_variance(Half(), {"condition_encoding": []}, images, meta, ev) == pytest.approx(0.25)


def test_hierarchical_kl_is_the_elbos_kl_term():
    """The reported KL is the one the training objective minimises (layers above sampled from the
    posterior), not the smaller one with the layers above at their posterior means."""
    from facegen.models.base import StepContext

    torch.manual_seed(0)
    hvae = build_model("hvae", 32).eval()
    x = torch.rand(4, 3, 32, 32)
    reported = np.mean([likelihood.kl_per_image(hvae, x, seed=s)["kl"].mean() for s in range(20)])
    ctx = StepContext(0, 1, 0, 1, autocast=None)
    objective = []
    for s in range(20):
        torch.manual_seed(s)
        with torch.no_grad():
            objective.append(float(hvae.loss(x, None, ctx)["kl"]))
    assert reported == pytest.approx(np.mean(objective), rel=0.05)
    at_means = hvae.kl_per_layer(x, deterministic=True).sum(1).mean().item()
    assert abs(at_means - reported) > 0.01 * reported


def test_hierarchical_model_reports_kl_per_layer():
    torch.manual_seed(0)
    hvae = build_model("hvae", 32).eval()
    x = torch.rand(3, 3, 32, 32)
    out = likelihood.kl_per_image(hvae, x)
    layers = [k for k in out if k.startswith("kl_")]
    assert len(layers) >= 2 and np.allclose(sum(out[k] for k in layers), out["kl"])
    assert np.isfinite(likelihood.iwae_bits_per_dim(hvae, x, None, 0.05, k=2)).all()


def test_the_iwae_rows_have_the_age_mix_of_the_reconstruction_rows(vae, monkeypatch):
    """Metadata sorted by age, as UTKFace's file names sort it: the IWAE rows are a seeded draw of the scored
    reconstruction rows, not their first n_iwae (which would be the youngest faces)."""
    from scipy.stats import ks_2samp

    from facegen.evaluation import run

    monkeypatch.setattr(run.lpips_metric, "distances", lambda lp, a, b: np.zeros(len(a)))
    rng = np.random.default_rng(0)
    n = 600
    ages = np.sort(rng.integers(1, 90, n))
    meta = pd.DataFrame({"id": np.arange(n), "age": ages, "split": rng.choice(["test", "val"], n, p=[0.8, 0.2])})
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    ev = {"recon_split": "test", "n_recon": 300, "n_iwae": 60, "iwae_samples": 1, "seed": 0, "decoder_variance_split": "val"}
    table, summary = run.reconstruction_metrics(vae, {"condition_encoding": []}, images, meta, ev, None)
    scored = ages[table["row"]]
    iwae = ages[table.loc[table["iwae_bpd"].notna(), "row"]]
    assert len(iwae) == 60 and np.isfinite(summary["iwae_bpd"])
    assert ks_2samp(iwae, scored).pvalue > 0.2
    assert ks_2samp(scored[:60], scored).pvalue < 1e-6  # the first 60, as before: the youngest
