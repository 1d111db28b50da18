"""One training run: {dataset}/{resolution}/{model}/{seed} from the config to model.pt, history and card."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facegen.config import ConfigError, config_hash
from facegen.data.prepared import PreparedDataset, seeded_subset, split_rows
from facegen.devices import pick_device
from facegen.metrics.pixel_fid import approx_fid
from facegen.models.checkpoint import build, encode_conditions, save_model
from facegen.paths import RESUME_FILE, Run, train_files
from facegen.records import write_card
from facegen.samplers import PriorSampler
from facegen.training.card import flops_per_image
from facegen.training.compilation import resolve as resolve_compile
from facegen.training.matrix import run_spec
from facegen.training.precision import resolve as resolve_precision
from facegen.training.trainer import Trainer, TrainSettings
from facegen.views import TrainingView

log = logging.getLogger(__name__)


def training_groups(config: dict, spec: dict) -> np.ndarray | None:
    """The balance column's values for the training images (same rows and order as training_data)."""
    column = TrainingView(spec["training"]).balance_column
    if not column:
        return None
    meta = PreparedDataset.of(config, spec["dataset"]).meta
    if column not in meta.columns:
        raise ConfigError(f"training.balance_column '{column}' is not a column of the {spec['dataset']} metadata; "
                          f"available: {', '.join(meta.columns)}")
    return meta[column].to_numpy()[training_rows(meta, spec)]


def training_rows(meta: pd.DataFrame, spec: dict) -> np.ndarray:
    return split_rows(meta, "train", TrainingView(spec["training"]).max_images or None, spec["seed"])


def training_data(config: dict, spec: dict) -> tuple[np.ndarray, np.ndarray | None, list[dict]]:
    data = PreparedDataset.of(config, spec["dataset"])
    meta, images = data.meta, data.images(spec["resolution"])
    train = training_rows(meta, spec)
    # Categories come from every split, so a group rare enough to miss the training subset can still be asked for.
    labels, encoding = encode_conditions(meta, spec["condition"])
    return np.asarray(images[train]), None if labels is None else labels[train], encoding


def approx_fid_monitor(model, images: np.ndarray, n: int, seed: int):
    """Per-epoch pixel approximate FID (prior samples vs training images), for unconditional VAEs."""
    if n <= 0 or not model.latent_density():
        return None
    real = images[seeded_subset(len(images), n, seed)]
    sampler = PriorSampler().fit(model, real)
    return lambda m, epoch: {"approx_fid": approx_fid(real, sampler.sample(len(real), seed=seed))}


def train_run(config: dict, dataset: str, resolution: int, model_name: str, seed: int, out_dir: str | Path) -> dict:
    spec = run_spec(config, dataset, resolution, model_name, seed)
    out_dir = Path(out_dir)
    images, labels, encoding = training_data(config, spec)
    torch.manual_seed(seed)
    model = build(spec, 0 if labels is None else labels.shape[1])
    model.load_pretrained()
    view = TrainingView(spec["training"])
    device = pick_device(view.device).type
    arithmetic = resolve_precision(spec, device)
    compiling = resolve_compile(spec, arithmetic["mode"], view.epochs * len(images), device)
    settings = TrainSettings.from_config({**spec["training"], "precision": arithmetic["mode"], "compile": compiling["mode"]})
    t0 = time.perf_counter()
    trainer = Trainer(model, settings, out_dir, seed)
    history = trainer.fit(images, labels, approx_fid_monitor(model, images, settings.monitor_images, seed),
                          groups=training_groups(config, spec))
    wall = time.perf_counter() - t0
    files = train_files(out_dir)
    save_model(files["model"], spec, encoding, model)
    card = {
        "run": Run(dataset, resolution, model_name, seed).key,
        "arch": spec["arch"],
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "n_train_images": int(len(images)),
        **flops_per_image(model, resolution, settings.batch_size, labels),
        "epochs": settings.epochs,
        "wall_seconds_total": wall,
        "train_seconds": float(history["seconds"].sum()) if len(history) else 0.0,
        "img_per_s": float(history["img_per_s"].median()) if len(history) else float("nan"),
        "config_hash": config_hash(spec),
        "device": str(next(model.parameters()).device),
        "precision": arithmetic,
        # the first step includes the compile when it is on (and a run resumed in a fresh process compiles again)
        "compile": {**compiling, "first_step_seconds": trainer.first_step_seconds},
        "spec": spec,
    }
    write_card(out_dir, card)
    (Path(out_dir) / RESUME_FILE).unlink(missing_ok=True)  # the resumable checkpoint is spent once model.pt exists
    return card
