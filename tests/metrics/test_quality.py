"""Reconstruction errors and Laplacian sharpness: scikit-image and hand computations."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from facegen.metrics.pixel_quality import laplacian_variance, reconstruction_errors


def images(n=3, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_mse_psnr_ssim_match_scikit_image():
    x = images()
    y = np.clip(x.astype(int) + np.random.default_rng(1).integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    out = reconstruction_errors(x, y)
    xf, yf = x / 255.0, y / 255.0
    for i in range(len(x)):
        mse = ((xf[i] - yf[i]) ** 2).mean()
        assert out["mse"][i] == pytest.approx(mse)
        assert out["psnr"][i] == pytest.approx(10 * np.log10(1 / mse))
        assert out["psnr"][i] == pytest.approx(peak_signal_noise_ratio(xf[i], yf[i], data_range=1.0))
        assert out["ssim"][i] == pytest.approx(structural_similarity(xf[i], yf[i], data_range=1.0, channel_axis=-1))


def test_perfect_reconstruction():
    x = images()
    out = reconstruction_errors(x, x.astype(np.float64) / 255)
    assert (out["mse"] == 0).all() and (out["psnr"] == 100).all() and np.allclose(out["ssim"], 1)


@pytest.mark.parametrize("recon, match", [
    (np.full((3, 16, 16, 3), 1.5), "must lie in \\[0, 1\\]"),
    (np.zeros((3, 16, 16, 3), np.int32), "expected uint8 or float"),
    (np.zeros((3, 8, 8, 3)), "differ in shape"),
    (np.zeros((3, 16, 16)), "expected shape"),
])
def test_bad_reconstruction_inputs(recon, match):
    with pytest.raises(ValueError, match=match):
        reconstruction_errors(images(), recon)


def test_laplacian_variance_by_hand():
    gray = np.array([[0, 0, 0, 0], [0, 100, 0, 0], [0, 0, 0, 50], [0, 0, 0, 0]], float)
    rgb = np.repeat(gray[None, :, :, None], 3, axis=3).astype(np.uint8)  # equal channels: luma == gray
    padded = np.pad(gray, 1, mode="symmetric")  # scipy's 'reflect' border
    lap = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * gray)
    assert laplacian_variance(rgb)[0] == pytest.approx(lap.var())
    assert laplacian_variance(np.full((1, 8, 8, 3), 77, np.uint8))[0] == 0  # flat: no edges


def test_sharper_images_score_higher():
    rng = np.random.default_rng(2)
    sharp = (rng.random((1, 32, 32, 3)) > 0.5).astype(np.uint8) * 255
    from scipy.ndimage import uniform_filter
    blurred = uniform_filter(sharp.astype(float), size=(1, 3, 3, 1)).round().astype(np.uint8)
    assert laplacian_variance(sharp)[0] > laplacian_variance(blurred)[0]
