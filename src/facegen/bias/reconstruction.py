"""Reconstruction bias: per-group reconstruction MSE, SSIM and LPIPS on the test split for every
evaluated VAE-type run (from its per_image.parquet), with bootstrap intervals, the disparity ratio
(worst group over best) and permutation tests against the pooled mean, Holm-corrected per family.

Raw MSE mixes the model with the images: a group whose faces have more contrast has more pixel variance
to get wrong. Beside it stands a model-free yardstick, mse_relative: each image's MSE over its own pixel
variance, the fraction of variance unexplained (1 for a reconstruction that paints the image's mean
value), so a group worse on MSE but not on mse_relative differs in content rather than in how well the
model serves it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facegen.bias.stats import disparity_ratio, group_table  # noqa: E402
from facegen.config import active_datasets  # noqa: E402
from facegen.data.prepared import PreparedDataset  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402
from facegen.paths import eval_dir, run_key  # noqa: E402
from facegen.records import read_per_image  # noqa: E402
from facegen.training.matrix import training_runs  # noqa: E402

METRICS = {"mse": False, "mse_relative": False, "ssim": True, "lpips": False}  # metric -> higher is better


def pixel_variance(images, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Each image's variance over its pixels and channels on [0, 1], the scale of the per-image MSE;
    NaN for a constant image, whose relative error has no meaning."""
    out = np.empty(len(rows))
    for i in range(0, len(rows), chunk):  # in chunks: the memory-mapped array is never read whole
        x = np.asarray(images[rows[i:i + chunk]], np.float64) / 255.0
        out[i:i + chunk] = x.reshape(len(x), -1).var(1)
    return np.where(out > 0, out, np.nan)


def group_values(meta: pd.DataFrame, column: str) -> np.ndarray:
    values = meta[column]
    if set(values.dropna().unique()) <= {0, 1}:  # CelebA's binary attributes: name both sides
        return np.where(values.to_numpy() == 1, column, f"not {column}")
    return values.astype(str).to_numpy()


def analyse(config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    bcfg = config["bias"]
    rows, disparities = [], []
    for run in training_runs(config, active_datasets(config)):
        columns = bcfg["datasets"].get(run["dataset"], {}).get("groups", [])
        per_image = read_per_image(eval_dir(config, run))
        if not columns or "mse" not in per_image:
            continue  # GANs have no reconstructions
        data = PreparedDataset.of(config, run["dataset"])
        image_rows = per_image["row"].to_numpy()
        meta = data.meta.iloc[image_rows]
        per_image = per_image.assign(mse_relative=per_image["mse"].to_numpy() / pixel_variance(data.images(run["resolution"]), image_rows))
        key = run_key(run)
        for column in columns:
            groups = group_values(meta, column)
            for metric, higher in METRICS.items():
                values = per_image[metric].to_numpy()
                keep = np.isfinite(values)  # a constant image has no relative error
                table = group_table(values[keep], groups[keep], bcfg["n_boot"], bcfg["n_perm"], bcfg["seed"], bcfg["alpha"])
                table.insert(0, "metric", metric)
                table.insert(0, "attribute", column)
                table.insert(0, "run", key)
                rows.append(table)
                order = table.sort_values("mean", ascending=higher)
                disparities.append({"run": key, "attribute": column, "metric": metric,
                                    "disparity_ratio": disparity_ratio(table["mean"].to_numpy(), higher),
                                    "worst_group": order.iloc[0]["group"], "best_group": order.iloc[-1]["group"],
                                    "n_groups": len(table), "significant_groups": int(table["significant"].sum())})
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), pd.DataFrame(disparities)


def forest(table: pd.DataFrame, path) -> None:
    metrics = [m for m in METRICS if len(table) and m in set(table["metric"])]
    n_rows = len(table) // max(len(metrics), 1)
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(3.2 * max(len(metrics), 1) + 3, 0.22 * max(n_rows, 4) + 1.2),
                             squeeze=False, sharey=True)
    for k, (ax, metric) in enumerate(zip(axes[0], metrics)):
        t = table[table["metric"] == metric].reset_index(drop=True)
        y = np.arange(len(t))[::-1]
        for yi, r in zip(y, t.itertuples()):
            colour = "tab:red" if r.significant else "tab:blue"
            ax.errorbar([r.mean], [yi], xerr=[[r.mean - r.ci_low], [r.ci_high - r.mean]], fmt="o", ms=3, color=colour, capsize=2)
        for run_attr, grp in t.groupby(["run", "attribute"], sort=False):
            ax.axvline(grp["pooled_mean"].iloc[0], color="grey", lw=0.5, ls=":")
        if k == 0:  # the rows are the same in every panel
            ax.set_yticks(y, [f"{r.run} {r.attribute}: {r.group}" for r in t.itertuples()], fontsize=6)
        ax.set_title(f"{metric}, 95% bootstrap CI", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    if not metrics:
        axes[0][0].text(0.5, 0.5, "no VAE-type run with groups to analyse", ha="center")
    save_figure(path, fig)
    plt.close(fig)


def run(config: dict, out_dir) -> pd.DataFrame:
    out_dir = Path(out_dir)
    table, disparities = analyse(config)
    write_csv(out_dir / "reconstruction_groups.csv", table)
    write_csv(out_dir / "reconstruction_disparity.csv", disparities)
    forest(table, out_dir / "reconstruction_forest.png")
    return table
