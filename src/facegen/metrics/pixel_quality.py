"""Per-image quality: reconstruction MSE/PSNR/SSIM (scikit-image) and Laplacian-variance sharpness."""

from __future__ import annotations

import numpy as np
from skimage.filters import laplace
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

# ITU-R BT.601 luma, the grayscale conversion of OpenCV's cvtColor that sharpness studies use.
LUMA = np.array([0.299, 0.587, 0.114])


def as_float01(images: np.ndarray, label: str = "images") -> np.ndarray:
    """(N, H, W, 3) uint8 or floats in [0, 1] -> float64 in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{label}: expected shape (N, H, W, 3), got {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255.0
    if images.dtype.kind != "f":
        raise ValueError(f"{label}: expected uint8 or float images, got dtype {images.dtype}")
    if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1 or not np.isfinite(images).all()):
        raise ValueError(f"{label}: float images must lie in [0, 1] (got {np.nanmin(images):.3g}..{np.nanmax(images):.3g}); "
                         "pass uint8 for 0-255 data")
    return images.astype(np.float64)


def reconstruction_errors(real: np.ndarray, recon: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image MSE (per-pixel mean on [0, 1]), PSNR (dB, data range 1) and SSIM (7x7 windows, RGB)."""
    x, y = as_float01(real, "real images"), as_float01(recon, "reconstructions")
    if x.shape != y.shape:
        raise ValueError(f"real images {x.shape} and reconstructions {y.shape} differ in shape")
    mse = np.array([mean_squared_error(a, b) for a, b in zip(x, y)])
    # A perfect reconstruction has infinite PSNR; cap it at 100 dB so that means stay finite.
    psnr = np.array([peak_signal_noise_ratio(a, b, data_range=1.0) if m > 0 else 100.0 for a, b, m in zip(x, y, mse)])
    ssim = np.array([structural_similarity(a, b, data_range=1.0, channel_axis=-1) for a, b in zip(x, y)])
    return {"mse": mse, "psnr": psnr, "ssim": ssim}


def grayscale255(images: np.ndarray) -> np.ndarray:
    return as_float01(images) @ LUMA * 255.0


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Per-image variance of the 4-neighbour Laplacian of the 0-255 grayscale image (reflected borders)."""
    return np.array([laplace(g, ksize=3).var() for g in grayscale255(images)])
