"""Dataset summary: tidy group counts per split, and a figure with a sample grid beside them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from facegen.config import dataset_config  # noqa: E402
from facegen.data import kind_module  # noqa: E402
from facegen.data.prepared import PreparedDataset, seeded_subset  # noqa: E402
from facegen.data.split import SPLITS  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402

_NOT_GROUPS = {"id", "file", "split", "identity", "age", "noise"}


def group_columns(meta: pd.DataFrame, kind: str) -> list[str]:
    """The columns summarised for a dataset: its module's choice, else every low-cardinality label."""
    chosen = getattr(kind_module(kind), "SUMMARY_COLUMNS", None)
    if chosen:
        return [c for c in chosen if c in meta.columns]
    return [c for c in meta.columns if c not in _NOT_GROUPS and meta[c].nunique(dropna=True) <= 20]


def natural_key(value: str) -> tuple:
    """Sort '3-9' before '10-19' and '70+' last, and plain strings alphabetically."""
    match = re.match(r"^(-?\d+(?:\.\d+)?)", value)
    return (0, float(match.group(1)), value) if match else (1, 0.0, value)


def group_counts(meta: pd.DataFrame, columns: list[str], dataset: str) -> pd.DataFrame:
    frames = []
    for col in columns:
        counts = meta.groupby(["split", col], observed=True).size().rename("count").reset_index()
        counts = counts.rename(columns={col: "value"})
        counts["value"] = counts["value"].astype(str)
        counts["attribute"] = col
        counts["fraction"] = counts["count"] / counts.groupby("split")["count"].transform("sum")
        frames.append(counts)
    if not frames:
        counts = meta.groupby("split").size().rename("count").reset_index()
        counts["attribute"], counts["value"], counts["fraction"] = "all", "all", 1.0
        frames.append(counts)
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "dataset", dataset)
    table["split"] = pd.Categorical(table["split"], SPLITS, ordered=True)
    table["_order"] = table["value"].map(natural_key)
    table = table.sort_values(["attribute", "_order", "split"]).drop(columns="_order").reset_index(drop=True)
    table["split"] = table["split"].astype(str)
    return table[["dataset", "attribute", "value", "split", "count", "fraction"]]


def sample_grid(images: np.ndarray, side: int, seed: int, pool: np.ndarray | None = None) -> np.ndarray:
    """A grid of up to side x side random images, drawn from the indices in ``pool`` (default: all)."""
    pool = np.arange(len(images)) if pool is None else pool
    n = min(side * side, len(pool))
    side = int(np.ceil(np.sqrt(n)))
    idx = seeded_subset(pool, n, seed)
    h, w, c = images.shape[1:]
    grid = np.full((side * h, side * w, c), 255, np.uint8)
    for k, i in enumerate(idx):
        r, q = divmod(k, side)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = images[i]
    return grid


def summary_figure(table: pd.DataFrame, grid: np.ndarray, title: str):
    attributes = list(dict.fromkeys(table["attribute"]))
    fig, axes = plt.subplots(1, 1 + len(attributes), figsize=(3.6 * (1 + len(attributes)), 3.6), squeeze=False)
    axes = axes[0]
    axes[0].imshow(grid)
    axes[0].set_axis_off()
    axes[0].set_title("training samples")
    for ax, attr in zip(axes[1:], attributes):
        part = table[table["attribute"] == attr]
        sns.barplot(data=part, x="value", y="count", hue="split", hue_order=[s for s in SPLITS if s in set(part["split"])], ax=ax)
        ax.set_title(attr)
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelrotation=45)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def summarize(config: dict, name: str, data_dir: str | Path, table_path: str | Path, figure_path: str | Path) -> pd.DataFrame:
    cfg = dataset_config(config, name)
    data = PreparedDataset(Path(data_dir), name)
    meta = data.meta
    table = group_counts(meta, group_columns(meta, cfg["kind"]), name)
    write_csv(table_path, table)
    res = max(config["data"]["resolutions"])
    images = data.images(res)
    train = data.rows("train")
    # Index the memory-mapped array only at the chosen images, not the whole training split.
    grid = sample_grid(images, config["data"]["sample_grid"], config["seed"], train if len(train) else None)
    fig = summary_figure(table, grid, f"{name}: {len(meta):,} images at {res}x{res}")
    save_figure(figure_path, fig)
    plt.close(fig)
    return table
