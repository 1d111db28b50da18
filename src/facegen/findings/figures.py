"""The findings' figure: the central comparison's FID and its precision against recall, over seeds."""

from __future__ import annotations

from pathlib import Path

from facegen.findings import stats
from facegen.findings.results import Results


def central_figure(res: Results, central: dict | None, path: Path) -> bool:
    """Two panels: mean FID with its 95% t interval over seeds, each seed a dot; and mean precision
    against mean recall with one standard deviation over seeds as error bars. Without a central comparison
    the figure says so (the workflow's output exists either way); returns whether it drew one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facegen.io import save_figure

    if central is None:
        fig = plt.figure(figsize=(5, 0.8))
        fig.text(0.5, 0.5, "No central comparison (VAE, DCGAN and a VAE-GAN at one resolution) in this config.",
                 ha="center", va="center", fontsize=9)
        save_figure(path, fig)
        plt.close(fig)
        return False
    dataset, resolution, models = central["dataset"], central["resolution"], central["models"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, m in enumerate(models):
        fid = res.values(dataset, resolution, m, "fid")
        s = stats.mean_interval(fid)
        yerr = [[s["mean"] - s["low"]], [s["high"] - s["mean"]]] if s["n"] > 1 else None
        left.errorbar([i], [s["mean"]], yerr=yerr, fmt="o", color=f"C{i}", capsize=4)
        left.scatter([i] * len(fid), fid, s=12, color=f"C{i}", alpha=0.5)
        p, r = (stats.mean_interval(res.values(dataset, resolution, m, k)) for k in ("precision", "recall"))
        right.errorbar([r["mean"]], [p["mean"]], xerr=None if r["n"] < 2 else [r["sd"]], yerr=None if p["n"] < 2 else [p["sd"]],
                       fmt="o", color=f"C{i}", capsize=3, label=m)
    left.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    left.set(ylabel="Inception FID (lower is better)", title=f"{dataset} {resolution}x{resolution}: FID, {stats.CONFIDENCE:.0%} t interval over seeds")
    right.set(xlabel="recall (diversity)", ylabel="precision (quality)", title="precision vs recall, ±1 sd over seeds")
    right.legend(fontsize=7)
    left.title.set_fontsize(9)
    right.title.set_fontsize(9)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)
    return True
