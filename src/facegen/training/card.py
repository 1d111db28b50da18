"""Cost figures for a model card: FLOPs per image for a training step and for sampling."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from facegen.models.base import StepContext


PHASE_STEPS = 1000  # a counted step's StepContext: progress is step / PHASE_STEPS


def flops_per_image(model, resolution: int, batch: int = 16, labels: np.ndarray | None = None) -> dict:
    """Counted (not estimated) FLOPs: one train step (forward + backward, all networks) and one sample.
    A schedule that switches networks on or off (``model.cost_phases``) is counted once per phase and
    averaged over training."""
    batch = max(2, min(batch, 16))  # BatchNorm needs > 1 image; FLOPs scale linearly with batch
    device = next(model.parameters()).device
    clone = model.cost_copy()
    opts = {k: torch.optim.SGD(p, lr=0.0) for k, p in clone.param_groups().items() if p}
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, resolution, resolution, generator=gen).to(device)
    y = torch.as_tensor(labels[:1], dtype=torch.float32).repeat(batch, 1).to(device) if labels is not None else None
    state = torch.get_rng_state()  # counting must not shift the training run's random stream
    train_flops = 0.0
    try:
        for share, progress in clone.cost_phases():
            ctx = StepContext(0, 1, round(progress * PHASE_STEPS), PHASE_STEPS, autocast=contextlib.nullcontext)
            with FlopCounterMode(display=False) as train_counter:
                clone.train_step(x, y, opts, ctx)
            train_flops += share * train_counter.get_total_flops()
        clone.eval()
        with FlopCounterMode(display=False) as sample_counter, torch.no_grad():
            clone.sample(batch, y)
    finally:
        torch.set_rng_state(state)
    return {"train_flops_per_image": train_flops / batch,
            "sample_flops_per_image": sample_counter.get_total_flops() / batch}
