"""Whether a run's training step runs compiled: ``training.compile`` on, off, or auto.

* on: the parts of the step a model names (``compile_parts``: a VAE's loss, a GAN's generator and
  discriminator apart) run compiled by torch.compile's inductor, on the CPU or CUDA; the optimisers and
  the backward passes' order are the eager step's. Its noise comes from the same generator calls
  (trainer.COMPILE_OPTIONS), so compiled training differs from eager training by rounding only, and is
  deterministic on the CPU: the same seed gives the same weights, and a killed run resumes to them.
* off: eager.
* auto: the step is timed eager and compiled for the run's model, batch, arithmetic and threads, with the
  compile itself cold (fresh inductor caches) and warm (a second compile over the caches the first
  filled); the record is cached per machine and model (facegen.calibration). A run compiles when the
  compiled step beats eager by more than SPEED_MARGIN and the time that saves over the run's images is
  at least COMPILE_PAYBACK times the cold compile: the run's own compile is cold unless a run of the
  same model compiled before it on this machine, and the speed-up is measured in a few seconds.
"""

from __future__ import annotations

import hashlib
import logging

from facegen.training.precision import SPEED_MARGIN, TIMING_ROUNDS, bench_params, model_key
from facegen.training.settings import COMPILE_CHOICES
from facegen.views import TrainingView

log = logging.getLogger(__name__)

# The time a compile saves must be this many times the compile: both are measured, the speed-up in a few
# seconds beside whatever else the machine runs.
COMPILE_PAYBACK = 3.0
# A cold compile took 20-130 s per model here (2-core Xeon, 2026-12-08) and the fastest model trains about
# 3,000 img/s on a core: a run of fewer images than this is over before any speed-up could repay one, so
# auto runs it eager without timing it (the quick profile trains 192 images a run, the central budget 12,000).
AUTO_MIN_TRAIN_IMAGES = 50_000
ROUND_SECONDS = 0.3
TIMINGS = ("eager_seconds_per_image", "compiled_seconds_per_image", "compile_seconds_cold", "compile_seconds_warm")


def requested(value) -> str:
    """The config's value as on, off or auto: YAML reads an unquoted on / off as a boolean."""
    choice = {True: "on", False: "off"}[value] if isinstance(value, bool) else value
    if choice not in COMPILE_CHOICES:
        raise ValueError(f"unknown training.compile {value!r}; choose from {', '.join(COMPILE_CHOICES)}")
    return choice


def measure(spec: dict, precision: str, threads: int) -> dict:
    """Seconds per image of the run's training step eager and compiled, and the compile's seconds, cold
    and warm."""
    import torch
    from torch._inductor.utils import fresh_cache

    from facegen.training.timing import bench_model

    torch.set_num_threads(threads)
    t = TrainingView(spec["training"])

    def bench(compile: bool) -> dict:
        return bench_model(spec["arch"], spec["resolution"], t.batch_size, precision, steps=3, params=bench_params(spec),
                           optimizer=t.optimizer, rounds=TIMING_ROUNDS, min_seconds=ROUND_SECONDS, compile=compile)

    eager = [bench(False)]
    with fresh_cache():
        torch._dynamo.reset()
        cold = bench(True)
        torch._dynamo.reset()  # a second compile: dynamo's own cache emptied, inductor's on disk kept
        warm = bench(True)
    torch._dynamo.reset()
    eager.append(bench(False))  # before and after the compiled ones, so a burst of load hits both
    record = dict(zip(TIMINGS, (min(1 / b["train_img_per_s"] for b in eager), min(1 / b["train_img_per_s"] for b in (cold, warm)),
                                cold["compile_seconds"], warm["compile_seconds"])))
    log.info("compiled training step for %s at %dx%d: eager %.0f img/s, compiled %.0f img/s, compile %.1f s cold, %.1f s warm",
             spec["arch"], spec["resolution"], spec["resolution"], 1 / record["eager_seconds_per_image"],
             1 / record["compiled_seconds_per_image"], record["compile_seconds_cold"], record["compile_seconds_warm"])
    return record


def choose(timing: dict, images: int) -> tuple[str, float]:
    """(on or off, the seconds compiling is predicted to save over ``images`` training images)."""
    eager, compiled = timing["eager_seconds_per_image"], timing["compiled_seconds_per_image"]
    saved = images * (eager - compiled)
    faster = compiled < eager * (1 - SPEED_MARGIN)
    return ("on" if faster and saved >= COMPILE_PAYBACK * timing["compile_seconds_cold"] else "off"), saved


def resolve(spec: dict, precision: str, images: int, device: str = "cpu") -> dict:
    """{"mode": on or off, "requested": the config's value, and for a timed auto the timings and the
    predicted saving}. ``images``: the images the run trains on, over all its epochs."""
    choice = requested(TrainingView(spec["training"]).compile)
    if choice != "auto":
        return {"mode": choice, "requested": choice}
    if images < AUTO_MIN_TRAIN_IMAGES:
        return {"mode": "off", "requested": "auto",
                "note": f"a run of {images:,} images is over before a compile could pay; it runs eager"}
    if device != "cpu":  # timing here runs on the CPU; on a GPU choose explicitly (config/gpu.yaml: on)
        return {"mode": "off", "requested": "auto", "note": f"auto times the step on the CPU only; {device} runs eager"}
    import torch

    from facegen.calibration import cached_choice

    threads = torch.get_num_threads()
    key = model_key(spec, threads)
    tag = f"compile-{precision}-{spec['arch']}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    timing = cached_choice(tag, device, lambda: measure(spec, precision, threads))
    mode, saved = choose(timing, images)
    return {"mode": mode, "requested": "auto", **{k: timing[k] for k in TIMINGS}, "measured_at": timing["measured_at"],
            "predicted_seconds_saved": saved}
