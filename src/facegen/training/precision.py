"""The arithmetic a training run uses: ``training.precision`` fp32, channels_last, bf16, or auto.

* fp32: plain fp32, contiguous (NCHW) tensors.
* channels_last: the same fp32 arithmetic with NHWC memory, which oneDNN and cuDNN convolutions often
  run faster; it changes only the order of summation, so training matches fp32 up to rounding
  (tests/test_training_precision.py holds a second step's loss terms to CHANNELS_LAST_TOLERANCE).
* bf16: bf16 autocast with channels_last memory: fast where the CPU or GPU has native bf16, several
  times slower where it is emulated (a Zen 3 CPU), and a different arithmetic.

``auto`` times the candidates for the run's own model, batch size and threads (a few seconds, cached
per machine and model by facegen.calibration) and takes the fastest, if it beats fp32 by more than
SPEED_MARGIN. Only arithmetic known to train
as well as fp32 is a candidate: fp32 and channels_last always, bf16 only for the architectures in
BF16_VALIDATED, where FID at a fixed budget, over 2 seeds, was no worse than fp32's. No architecture
has that evidence yet, so ``auto`` never picks bf16; set ``precision: bf16`` to use it anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging

from facegen.training.settings import PRECISION_CHOICES, PRECISIONS
from facegen.views import TrainingView

log = logging.getLogger(__name__)

# Relative change of a second step's loss terms from fp32's: Adam's first update amplifies rounding
# (a near-zero gradient that changes sign moves its weight by the full learning rate), so GAN losses
# differ by about 1e-4 after it.
CHANNELS_LAST_TOLERANCE = 1e-3
# Architectures whose bf16 training was shown no worse than fp32 (FID at a fixed budget, 2 seeds).
BF16_VALIDATED: frozenset[str] = frozenset()
# How the candidates are timed, and by how much one must beat fp32 to be chosen. One 0.5 s round per mode,
# beside another job, read channels_last/fp32 speed ratios from 0.77 to 1.51 in one clean paper run, and
# the same VAE at 0.77 in one run and 1.17 in the next: a fresh cache changed a run's arithmetic, and its
# FID moved by about one seed's spread. Rounds alternate between the modes, so a burst of load hits both,
# and each mode keeps its best round.
TIMING_ROUNDS = 3
ROUND_SECONDS = 0.3
SPEED_MARGIN = 0.10
# Timing the candidates takes 3-5 s; a run that trains fewer images than this (epochs x max_images) is
# shorter than that (the quick profile's 192 images train in 0.2 s), so auto keeps fp32 untimed.
AUTO_MIN_TRAIN_IMAGES = 5_000


def candidates(arch: str) -> tuple[str, ...]:
    return PRECISIONS if arch in BF16_VALIDATED else tuple(m for m in PRECISIONS if m != "bf16")


def choose_mode(arch: str, seconds: dict[str, float]) -> str:
    """The fastest timed candidate for ``arch`` that beats fp32 by more than SPEED_MARGIN, else fp32
    (bf16 only if validated for it)."""
    from facegen.calibration import choose

    allowed = candidates(arch)
    errors = {m: 0.0 if m in allowed and (m == "fp32" or s < seconds["fp32"] * (1 - SPEED_MARGIN)) else float("inf")
              for m, s in seconds.items()}
    return choose(seconds, errors, tolerance=0.0)


def measure(spec: dict, threads: int) -> dict:
    """Seconds per image of each candidate's training step for this run's model, and the choice."""
    import torch

    from facegen.training.timing import bench_model

    torch.set_num_threads(threads)
    t = TrainingView(spec["training"])
    rounds: dict[str, list[float]] = {mode: [] for mode in candidates(spec["arch"])}
    for _ in range(TIMING_ROUNDS):
        for mode in rounds:
            bench = bench_model(spec["arch"], spec["resolution"], t["batch_size"], mode, steps=3, params=bench_params(spec),
                                optimizer=t["optimizer"], rounds=1, min_seconds=ROUND_SECONDS)
            rounds[mode].append(1.0 / bench["train_img_per_s"])
    seconds = {mode: min(times) for mode, times in rounds.items()}
    chosen = choose_mode(spec["arch"], seconds)
    log.info("training arithmetic for %s at %dx%d: %s (%s)", spec["arch"], spec["resolution"], spec["resolution"], chosen,
             ", ".join(f"{m} {1 / s:.0f} img/s" for m, s in seconds.items()))
    return {"mode": chosen, "seconds_per_image": seconds, "candidates": list(candidates(spec["arch"]))}


def bench_params(spec: dict) -> dict:
    """The run's hyperparameters, with the conditioning width a conditional family will have (4 columns
    per attribute at most)."""
    from facegen.models import data_params

    return {**spec["params"], **data_params(spec["arch"], n_cond=max(1, 4 * len(spec.get("condition") or [])))}


def model_key(spec: dict, threads: int) -> str:
    """What a training step's speed depends on: model, input size, batch, optimiser and threads."""
    t = TrainingView(spec["training"])
    return json.dumps({"arch": spec["arch"], "res": spec["resolution"], "batch": t.batch_size,
                       "optimizer": t.optimizer, "params": bench_params(spec), "threads": threads},
                      sort_keys=True)


def resolve(spec: dict, device: str = "cpu") -> dict:
    """{"mode": the arithmetic, "requested": the config's value, and for auto the timings}."""
    t = TrainingView(spec["training"])
    requested = t.precision
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"unknown training.precision '{requested}'; choose from {', '.join(PRECISION_CHOICES)}")
    if requested != "auto":
        return {"mode": requested, "requested": requested}
    if device != "cpu":  # timing here runs on the CPU; on a GPU choose explicitly (config/gpu.yaml: bf16)
        return {"mode": "fp32", "requested": "auto", "note": f"auto times modes on the CPU only; {device} runs fp32"}
    images = t.epochs * t.max_images if t.max_images else None
    if images is not None and images < AUTO_MIN_TRAIN_IMAGES:
        return {"mode": "fp32", "requested": "auto",
                "note": f"a run of {images:,} images is shorter than timing the candidates; it runs fp32"}
    import torch

    from facegen.calibration import cached_choice

    threads = torch.get_num_threads()
    key = model_key(spec, threads)
    # The policy is part of the record's name: a choice cached under the old one (one round, no margin)
    # is timed again.
    tag = f"precision-m{SPEED_MARGIN:g}-{spec['arch']}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    record = cached_choice(tag, device, lambda: measure(spec, threads))
    return {"mode": record["mode"], "requested": "auto", "seconds_per_image": record["seconds_per_image"]}
