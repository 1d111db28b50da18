"""What every experiment needs: the runs it studies with their models and data, and image tiling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facegen.data.prepared import PreparedDataset, split_rows
from facegen.experiments.selection import selected_runs
from facegen.models import VAEModel
from facegen.models.checkpoint import load_model
from facegen.paths import run_key, train_file
from facegen.tensors import to_tensor


@dataclass
class Loaded:
    key: str
    run: dict
    model: torch.nn.Module
    ckpt: dict
    images: np.ndarray
    meta: pd.DataFrame

    @property
    def is_vae(self) -> bool:
        return self.model.latent_density()

    def rows(self, split: str, n: int | None, seed: int) -> np.ndarray:
        return split_rows(self.meta, split, n, seed)


def load_runs(config: dict):
    """Yield each selected run with its model (CPU, eval mode) and its dataset at the run's resolution."""
    for run in selected_runs(config):
        model, ckpt = load_model(train_file(config, run, "model"))
        data = PreparedDataset.of(config, run["dataset"])
        yield Loaded(run_key(run), run, model, ckpt, data.images(run["resolution"]), data.meta)


@torch.no_grad()
def decode(model, z: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] from latents, for VAEs (decoder) and GANs (generator) alike."""
    return model.generate(z).float().clamp(0, 1)


@torch.no_grad()
def encode_mean(model: VAEModel, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    return torch.cat([model.encode(to_tensor(images[i:i + batch]))[0] for i in range(0, len(images), batch)])


def tile(images: np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one image of rows of ``ncol``, white gaps of ``pad`` pixels."""
    n, h, w, c = images.shape
    nrow = int(np.ceil(n / ncol))
    out = np.full((nrow * (h + pad) - pad, ncol * (w + pad) - pad, c), 255, np.uint8)
    for k in range(n):
        r, q = divmod(k, ncol)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[k]
    return out


def out_paths(out_dir: str | Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    return {"table": out_dir / "table.csv", "figure": out_dir / "figure.png"}
