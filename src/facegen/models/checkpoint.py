"""A trained run's model.pt: what it holds, how it is written and read back, and how its condition
columns become the conditioning vector. Training writes it; evaluation, the experiments and the bias
steps read it, so none of them reaches into training for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facegen.config import ConfigError
from facegen.io import save_torch
from facegen.models import build_model


def encode_conditions(meta: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray | None, list[dict]]:
    """Binary columns stay one value; categorical columns become one-hot blocks."""
    if not columns:
        return None, []
    blocks, encoding = [], []
    for col in columns:
        if col not in meta.columns:
            raise ConfigError(f"condition column '{col}' is not in the dataset metadata; available: {', '.join(meta.columns)}")
        values = meta[col]
        cats = sorted(values.dropna().unique().tolist())
        if set(cats) <= {0, 1}:
            blocks.append(values.to_numpy(np.float32)[:, None])
            encoding.append({"column": col, "kind": "binary"})
        else:
            blocks.append((values.to_numpy()[:, None] == np.asarray(cats)[None, :]).astype(np.float32))
            encoding.append({"column": col, "kind": "one_hot", "categories": [c if not isinstance(c, np.generic) else c.item() for c in cats]})
    return np.concatenate(blocks, axis=1), encoding


def condition_labels(meta: pd.DataFrame, ckpt: dict) -> np.ndarray | None:
    """Every image's conditioning vector under a checkpoint's encoding (None if unconditional)."""
    columns = [e["column"] for e in ckpt["condition_encoding"]]
    return encode_conditions(meta, columns)[0] if columns else None


def build(spec: dict, n_cond: int = 0):
    """The untrained model of a run spec (facegen.training.matrix.run_spec)."""
    params = dict(spec["params"])
    if n_cond:
        params["n_cond"] = n_cond
    return build_model(spec["arch"], spec["resolution"], **params)


def save_model(path: str | Path, spec: dict, encoding: list[dict], model: torch.nn.Module) -> None:
    save_torch(path, {"spec": spec, "condition_encoding": encoding, "state_dict": model.state_dict()})


def load_model(path: str | Path, device: str = "cpu"):
    """Rebuild a trained model from model.pt; returns (model, checkpoint dict)."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    n_cond = sum(1 if e["kind"] == "binary" else len(e["categories"]) for e in ckpt["condition_encoding"])
    model = build(ckpt["spec"], n_cond)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt
