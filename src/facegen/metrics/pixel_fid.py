"""The HVAE paper's pixel-space "approximate FID", by its own formula, for comparability with its 170.23.

    FID_approx = ||mu_r - mu_g||^2 + Tr(Sigma_r + Sigma_g)

computed on flattened pixels in [0, 1]. This is NOT the Frechet Inception Distance: it has no
Inception features and no -2 Tr((Sigma_r Sigma_g)^(1/2)) term, so it is reported under its own label.

Without that term it is not a distance either: it rewards a generator for having no spread. A generator
of only the mean face scores Tr(Sigma_r); a perfect generator, whose samples are real images, scores
2 Tr(Sigma_r) in expectation. ``reference_scores`` computes both on the study's data, and a lower value
says nothing about which of two generators is better.
"""

from __future__ import annotations

import numpy as np


def _flat01(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.reshape(len(images), -1).astype(np.float64) / 255.0
    if images.min() < 0 or images.max() > 1:
        raise ValueError("float images must lie in [0, 1]; pass uint8 for 0-255 data")
    return images.reshape(len(images), -1).astype(np.float64)


def approx_fid(real: np.ndarray, generated: np.ndarray) -> float:
    """||mu_r - mu_g||^2 + Tr(Sigma_r) + Tr(Sigma_g) over flattened [0, 1] pixels (N, H, W, C or any shape)."""
    r, g = _flat01(real), _flat01(generated)
    if r.shape[1] != g.shape[1]:
        raise ValueError(f"real and generated images differ in size: {r.shape[1]} vs {g.shape[1]} values per image")
    if len(r) < 2 or len(g) < 2:
        raise ValueError("approximate FID needs at least 2 real and 2 generated images")
    # Tr(Sigma) is the sum of per-pixel variances, so no D x D covariance matrix is needed.
    mean_term = float(np.sum((r.mean(0) - g.mean(0)) ** 2))
    return mean_term + float(r.var(0, ddof=1).sum() + g.var(0, ddof=1).sum())


def reference_scores(real: np.ndarray) -> dict[str, float]:
    """What the formula gives, against ``real``, for a generator of only the mean face (Tr Sigma_r, the
    mean term being 0 and Sigma_g 0) and for a perfect generator (2 Tr Sigma_r in expectation: its samples
    share the real mean and covariance)."""
    r = _flat01(real)
    if len(r) < 2:
        raise ValueError("reference scores need at least 2 real images")
    trace = float(r.var(0, ddof=1).sum())
    return {"approx_fid_pixel_mean_face": trace, "approx_fid_pixel_perfect": 2 * trace}
