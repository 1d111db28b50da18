"""The study's two image formats and the converters the modules share: uint8 arrays (N, H, W, 3),
or (N, H, W) grayscale, as prepared and sampled; float tensors (N, C, H, W) in [0, 1], as the nets
take them. (The trainer converts on its device, and Inception takes uint8 itself.)"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]; grayscale (N, H, W) -> (N, 1, H, W).
    The copy to ``device`` moves the uint8 bytes, a quarter of the floats'."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if device is not None:
        x = x.to(device)
    x = x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.float() / 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) floats in [0, 1] -> (B, H, W, C) uint8, the study's image format."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
