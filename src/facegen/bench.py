"""Benchmarks that print figures (they are not timed tests).

``facegen bench train`` measures, for every architecture at each resolution, training and sampling
throughput, counted FLOPs per image, and the achieved GFLOP/s as a share of an fp32 matmul peak
measured in the same run, for plain fp32, channels_last and bf16 autocast.
"""

from __future__ import annotations

import contextlib
import time

import pandas as pd
import torch

from facegen.models import ARCHITECTURES, build_model
from facegen.models.base import StepContext
from facegen.training.card import flops_per_image


def matmul_peak_gflops(dtype=torch.float32, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _timed(fn, warmup: int, steps: int, rounds: int = 3) -> float:
    """Seconds per call: the best of several rounds, so a burst of other load on the machine does
    not pass for the model's speed."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def bench_model(arch: str, size: int, batch: int, variant: str, steps: int = 5, params: dict | None = None) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, size, **(params or {}))
    labels = None
    if getattr(model, "conditional", False):
        labels = torch.zeros(1, model.n_cond).numpy()
    flops = flops_per_image(model, size, batch, labels)
    channels_last = variant == "channels_last"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16" else contextlib.nullcontext
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opts = {k: torch.optim.Adam(p, lr=1e-4) for k, p in model.param_groups().items() if p}
    x = torch.rand(batch, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch, model.n_cond) if labels is not None else None
    step = {"i": 0}

    def train_once():
        ctx = StepContext(0, 1, step["i"], 1000, autocast=autocast)
        model.train_step(x, y, opts, ctx)
        step["i"] += 1

    train_s = _timed(train_once, 2, steps)
    model.eval()

    def sample_once():
        with torch.no_grad(), autocast():
            model.sample(batch, y)

    sample_s = _timed(sample_once, 1, steps)
    train_ips = batch / train_s
    return {"arch": arch, "resolution": size, "variant": variant, "batch": batch,
            "train_img_per_s": train_ips, "sample_img_per_s": batch / sample_s,
            "train_gflop_per_image": flops["train_flops_per_image"] / 1e9,
            "achieved_gflops": flops["train_flops_per_image"] * train_ips / 1e9}


def bench_train(archs: list[str] | None = None, sizes=(32, 64), batch: int = 64, variants=("fp32", "channels_last", "bf16"), steps: int = 5) -> pd.DataFrame:
    peak = matmul_peak_gflops()
    peak_bf16 = matmul_peak_gflops(torch.bfloat16)
    rows = []
    for arch in archs or list(ARCHITECTURES):
        params = {"n_cond": 4} if arch == "cvae" else {}
        for size in sizes:
            for variant in variants:
                try:
                    row = bench_model(arch, size, batch, variant, steps, params)
                except Exception as exc:  # a model that cannot run a variant is reported, not hidden
                    row = {"arch": arch, "resolution": size, "variant": variant, "error": f"{type(exc).__name__}: {exc}"}
                row["fp32_matmul_peak_gflops"] = peak
                row["bf16_matmul_peak_gflops"] = peak_bf16
                if "achieved_gflops" in row:
                    row["pct_of_fp32_peak"] = 100 * row["achieved_gflops"] / peak
                rows.append(row)
                print(_fmt(row), flush=True)
    return pd.DataFrame(rows)


def _fmt(row: dict) -> str:
    if "error" in row:
        return f"{row['arch']:>8} {row['resolution']:>3} {row['variant']:>13}  unavailable: {row['error']}"
    return (f"{row['arch']:>8} {row['resolution']:>3} {row['variant']:>13}  train {row['train_img_per_s']:8.1f} img/s  "
            f"sample {row['sample_img_per_s']:9.1f} img/s  {row['train_gflop_per_image']:7.3f} GFLOP/img  "
            f"{row['achieved_gflops']:6.1f} GFLOP/s = {row['pct_of_fp32_peak']:5.1f}% of fp32 peak {row['fp32_matmul_peak_gflops']:.0f}")
