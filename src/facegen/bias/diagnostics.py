"""The demographic classifier's diagnostics, as in chapter 1 of the conv-VAE report: row-normalised
confusion matrices, accuracy by age bucket, and predicted-versus-true age histograms, drawn from
the metrics JSON the classifier writes beside its checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.io import save_figure

# The metrics that sum up a split in one number. The test split's go under their plain names, the val
# split's under VAL_PREFIX: the findings read the plain names only.
SCALAR_METRICS = ("_accuracy", "_mae", "_rmse")
VAL_PREFIX = "val_"
# The key of a finding (facegen.findings.conv_vae_report) that names the test metric it judges against a quoted
# anchor: the report's classifier table shows that verdict instead of judging the metric a second time.
FINDING_METRIC = "classifier_metric"


def class_targets(metrics: dict) -> list[str]:
    return [k[:-len("_confusion")] for k in metrics if k.endswith("_confusion")]


def regression_targets(metrics: dict) -> list[str]:
    return [k[:-len("_histogram")] for k in metrics if k.endswith("_histogram")]


def per_class_rows(metrics: dict) -> list[dict]:
    """One row per target and class: precision, recall, F1 and support on the test split."""
    return [{"target": t, "class": metrics[f"{t}_classes"][r["class"]], **{k: r[k] for k in ("precision", "recall", "f1", "support")}}
            for t in class_targets(metrics) for r in metrics[f"{t}_per_class"]]


def by_age_targets(metrics: dict) -> list[str]:
    return [t for t in class_targets(metrics) if f"{t}_accuracy_by_age_bucket" in metrics]


def panels(metrics: dict) -> list[str]:
    """What the figure shows, one entry per panel, in order (also the report's caption)."""
    return ([f"{t} confusion matrix (row shares of the test split)" for t in class_targets(metrics)]
            + [f"{t} accuracy by age bucket" for t in by_age_targets(metrics)]
            + [f"predicted against true {t}" for t in regression_targets(metrics)])


def figure(metrics: dict, path: str | Path) -> None:
    # pyplot only where a figure is drawn: the report's inputs read this module's names too
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes, regress, by_age = class_targets(metrics), regression_targets(metrics), by_age_targets(metrics)
    n = len(panels(metrics))
    fig, axes = plt.subplots(1, max(n, 1), figsize=(3.4 * max(n, 1), 3.2), squeeze=False)
    axes = iter(axes[0])
    for t in classes:
        ax, cm = next(axes), np.asarray(metrics[f"{t}_confusion"], float)
        shares = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        names = [str(c) for c in metrics[f"{t}_classes"]]
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for (i, j), v in np.ndenumerate(shares):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "black")
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(f"{t}: confusion (row shares)", fontsize=8)
    for t in by_age:
        ax, acc = next(axes), metrics[f"{t}_accuracy_by_age_bucket"]
        ax.bar(range(len(acc)), list(acc.values()))
        ax.axhline(metrics[f"{t}_accuracy"], color="black", lw=0.8, ls="--", label="overall")
        ax.set_xticks(range(len(acc)), list(acc), rotation=45, fontsize=7)
        ax.set(ylim=(0, 1), ylabel="accuracy", xlabel="age bucket")
        ax.set_title(f"{t} accuracy by age bucket", fontsize=8)
        ax.legend(fontsize=6)
    for t in regress:
        ax, hist = next(axes), metrics[f"{t}_histogram"]
        edges = np.asarray(hist["edges"])
        ax.stairs(hist["true"], edges, label="true", fill=True, alpha=0.4)
        ax.stairs(hist["predicted"], edges, label="predicted", lw=1.2)
        ax.set(xlabel=t, ylabel="test images")
        ax.set_title(f"{t}: predicted vs true (MAE {metrics[f'{t}_mae']:.2f})", fontsize=8)
        ax.legend(fontsize=6)
    if not n:
        ax = next(axes)
        ax.text(0.5, 0.5, "no targets", ha="center")
        ax.axis("off")
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def figure_path(classifier: str | Path) -> Path:
    return Path(classifier).with_suffix(".png")
