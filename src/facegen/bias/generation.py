"""Generation bias: label each run's evaluation samples with the RGB demographic classifier (or, for
CelebA, the attribute classifier of the latent experiments), correct the predicted group mix for the
classifier's errors with its test-split confusion matrix, and measure the mix against the uniform one
(the fairness discrepancy of Choi et al. 2020) and against the training mix (L2 drift, and
KL(training || generated)), each with a bootstrap interval. Sample quality is the FID against a
group-balanced real reference, and per group the KID of the samples predicted as that group against
its real images, where both counts allow."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facegen.bias.classifier import encode_targets, load_demographic, predict  # noqa: E402
from facegen.bias.stats import (correct_for_confusion, distribution, fairness_discrepancy, kl_divergence,  # noqa: E402
                               resample_confusion, row_shares)
from facegen.bias.selection import attributes_for, classifier_for, labelled_runs  # noqa: E402
from facegen.data.prepared import PreparedDataset  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402
from facegen.paths import eval_file, real_path, run_key  # noqa: E402

FIGURE_COLUMNS = 6


def mix_statistics(pred: np.ndarray, train_mix: np.ndarray, confusion_counts: np.ndarray, n_boot: int, seed: int) -> dict:
    """Predicted and corrected group mix of labels ``pred`` (class indices), and their distances:

    * fd_uniform: L2 to the uniform mix, the fairness discrepancy of Choi et al. 2020;
    * fd_train: L2 to ``train_mix``, drift from the training data;
    * kl_train_gen: KL(training mix || generated mix), the direction that sees a vanished group.

    The correction inverts the classifier's test-split confusion matrix (``confusion_counts``), assuming it
    holds for generated images as for real ones. The percentile bootstrap intervals resample both the
    labelled samples and the classifier's test set, so the confusion matrix's own error is in them.
    """
    k = len(train_mix)
    confusion = row_shares(confusion_counts)
    predicted = distribution(pred, range(k))
    corrected = correct_for_confusion(predicted, confusion)
    rng = np.random.default_rng(seed)

    def distances(mix):
        return fairness_discrepancy(mix), fairness_discrepancy(mix, train_mix), kl_divergence(train_mix, mix)

    boots = np.array([distances(correct_for_confusion(distribution(pred[rng.integers(0, len(pred), len(pred))], range(k)),
                                                      resample_confusion(confusion_counts, rng)))
                      for _ in range(n_boot)])
    low, high = np.quantile(boots, [0.025, 0.975], axis=0)
    out = {"predicted": predicted, "corrected": corrected, "fd_uniform_uncorrected": fairness_discrepancy(predicted)}
    for i, (name, value) in enumerate(zip(("fd_uniform", "fd_train", "kl_train_gen"), distances(corrected))):
        out.update({name: value, f"{name}_ci_low": float(low[i]), f"{name}_ci_high": float(high[i])})
    return out


def balanced_reference(groups: np.ndarray, k: int, seed: int, min_per_group: int = 1) -> np.ndarray | None:
    """Indices of a group-balanced subset: the smallest group's count drawn (seeded) from every group;
    None when a group has fewer than ``min_per_group`` images."""
    counts = np.bincount(groups, minlength=k)
    if counts.min() < max(min_per_group, 1):
        return None
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(groups == g), counts.min(), replace=False) for g in range(k)]))


def label(config: dict, run: dict, samples: np.ndarray, meta: pd.DataFrame) -> list[dict]:
    """Per labelled target: its group names, each sample's predicted group, the classifier's test confusion
    counts (rows true, columns predicted), and every dataset row's true group (class indices throughout)."""
    from facegen.experiments.attribute_classifier import load_classifier
    from facegen.experiments.attribute_classifier import predict as predict_attributes

    path = classifier_for(config, run)
    metrics = json.loads(path.with_suffix(".json").read_text())
    if config["bias"]["datasets"][run["dataset"]].get("targets"):
        clf, cinfo = load_demographic(path)
        probs = predict(clf, samples)
        _, truth = encode_targets(meta, cinfo["targets"], run["dataset"])
        return [{"target": t, "groups": metrics.get(f"{t}_classes", [str(c) for c in cinfo["categories"][t]]),
                 "pred": probs[t].argmax(1), "confusion": np.asarray(metrics[f"{t}_confusion"], float), "truth": truth[t]}
                for t, kind in cinfo["targets"].items() if kind == "class"]
    clf, names = load_classifier(path)
    probs = predict_attributes(clf, samples)
    return [{"target": a, "groups": [f"not {a}", a], "pred": (probs[:, names.index(a)] > 0.5).astype(np.int64),
             "confusion": np.asarray(metrics["test_confusion"][a], float), "truth": meta[a].to_numpy().astype(np.int64)}
            for a in attributes_for(config, run)]


def run(config: dict, out_dir) -> pd.DataFrame:
    from facegen.evaluation.real import load_real
    from facegen.evaluation.samples import load_samples
    from facegen.metrics import distribution as dist

    bcfg, ev = config["bias"], config["evaluation"]
    out_dir = Path(out_dir)
    mixes, summary, quality = [], [], []
    for r in labelled_runs(config):
        key = run_key(r)
        samples, gen_feats = load_samples(eval_file(config, r, "samples"))
        meta = PreparedDataset.of(config, r["dataset"]).meta
        train = meta["split"].to_numpy() == "train"
        real = load_real(real_path(config, {**r, "split": ev["real_split"]}))
        for lab in label(config, r, samples, meta):
            target, groups, pred = lab["target"], lab["groups"], lab["pred"]
            train_mix = distribution(lab["truth"][train], range(len(groups)))
            stats = mix_statistics(pred, train_mix, lab["confusion"], bcfg["n_boot"], bcfg["seed"])
            for g, name in enumerate(groups):
                mixes.append({"run": key, "target": target, "group": name, "train_share": train_mix[g],
                              "predicted_share": stats["predicted"][g], "corrected_share": stats["corrected"][g]})
            summary.append({"run": key, "target": target, "n_samples": len(samples),
                            "n_groups_predicted": int(len(np.unique(pred))),
                            **{k: v for k, v in stats.items() if k not in ("predicted", "corrected")}})
            real_groups = lab["truth"][real["rows"]]
            ref = balanced_reference(real_groups, len(groups), bcfg["seed"], bcfg["min_group_images"])
            summary[-1].update({"fid_balanced_real": dist.fid(gen_feats, real["features"][ref]) if ref is not None else float("nan"),
                                "n_balanced_real": 0 if ref is None else len(ref)})
            for g, name in enumerate(groups):
                n_gen, n_real = int((pred == g).sum()), int((real_groups == g).sum())
                row = {"run": key, "target": target, "group": name, "n_generated": n_gen, "n_real": n_real}
                if min(n_gen, n_real) >= bcfg["min_group_images"]:
                    size = min(n_gen, n_real, 1000)
                    row.update({"kid": dist.kid(gen_feats[pred == g], real["features"][real_groups == g], 50, size,
                                                bcfg["seed"])["kid"], "note": ""})
                else:
                    row.update({"kid": float("nan"),
                                "note": f"counts do not allow it (need {bcfg['min_group_images']} generated and real)"})
                quality.append(row)
    mix_table = pd.DataFrame(mixes)
    write_csv(out_dir / "generation_mix.csv", mix_table)
    write_csv(out_dir / "generation_quality.csv", pd.DataFrame(quality))
    table = pd.DataFrame(summary)
    write_csv(out_dir / "generation_summary.csv", table)
    _figure(mix_table, out_dir / "generation_mix.png")
    return table


def _figure(mix: pd.DataFrame, path) -> None:
    panels = list(mix.groupby(["run", "target"], sort=False)) if len(mix) else []
    # A grid, not one row: the paper config has over 100 panels, and a figure hundreds of inches wide
    # exceeds the largest dimension TeX can handle.
    cols = min(max(len(panels), 1), FIGURE_COLUMNS)
    rows = -(-max(len(panels), 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, ((run, target), grp) in zip(axes.flat, panels):
        x = np.arange(len(grp))
        for i, (col, label) in enumerate((("train_share", "training"), ("predicted_share", "samples, predicted"),
                                          ("corrected_share", "samples, corrected"))):
            ax.bar(x + (i - 1) * 0.27, grp[col], 0.27, label=label)
        ax.set_xticks(x, grp["group"].astype(str), fontsize=6, rotation=30)
        ax.set_title(f"{run}: {target}", fontsize=8)
        ax.legend(fontsize=6)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no run on a dataset with classifier targets", ha="center")
    save_figure(path, fig)
    plt.close(fig)
