"""Arithmetic chosen per machine, by measurement: each candidate mode is timed briefly on the machine at
hand, and the fastest whose output stays within a tolerance of plain fp32 is kept.

Why measured and not hard-coded: bf16 autocast was 2.4x faster than fp32 for the FID Inception on a CPU
with native bf16, and 5x slower than channels-last fp32 on a Zen 3 CPU without it (emulated bf16).

Why cached per machine (CPU model or GPU name, torch version): every job of a study must use the same
arithmetic, or the real and generated features of one FID would come from different networks. The
first job to need a choice measures it under a file lock; every later job, in any orchestrator, reads
it. The choice is recorded in each protocol that uses it and in ``results/plan.json``. ``FACEGEN_CACHE_DIR`` moves the cache
(default ``$XDG_CACHE_HOME/facegen``, else ``~/.cache/facegen``); deleting a file there re-measures.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Callable

from facegen.io import read_json, write_json

CACHE_ENV = "FACEGEN_CACHE_DIR"


class CalibrationError(ValueError):
    pass


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facegen"


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags; the bf16 ones say whether bf16 runs natively or is emulated."""
    return set((_cpuinfo("flags") or "").split())


def machine_key(device: str) -> dict:
    import torch

    key = {"device": device, "torch": torch.__version__}
    if device.startswith("cuda"):
        key["gpu"] = torch.cuda.get_device_name(torch.device(device))
    else:
        key["cpu"] = cpu_model()
        key["native_bf16"] = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return key


def choose(seconds: dict[str, float], errors: dict[str, float], tolerance: float, baseline: str = "fp32") -> str:
    """The mode with the least seconds per item among those whose error is within ``tolerance``.

    ``baseline`` (error 0 by definition) always qualifies, so there is always a choice; a tie keeps the
    baseline, and a mode that was not timed (or failed) never wins."""
    if baseline not in seconds:
        raise CalibrationError(f"the baseline mode '{baseline}' was not timed; timings: {sorted(seconds)}")
    ok = {m: s for m, s in seconds.items() if m == baseline or errors.get(m, float("inf")) <= tolerance}
    return min(ok, key=lambda m: (ok[m], m != baseline))


# A speed measured while this process got less than this share of its threads' CPU time was taken beside
# other work: in a partial rerun, a plan job beside three others timed a model at 624 img/s against 1,575
# idle, and the cache kept that reading for every later plan.
MIN_CPU_SHARE = 0.8
# A "measurement" shorter than this timed nothing itself (it read another cached record): it is kept.
MIN_TIMED_SECONDS = 0.1


def _clocks() -> tuple[float, float]:
    """(wall, this process's CPU) seconds: apart so a test can give them."""
    import time

    return time.perf_counter(), time.process_time()


def cpu_share(measure: Callable[[], dict], threads: int) -> tuple[dict, float]:
    """``measure()``'s record and the share of ``threads`` cores' time it got while it ran (1.0 for one too
    short to be a timing)."""
    wall0, cpu0 = _clocks()
    record = measure()
    wall1, cpu1 = _clocks()
    if wall1 - wall0 < MIN_TIMED_SECONDS:
        return record, 1.0
    return record, (cpu1 - cpu0) / ((wall1 - wall0) * threads)


def cached_choice(kind: str, device: str, measure: Callable[[], dict], speed_threads: int | None = None) -> dict:
    """The record of ``kind`` for this machine (a choice with its ``mode``, or a measured speed),
    measuring it with ``measure()`` the first time. Safe when several jobs start at once.

    ``speed_threads``: the record is a speed on that many threads. One measured while the process got
    less than MIN_CPU_SHARE of their time (other jobs ran beside it) is returned, not cached, so a later
    plan measures again. A choice of arithmetic is always cached: every job of a study must share it."""
    import logging

    from filelock import FileLock

    key = machine_key(device)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"{kind}-{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            record = read_json(path)
            if record.get("machine") == key:
                return record
        if speed_threads is None:
            measured, extra = measure(), {}
        else:
            measured, share = cpu_share(measure, speed_threads)
            extra = {"cpu_share": round(share, 3)}
        record = {**measured, **extra, "kind": kind, "machine": key,
                  "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if extra.get("cpu_share", 1.0) < MIN_CPU_SHARE:
            logging.getLogger(__name__).warning(
                "%s was timed while other work shared the CPU (%.0f%% of %d thread(s)); used for this plan, not "
                "cached: run `facegen plan` on an idle machine for a reading that later plans keep",
                kind, 100 * extra["cpu_share"], speed_threads)
            return record
        write_json(path, record)
    return record
