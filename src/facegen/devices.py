"""Where tensors run: one choice of device for training, the feature networks and the benchmarks, at the
bottom of the package so that evaluation need not import the trainer for it."""

from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
