"""Timing a model's training and sampling steps: what ``facegen bench train`` prints and what the
arithmetic choice (training.precision), the compile choice (training.compilation) and the plan's speeds
are measured with."""

from __future__ import annotations

import contextlib
import time

import torch

from facegen.models import build_model
from facegen.models.base import StepContext
from facegen.training.card import flops_per_image
from facegen.training.trainer import TrainSettings, compiled_step, make_optimizer

# Steps run before timing: the first builds oneDNN's kernels, or, compiled, compiles the step.
WARMUP_STEPS = 2


def timed(fn, warmup: int, steps: int, rounds: int = 3, min_seconds: float = 1.0) -> float:
    """Seconds per call: the best of several rounds, so a burst of other load on the machine does
    not pass for the model's speed. A round runs at least ``steps`` calls and ``min_seconds``: five
    50 ms steps of a 32x32 VAE read 42-55% of peak from one run to the next, twenty steady ones 55-60%."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0, n = time.perf_counter(), 0
        while n < steps or time.perf_counter() - t0 < min_seconds:
            fn()
            n += 1
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def bench_model(arch: str, size: int, batch: int, variant: str, steps: int = 5, params: dict | None = None,
                optimizer: str = "adam", rounds: int = 3, min_seconds: float = 1.0, compile: bool = False) -> dict:
    """One model's training and sampling throughput (img/s) at ``batch``, its counted FLOPs per image and
    the GFLOP/s achieved, in arithmetic ``variant`` (fp32, channels_last or bf16 autocast). ``compile``:
    the training step runs compiled (sampling stays eager), and 'compile_seconds' is the time the
    warm-up steps took beyond as many timed ones: cold or warm as inductor's caches are."""
    torch.manual_seed(0)
    model = build_model(arch, size, **(params or {}))
    labels = None
    if model.conditional:
        labels = torch.zeros(1, model.n_cond).numpy()
    flops = flops_per_image(model, size, batch, labels)
    channels_last = variant in ("channels_last", "bf16")  # as training.precision: bf16 is autocast + channels_last
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16" else contextlib.nullcontext
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    settings = TrainSettings(optimizer=optimizer, lr=1e-4)
    opts = {k: make_optimizer(settings, p) for k, p in model.param_groups().items() if p}
    x = torch.rand(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, model.n_cond) if labels is not None else None
    step = {"i": 0}

    def train_once():
        ctx = StepContext(0, 1, step["i"], 1000, autocast=autocast)
        model.train_step(x, y, opts, ctx)
        step["i"] += 1

    with compiled_step(model) if compile else contextlib.nullcontext():
        t0 = time.perf_counter()
        for _ in range(WARMUP_STEPS):
            train_once()
        warmup_s = time.perf_counter() - t0
        train_s = timed(train_once, 0, steps, rounds, min_seconds)
    model.eval()

    def sample_once():
        with torch.no_grad(), autocast():
            model.sample(batch, y)

    sample_s = timed(sample_once, 1, steps, rounds, min_seconds)
    train_ips = batch / train_s
    row = {"arch": arch, "resolution": size, "variant": variant, "batch": batch, "compiled": compile,
           "train_img_per_s": train_ips, "sample_img_per_s": batch / sample_s,
           "train_gflop_per_image": flops["train_flops_per_image"] / 1e9,
           "achieved_gflops": flops["train_flops_per_image"] * train_ips / 1e9}
    if compile:
        row["compile_seconds"] = max(warmup_s - WARMUP_STEPS * train_s, 0.0)
    return row
