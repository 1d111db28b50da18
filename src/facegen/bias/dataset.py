"""Dataset bias: group counts and shares per split, imbalance ratios (largest group over smallest in
the training split), and mean faces per group (per gender x age bucket where both columns exist)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facegen.bias.reconstruction import group_values  # noqa: E402
from facegen.config import active_datasets  # noqa: E402
from facegen.data.prepared import PreparedDataset  # noqa: E402
from facegen.data.summary import natural_key  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402


def _datasets(config: dict) -> list[str]:
    return [d for d in active_datasets(config) if config["bias"]["datasets"].get(d, {}).get("groups")]


def _mean_face(images, rows: np.ndarray) -> np.ndarray:
    total = np.zeros(images.shape[1:], np.float64)
    for i in range(0, len(rows), 2048):  # in chunks: the memory-mapped array is never read whole
        total += np.asarray(images[rows[i:i + 2048]], np.float64).sum(0)
    return (total / max(len(rows), 1)).round().astype(np.uint8)


def run(config: dict, out_dir) -> pd.DataFrame:
    out_dir = Path(out_dir)
    counts, imbalance, faces = [], [], []
    for name in _datasets(config):
        data = PreparedDataset.of(config, name)
        meta, images = data.meta, data.images(max(config["data"]["resolutions"]))
        for column in config["bias"]["datasets"][name]["groups"]:
            if column not in meta.columns:
                continue
            groups = group_values(meta, column)
            table = pd.crosstab(groups, meta["split"]).reset_index(names="group")
            for split in [c for c in table.columns if c != "group"]:
                for g, n in zip(table["group"], table[split]):
                    counts.append({"dataset": name, "attribute": column, "group": g, "split": split, "count": int(n),
                                   "share": float(n / table[split].sum())})
            train = pd.Series(groups[meta["split"].to_numpy() == "train"]).value_counts()
            imbalance.append({"dataset": name, "attribute": column, "largest_group": train.index[0],
                              "smallest_group": train.index[-1], "imbalance_ratio": float(train.iloc[0] / train.iloc[-1]),
                              "n_groups": len(train)})
            faces.append((f"{name}: {column}", [(g, _mean_face(images, np.flatnonzero(groups == g)))
                                                for g in sorted(set(groups), key=natural_key)]))
        if {"gender_name", "age_bucket"} <= set(meta.columns):
            combo = (meta["gender_name"].astype(str) + " " + meta["age_bucket"].astype(str)).to_numpy()
            faces.append((f"{name}: gender x age", [(g, _mean_face(images, np.flatnonzero(combo == g))) for g in sorted(set(combo), key=natural_key)]))
    ncol = max([len(f) for _, f in faces] + [1])
    fig, axes = plt.subplots(max(len(faces), 1), ncol, figsize=(1.1 * ncol, 1.4 * max(len(faces), 1)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (title, items) in enumerate(faces):
        for c, (g, face) in enumerate(items):
            axes[r][c].imshow(face)
            axes[r][c].set_title(f"{title}\n{g}" if c == 0 else str(g), fontsize=5)
    save_figure(out_dir / "mean_faces.png", fig)
    plt.close(fig)
    write_csv(out_dir / "dataset_groups.csv", pd.DataFrame(counts))
    table = pd.DataFrame(imbalance)
    write_csv(out_dir / "dataset_imbalance.csv", table)
    return table
