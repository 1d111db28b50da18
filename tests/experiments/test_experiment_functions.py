"""Experiment building blocks: corruptions, interpolation, attribute arithmetic, post-processing."""

import numpy as np
import pytest
import torch

from facegen.config import ConfigError, load
from facegen.experiments import run_experiment
from facegen.experiments.attributes import attribute_vector, shift
from facegen.experiments.common import tile
from facegen.experiments.selection import selected_runs
from facegen.experiments.interpolation import corner_matrix, lerp, slerp
from facegen.experiments.postprocess import dehaze, pipeline_stages
from facegen.experiments.restoration import add_noise, center_mask, random_squares_mask, vae_restore
from facegen.models import build_model


@pytest.mark.parametrize("sigma", [0.1, 0.2, 0.3])
def test_noise_hits_the_requested_level(sigma):
    x = np.full((64, 32, 32, 3), 0.5)
    noisy = add_noise(x, sigma, np.random.default_rng(0))
    added = np.random.default_rng(0).normal(0, sigma, x.shape)  # the same draw, before clipping
    assert np.allclose(noisy, np.clip(x + added, 0, 1))
    assert added.std() == pytest.approx(sigma, rel=0.01)
    assert noisy.min() >= 0 and noisy.max() <= 1
    if sigma <= 0.1:  # clipping at 0/1 is negligible 5 sigma away
        assert (noisy - x).std() == pytest.approx(sigma, rel=0.01)


@pytest.mark.parametrize("size, fraction", [(32, 0.25), (64, 0.25), (64, 0.09)])
def test_centre_mask_area(size, fraction):
    mask = center_mask(size, fraction)
    assert mask.mean() == pytest.approx(fraction, abs=2 / size)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert abs(rows[0] + rows[-1] - (size - 1)) <= 1 and abs(cols[0] + cols[-1] - (size - 1)) <= 1  # centred


def test_random_squares_area():
    size, n, fraction = 64, 5, 0.04
    mask = random_squares_mask(size, n, fraction, np.random.default_rng(1))
    one = random_squares_mask(size, 1, fraction, np.random.default_rng(1))
    assert one.mean() == pytest.approx(fraction, abs=2 / size)
    assert fraction <= mask.mean() <= n * fraction + 1e-9


def test_interpolation_endpoints_and_corners():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(8, generator=g), torch.randn(8, generator=g)
    t = torch.linspace(0, 1, 5)
    for fn in (lerp, slerp):
        path = fn(z0, z1, t)
        assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    # slerp keeps the norm of equal-norm endpoints
    a, b = z0 / z0.norm(), z1 / z1.norm()
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(5), atol=1e-5)
    corners = torch.randn(4, 8, generator=g)
    grid = corner_matrix(corners, 4).reshape(4, 4, 8)
    assert torch.allclose(grid[0, 0], corners[0]) and torch.allclose(grid[0, -1], corners[1])
    assert torch.allclose(grid[-1, 0], corners[2]) and torch.allclose(grid[-1, -1], corners[3])


def test_interpolation_endpoints_decode_to_the_endpoint_images():
    torch.manual_seed(0)
    model = build_model("vae", 32, latent_dim=8, channels=[8, 16]).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        frames = model.decode(lerp(z[0], z[1], torch.linspace(0, 1, 4)))
        assert torch.allclose(frames[0], model.decode(z[:1])[0], atol=1e-6)
        assert torch.allclose(frames[-1], model.decode(z[1:])[0], atol=1e-6)


def test_attribute_arithmetic_is_linear():
    g = torch.Generator().manual_seed(1)
    has = (torch.rand(200, generator=g) > 0.5).numpy().astype(float)
    direction = torch.randn(6, generator=g)
    z = torch.randn(200, 6, generator=g) * 0.01 + torch.as_tensor(has)[:, None].float() * direction
    v = attribute_vector(z, has)
    assert torch.allclose(v, direction, atol=0.01)
    assert torch.allclose(attribute_vector(z, 1 - has), -v)
    assert torch.allclose(shift(shift(z, v, 0.7), v, -1.9), shift(z, v, -1.2), atol=1e-6)
    assert torch.equal(shift(z, v, 0), z)
    with pytest.raises(ValueError, match="with and without"):
        attribute_vector(z, np.ones(200))


NEUTRAL = {"saturation": 1.0, "contrast": 1.0, "dehaze_omega": 0.0, "dehaze_window": 3, "bilateral_sigma_color": 0.0,
           "bilateral_sigma_spatial": 1.0, "unsharp_radius": 1.0, "unsharp_amount": 0.0}


def test_post_processing_steps_are_identities_at_neutral_parameters():
    x = np.random.default_rng(2).random((3, 16, 16, 3))
    stages = pipeline_stages(x, NEUTRAL)
    assert [n for n, _ in stages] == ["none", "saturation/contrast", "dehaze", "bilateral", "unsharp"]
    for _, out in stages:
        assert np.array_equal(out, x)


def test_each_post_processing_step_acts_when_switched_on():
    x = np.random.default_rng(3).random((2, 16, 16, 3)) * 0.6 + 0.2
    for key, value in [("saturation", 1.5), ("contrast", 1.3), ("dehaze_omega", 0.8), ("bilateral_sigma_color", 0.1),
                       ("unsharp_amount", 1.0)]:
        stages = pipeline_stages(x, {**NEUTRAL, key: value})
        assert not np.array_equal(stages[-1][1], x), key
        assert stages[-1][1].min() >= 0 and stages[-1][1].max() <= 1
    hazy = 0.5 * x + 0.4  # a uniform veil: dehazing lowers the dark channel
    assert dehaze(hazy[0], 0.9, 3).min(axis=2).mean() < hazy[0].min(axis=2).mean()


def test_inpainting_keeps_known_pixels():
    torch.manual_seed(0)
    model = build_model("vae", 16, latent_dim=4, channels=[8, 16]).eval()
    x = np.random.default_rng(4).random((2, 16, 16, 3))
    mask = center_mask(16, 0.25)
    masked = np.where(mask[None, :, :, None], 0.0, x)
    out = vae_restore(model, masked, mask, iterations=3)
    assert np.array_equal(out[:, ~mask], x[:, ~mask])
    assert out.shape == x.shape and not np.array_equal(out[:, mask], masked[:, mask])


def test_tile_layout():
    imgs = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    out = tile(imgs, 3, pad=1)
    assert out.shape == (2 * 3 - 1, 3 * 3 - 1, 3)
    assert np.array_equal(out[:2, :2], imgs[0]) and np.array_equal(out[3:5, 3:5], imgs[4])
    assert (out[3:5, 6:8] == 255).all()  # the empty sixth cell


def test_unknown_runs_and_experiments_are_clear_errors(tmp_path):
    config = load({"results_dir": str(tmp_path), "data": {"datasets": {"synthetic": {"kind": "synthetic"}}},
                   "models": {"vae": {"arch": "vae"}},
                   "experiments": [{"datasets": ["synthetic"], "resolutions": [32], "models": ["vae"]}],
                   "latent_experiments": {"runs": ["synthetic/32/vae/0", "synthetic/32/gan/0"]}})
    with pytest.raises(ConfigError, match=r"names \['synthetic/32/gan/0'\].*trained runs: synthetic/32/vae/0"):
        selected_runs(config)
    with pytest.raises(ValueError, match="unknown experiment 'smile'; choose from grids"):
        run_experiment("smile", config, tmp_path)


def test_smoothing_and_sharpening_move_sharpness_the_right_way():
    from scipy.ndimage import gaussian_filter

    from facegen.experiments.postprocess import bilateral, unsharp
    from facegen.metrics.pixel_quality import laplacian_variance

    rng = np.random.default_rng(5)
    base = gaussian_filter(rng.random((24, 24, 3)), sigma=(1.5, 1.5, 0))
    im = (base - base.min()) / (base.max() - base.min())
    smooth, sharp = bilateral(im, 0.2, 1.0), unsharp(im, 1.0, 1.0)
    lap = lambda a: laplacian_variance(a[None])[0]  # noqa: E731
    assert lap(smooth) < lap(im) < lap(sharp)
    expected = np.clip(im + (im - gaussian_filter(im, sigma=(1, 1, 0), mode="reflect", truncate=4.0)), 0, 1)
    assert np.abs(sharp - expected).max() < 1e-6  # unsharp = x + amount (x - blur), per channel, clipped


def test_an_attribute_without_a_vector_is_reported_not_skipped():
    import pandas as pd

    from facegen.report.sections.experiments import _statements

    table = pd.DataFrame([{"run": "r", "attribute": "Smiling", "alpha": float("nan"), "n_test": 4, "p_attribute": float("nan"),
                           "note": "unavailable: an attribute vector needs faces with and without the attribute among 8 training faces",
                           "leakage": float("nan")}])
    assert _statements("attributes", table) == [f"r, Smiling: {table['note'][0]}."]
