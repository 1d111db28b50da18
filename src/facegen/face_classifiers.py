"""The study's face classifiers, one module: a shared trunk of three conv blocks; a binary head (one
logit per attribute: the attribute classifier of the latent experiments, facegen.experiments.attribute_classifier);
class and regression heads, the latter plain L1 or a label distribution over bins (DLDL, Gao et al.
2018: the demographic classifier of the bias analysis, facegen.bias.classifier); and the one training
loop both use (mirror augmentation, seeded batches)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from facegen.progress import progress
from facegen.tensors import to_tensor

# Regression targets enter the losses in tenths of their unit (years/10), so an L1 term weighs about as
# much as a cross-entropy in the shared loss.
REGRESSION_SCALE = 10.0


def conv_blocks(in_channels: int, width: int = 32) -> tuple[list[nn.Module], int]:
    """Three conv-BN-ReLU-maxpool blocks of width, 2x and 4x width (each halves the image); and their
    output channels."""
    layers, c = [], in_channels
    for w in (width, 2 * width, 4 * width):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
        c = w
    return layers, c


class AttributeCNN(nn.Module):
    """3 blocks of conv-BN-ReLU-maxpool, global average pooling, one logit per attribute."""

    def __init__(self, n_out: int, width: int = 32):
        super().__init__()
        layers, c = conv_blocks(3, width)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DemographicCNN(nn.Module):
    """The report's three conv+pool feature blocks, flattened whole (no global pooling: where a feature
    sits matters for age), then one small LeakyReLU network per target on the shared features."""

    def __init__(self, in_channels: int, heads: dict[str, int], size: int, width: int = 32, hidden: int = 128,
                 centres: dict[str, list[float]] | None = None):
        super().__init__()
        if size % 8:
            raise ValueError(f"demographic classifier input size must be a multiple of 8, got {size}")
        layers, c = conv_blocks(in_channels, width)
        self.features = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.3))
        flat = c * (size // 8) ** 2
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.Linear(flat, hidden), nn.LeakyReLU(0.1), nn.Dropout(0.3),
                                                        nn.Linear(hidden, n)) for name, n in heads.items()})
        # A regression head is a label distribution over these bin centres, or else a single output.
        self.regression = sorted(set(centres or {}) | {name for name, n in heads.items() if n == 1})
        for name, c in (centres or {}).items():
            self.register_buffer(f"centres_{name}", torch.as_tensor(c, dtype=torch.float32))

    def centres(self, name: str) -> torch.Tensor | None:
        """The bin centres of a label-distribution head; None for a single-output or class head."""
        return getattr(self, f"centres_{name}", None)

    def value(self, name: str, out: torch.Tensor) -> torch.Tensor:
        """A regression head's prediction in the target's units: the expected bin centre, or the output."""
        centres = self.centres(name)
        return (torch.softmax(out, 1) * centres).sum(1) if centres is not None else out[:, 0] * REGRESSION_SCALE

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


def bin_centres(values: np.ndarray, width: float) -> list[float]:
    """Bin centres every ``width`` units covering the training values (ages 1..116 -> 116 one-year bins)."""
    lo, hi = np.floor(values.min() / width) * width, np.ceil(values.max() / width) * width
    return np.arange(lo, hi + width / 2, width).tolist()


def regression_loss(model: DemographicCNN, name: str, out: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """L1 on the prediction (in tenths); a label-distribution head adds the cross-entropy to a Gaussian of
    std ``sigma`` around the true value over its bins (one-hot at the nearest bin when sigma is 0): DLDL-v2."""
    l1 = nn.functional.l1_loss(model.value(name, out), y) / REGRESSION_SCALE
    centres = model.centres(name)
    if centres is None:
        return l1
    if sigma > 0:
        target = torch.softmax(-0.5 * ((centres[None] - y[:, None]) / sigma) ** 2, 1)
    else:
        target = nn.functional.one_hot((centres[None] - y[:, None]).abs().argmin(1), len(centres)).float()
    return l1 - (target * torch.log_softmax(out, 1)).sum(1).mean()


def make_schedule(cfg: dict, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """Per-step LR scheduler: one-cycle (warm-up to lr, cosine decay to ~0), constant, or the report's
    r(E) = 1 / (2000 (1 + E)) per epoch."""
    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch,
                                                   pct_start=0.2)
    if cfg["schedule"] == "inverse":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (2000 * (1 + step // steps_per_epoch)) / cfg["lr"])
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


def fit(model: nn.Module, images: np.ndarray, loss: Callable[[object, np.ndarray], torch.Tensor], opt: torch.optim.Optimizer,
        epochs: int, batch_size: int, seed: int, desc: str, schedule=None) -> None:
    """Train on uint8 ``images`` for ``epochs``: batches in a seeded order, each image mirrored with
    probability 1/2 (faces are symmetric enough); ``loss(outputs, idx)`` scores a batch of rows ``idx``
    of ``images``; ``schedule`` steps once per batch."""
    gen = torch.Generator().manual_seed(seed)
    for _ in progress(range(epochs), desc=desc, unit="epoch"):
        model.train()
        order = torch.randperm(len(images), generator=gen).numpy()
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x = to_tensor(images[idx])
            x = torch.where(torch.rand(len(idx), 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
            value = loss(model(x), idx)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
