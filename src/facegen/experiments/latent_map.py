"""A 2-D PCA and t-SNE of test-set posterior means, coloured by attributes or demographics, with
numbers: PCA explained variance and a cross-validated linear probe of each attribute on the latents."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402

from facegen.experiments.common import encode_mean, load_runs, out_paths  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402

DEMOGRAPHICS = {"utkface": ["gender", "race"]}


def colour_columns(config: dict, dataset: str, meta: pd.DataFrame) -> list[str]:
    names = config["latent_experiments"]["attributes"]["names"].get(dataset, []) or DEMOGRAPHICS.get(dataset, [])
    return [n for n in names if n in meta.columns][:4]


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["latent_map"], ex["seed"]
    rows, plots = [], []
    for item in load_runs(config):
        if not item.is_vae:
            continue
        test = item.rows("test", cfg["n"], seed)
        z = encode_mean(item.model, item.images[test]).numpy().astype(np.float64)
        pca = PCA(n_components=min(10, z.shape[1], len(z)), random_state=seed).fit(z)
        xy_pca = pca.transform(z)[:, :2]
        perplexity = min(cfg["perplexity"], (len(z) - 1) / 3)
        xy_tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
        cols = colour_columns(config, item.run["dataset"], item.meta)
        meta = item.meta.iloc[test]
        for col in cols:
            y = meta[col].to_numpy()
            folds = int(min(5, np.bincount(pd.factorize(y)[0]).min()))
            acc = float(cross_val_score(LogisticRegression(max_iter=2000), z, y, cv=folds).mean()) if folds >= 2 else float("nan")
            majority = float(pd.Series(y).value_counts(normalize=True).iloc[0])
            rows.append({"run": item.key, "column": col, "n": len(z), "probe_accuracy": acc, "majority_rate": majority,
                         "pca_var_pc1": float(pca.explained_variance_ratio_[0]),
                         "pca_var_pc2": float(pca.explained_variance_ratio_[1]) if len(pca.explained_variance_ratio_) > 1 else 0.0})
        plots.append((item.key, xy_pca, xy_tsne, meta, cols))
    fig, axes = plt.subplots(max(len(plots), 1), 2 * max([len(p[4]) for p in plots] + [1]), squeeze=False,
                             figsize=(3 * 2 * max([len(p[4]) for p in plots] + [1]), 3 * max(len(plots), 1)))
    for r, (key, xy_pca, xy_tsne, meta, cols) in enumerate(plots):
        for c, col in enumerate(cols):
            for j, (name, xy) in enumerate((("PCA", xy_pca), ("t-SNE", xy_tsne))):
                ax = axes[r][2 * c + j]
                codes, cats = pd.factorize(meta[col].astype(str), sort=True)
                ax.scatter(xy[:, 0], xy[:, 1], c=codes, cmap="viridis", s=4)
                ax.set_title(f"{key}\n{name} by {col}", fontsize=7)
                ax.set_xticks([]), ax.set_yticks([])
    paths = out_paths(out_dir)
    save_figure(paths["figure"], fig)
    plt.close(fig)
    table = pd.DataFrame(rows, columns=["run", "column", "n", "probe_accuracy", "majority_rate", "pca_var_pc1", "pca_var_pc2"])
    write_csv(paths["table"], table)
    return table
