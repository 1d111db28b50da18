"""The training engine: one loop for every model in the zoo.

Determinism on CPU: the data order of epoch e comes from a generator seeded with (seed, e), and the
global RNG states are saved in every checkpoint, so a run killed after epoch k and rerun continues
from its last checkpoint and ends with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facegen.devices import pick_device
from facegen.io import save_torch, write_csv
from facegen.models.base import GenerativeModel, StepContext
from facegen.paths import RESUME_FILE, train_files
from facegen.progress import progress
from facegen.training.collapse import discriminator_won
from facegen.training.settings import COMPILE_MODES, OPTIMIZERS, PRECISIONS, SCHEDULES
from facegen.views import TrainingView

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    pass


def balanced_weights(groups: np.ndarray) -> torch.Tensor:
    """Sampling weight 1 / (size of the image's group), as float64."""
    _, inverse, counts = np.unique(np.asarray(groups).astype(str), return_inverse=True, return_counts=True)
    return torch.from_numpy(1.0 / counts[inverse])


def reweighting_weights(groups: np.ndarray) -> torch.Tensor:
    """Per-image loss weight n / (K n_g) for an image of group g, K groups and n images: mean 1 over the
    data, and every group carries the same total weight."""
    w = balanced_weights(groups)
    return (w * len(w) / w.sum()).float()


def epoch_order(n: int, seed: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """A permutation of the images, or with ``weights`` n draws with replacement in proportion to them."""
    gen = torch.Generator().manual_seed(seed)
    if weights is None:
        return torch.randperm(n, generator=gen)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


# Every default is the schema's (x-default under $defs/training); tests/test_views.py holds the fields
# to its keys.
_DEFAULTS = TrainingView.defaults()


@dataclass
class TrainSettings:
    epochs: int = _DEFAULTS["epochs"]
    batch_size: int = _DEFAULTS["batch_size"]
    lr: float = _DEFAULTS["lr"]
    optimizer: str = _DEFAULTS["optimizer"]  # one of OPTIMIZERS
    betas: tuple[float, float] = tuple(_DEFAULTS["betas"])
    schedule: str = _DEFAULTS["schedule"]  # one of SCHEDULES
    step_every: int = _DEFAULTS["step_every"]
    checkpoint_every: int = _DEFAULTS["checkpoint_every"]
    precision: str = _DEFAULTS["precision"]  # one of PRECISIONS (bf16: autocast + channels_last); auto is resolved before
    compile: str = _DEFAULTS["compile"]  # one of COMPILE_MODES; auto is resolved before
    device: str = _DEFAULTS["device"]
    monitor_images: int = _DEFAULTS["monitor_images"]
    monitor_every: int = _DEFAULTS["monitor_every"]
    balance_column: str | None = _DEFAULTS["balance_column"]
    balance_mode: str = _DEFAULTS["balance_mode"]

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    @property
    def channels_last(self) -> bool:
        return self.precision in ("channels_last", "bf16")

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"training precision must be fp32, channels_last or bf16 here, got '{self.precision}' "
                             "(auto is resolved by facegen.training.precision before training)")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"training compile must be on or off here, got {self.compile!r} "
                             "(auto is resolved by facegen.training.compilation before training)")

    @classmethod
    def from_config(cls, cfg: dict) -> "TrainSettings":
        known = {k: v for k, v in cfg.items() if k in cls.__dataclass_fields__}
        if "betas" in known:
            known["betas"] = tuple(known["betas"])
        return cls(**known)


def deterministic_setup(device: torch.device) -> None:
    """Deterministic kernels on the run's device, so that a seed gives one model. On CUDA this also turns
    cuDNN's autotuner off (it picks convolution kernels by timing them, so two runs may differ) and fixes
    cuBLAS's workspace, which deterministic matrix products need (set before CUDA starts, as NVIDIA asks).
    warn_only: an op without a deterministic kernel warns instead of stopping a long run."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def host_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The training images as a CPU tensor, in page-locked memory when batches go to a GPU: only from
    pinned memory is a ``non_blocking`` copy asynchronous."""
    data = torch.from_numpy(np.ascontiguousarray(array))
    return data.pin_memory() if device.type == "cuda" else data


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _lr_lambda(settings: TrainSettings):
    if settings.schedule == "cosine":
        return lambda epoch: 0.5 * (1 + math.cos(math.pi * min(epoch / max(settings.epochs, 1), 1.0)))
    if settings.schedule == "step":
        return lambda epoch: 0.5 ** (epoch // max(settings.step_every, 1))
    if settings.schedule == "none":
        return lambda epoch: 1.0
    raise ValueError(f"unknown lr schedule '{settings.schedule}'; allowed: {', '.join(SCHEDULES)}")


def make_optimizer(settings: TrainSettings, params) -> torch.optim.Optimizer:
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.lr, betas=settings.betas)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.lr)
    raise ValueError(f"unknown optimizer '{settings.optimizer}'; allowed: {', '.join(OPTIMIZERS)}")


# fallback_random: a compiled step draws its noise from the same generator calls as the eager one, so
# compiling changes only the rounding; deterministic: no kernel chosen by timing it.
COMPILE_OPTIONS = {"fallback_random": True, "deterministic": True}


@contextlib.contextmanager
def compiled_step(model: GenerativeModel):
    """Within the block, each of ``model.compile_parts()`` runs compiled while the model trains, and eager
    in eval mode (samples, monitors): the eval-mode graph would be a second compile for a few calls. The
    parts are instance attributes over the class's methods, so the state dict, deep copies and saved
    models are the plain model's, and leaving the block restores it."""
    parts = model.compile_parts()
    for owner, name in parts:
        eager = getattr(owner, name)
        fast = torch.compile(eager, options=COMPILE_OPTIONS)

        def part(*args, _eager=eager, _fast=fast, **kwargs):
            return (_fast if model.training else _eager)(*args, **kwargs)

        setattr(owner, name, part)
    try:
        yield
    finally:
        for owner, name in parts:
            delattr(owner, name)


class Trainer:
    """Train ``model`` on uint8 images (N, H, W, 3) with optional float conditions (N, k)."""

    def __init__(self, model: GenerativeModel, settings: TrainSettings, run_dir: str | Path, seed: int):
        self.model = model
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.device = pick_device(settings.device)
        self.checkpoint_path = self.run_dir / RESUME_FILE
        self.history_path = train_files(self.run_dir)["history"]
        self.first_step_seconds: float | None = None  # this process's first step: with compile on, mostly the compile

    def _autocast(self):
        if self.settings.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _batch(self, images: torch.Tensor, labels: torch.Tensor | None, idx: torch.Tensor):
        x = images[idx].to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if self.settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx].to(self.device) if labels is not None else None
        return x, y

    def _save(self, epoch: int, optimizers, schedulers, history) -> None:
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
            "rng": _rng_state(),
            "history": history,
        }
        save_torch(self.checkpoint_path, state)

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None, monitor=None,
            groups: np.ndarray | None = None) -> pd.DataFrame:
        """Train to ``settings.epochs``, resuming from last.pt if present.

        ``groups`` (one value per image) switches on group balancing (the mitigation ablation of the
        bias analysis). With balance_mode 'resample' each epoch draws n images with replacement, each
        with probability 1 / (its group's size), so every group is seen equally often on average; with
        'reweight' the order stays a permutation and each image's loss is weighted by n / (K n_g).

        ``monitor(model, epoch)`` may return extra per-epoch columns; it runs in eval mode and must
        draw randomness only from its own generators, so that resumed runs stay identical.
        """
        with compiled_step(self.model) if self.settings.compile == "on" else contextlib.nullcontext():
            return self._fit(images, labels, monitor, groups)

    def _fit(self, images, labels, monitor, groups) -> pd.DataFrame:
        s = self.settings
        seed_everything(self.seed)
        deterministic_setup(self.device)
        model = self.model.to(self.device)
        if s.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizers = {name: make_optimizer(s, params) for name, params in model.param_groups().items() if params}
        schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(s)) for name, opt in optimizers.items()}
        history: list[dict] = []
        start = 0
        saved_epoch = None
        if self.checkpoint_path.exists():
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
            model.load_state_dict(state["model"])
            for k, o in optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            for k, sch in schedulers.items():
                sch.load_state_dict(state["schedulers"][k])
            _set_rng_state(state["rng"])
            history = state["history"]
            start = saved_epoch = state["epoch"] + 1
            log.info("resuming %s from epoch %d", self.run_dir, start)

        data = host_tensor(images, self.device)
        cond = torch.from_numpy(np.asarray(labels, dtype=np.float32)) if labels is not None else None
        n = len(data)
        batch = min(s.batch_size, n)
        steps = n // batch
        model.train()
        bar = progress(range(start, s.epochs), total=s.epochs, initial=start, desc=f"train {self.run_dir.name}", unit="epoch")
        weights = loss_weights = None
        if groups is not None and s.balance_mode == "reweight":
            if not getattr(self.model, "sample_weighting", False):
                raise ValueError(f"training.balance_mode 'reweight' needs per-image losses, which "
                                 f"{type(self.model).__name__} does not take; use balance_mode 'resample'")
            loss_weights = reweighting_weights(groups).to(self.device)
        elif groups is not None:
            weights = balanced_weights(groups)
        for epoch in bar:
            order = epoch_order(n, self.seed * 1_000_003 + epoch, weights)
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            for b in range(steps):
                idx = order[b * batch:(b + 1) * batch]
                x, y = self._batch(data, cond, idx)
                ctx = StepContext(epoch, s.epochs, epoch * steps + b, steps, autocast=self._autocast,
                                  sample_weights=loss_weights[idx.to(self.device)] if loss_weights is not None else None)
                t_step = time.perf_counter()
                values = model.train_step(x, y, optimizers, ctx)
                if self.first_step_seconds is None:
                    self.first_step_seconds = time.perf_counter() - t_step
                bad = {k: v for k, v in values.items() if not math.isfinite(v)}
                if bad:
                    last = f"{self.checkpoint_path} (end of epoch {saved_epoch})" if saved_epoch else "none yet"
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1}, step {b + 1}: {', '.join(f'{k}={v}' for k, v in bad.items())}. "
                        f"Last good checkpoint: {last}. Lower the learning rate or enable a schedule and rerun."
                    )
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
            for sch in schedulers.values():
                sch.step()
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}, "seconds": seconds,
                   "img_per_s": steps * batch / seconds if seconds > 0 else float("nan"),
                   "lr": next(iter(optimizers.values())).param_groups[0]["lr"]}
            if monitor is not None and ((epoch + 1) % s.monitor_every == 0 or epoch + 1 == s.epochs):
                model.eval()
                row.update(monitor(model, epoch))
                model.train()
            row["d_collapse"] = discriminator_won(row.get("d_fake"))
            if row["d_collapse"]:
                log.warning("epoch %d: discriminator collapse (d_real=%.3f, d_fake=%.3f)", epoch + 1, row["d_real"], row["d_fake"])
            history.append(row)
            write_csv(self.history_path, pd.DataFrame(history))
            if (epoch + 1) % s.checkpoint_every == 0 or epoch + 1 == s.epochs:
                self._save(epoch, optimizers, schedulers, history)
                saved_epoch = epoch + 1
            bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "recon", "g_loss", "d_loss") if k in row})
        if not history:
            write_csv(self.history_path, pd.DataFrame(history))
        model.eval()
        return pd.DataFrame(history)
