"""Generation bias: label each run's evaluation samples with the RGB demographic classifier (or, for
CelebA, the attribute classifier of the latent experiments), correct the predicted group mix for the
classifier's errors with its test-split confusion matrix, and measure the mix against the uniform one
(the fairness discrepancy of Choi et al. 2020, with an unbiased estimate of its square and a chi-square
test of uniformity) and against the training mix (L2 drift, and KL(training || generated)), each with
a bootstrap interval. Sample quality is the FID against a group-balanced real reference, and per group
the KID of the samples against the real images that the same classifier puts in that group, where
both counts allow."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facegen.bias.classifier import encode_targets, load_demographic, predict  # noqa: E402
from facegen.bias.stats import (correct_for_confusion, distance_interval, distribution, fairness_discrepancy,  # noqa: E402
                               kl_divergence, mix_intervals, row_shares, uniform, uniformity_test)
from facegen.bias.selection import attributes_for, classifier_for, labelled_runs  # noqa: E402
from facegen.data.prepared import PreparedDataset  # noqa: E402
from facegen.io import save_figure, write_csv  # noqa: E402
from facegen.paths import eval_file, real_path, run_key  # noqa: E402

FIGURE_COLUMNS = 6


def mix_statistics(pred: np.ndarray, train_mix: np.ndarray, confusion_counts: np.ndarray, n_boot: int, seed: int) -> dict:
    """Predicted and corrected group mix of labels ``pred`` (class indices), and their distances:

    * fd_uniform: L2 to the uniform mix, the fairness discrepancy of Choi et al. 2020 (the plug-in);
      fd2_uniform_unbiased beside it estimates its square without the plug-in's upward bias
      (facegen.bias.stats.squared_distance_unbiased), and chi2_uniform / chi2_uniform_p test a uniform mix;
    * fd_train: L2 to ``train_mix``, drift from the training data (plug-in, and fd2_train_unbiased);
    * kl_train_gen: KL(training mix || generated mix), the direction that sees a vanished group.

    The correction inverts the classifier's test-split confusion matrix (``confusion_counts``), assuming it
    holds for generated images as for real ones. The percentile bootstrap intervals (facegen.bias.stats.
    mix_intervals) resample both the labelled samples and the classifier's test set, so the confusion
    matrix's own error is in them; those of fd_uniform and fd_train are of the unbiased squares, cut at 0
    and square-rooted, so that they reach 0 where the data allow a balanced mix.
    """
    k = len(train_mix)
    confusion = row_shares(confusion_counts)
    counts = np.bincount(pred, minlength=k)
    predicted = distribution(pred, range(k))
    corrected = correct_for_confusion(predicted, confusion)
    intervals = mix_intervals(pred, confusion_counts, train_mix, n_boot, seed)
    chi2, p = uniformity_test(counts, confusion)
    out = {"predicted": predicted, "corrected": corrected, "predicted_counts": json.dumps(counts.tolist()),
           "confusion_counts": json.dumps(np.asarray(confusion_counts).round().astype(int).tolist()),
           "fd_uniform_uncorrected": fairness_discrepancy(predicted), "chi2_uniform": chi2, "chi2_uniform_p": p}
    for name, target in (("fd_uniform", uniform(k)), ("fd_train", train_mix)):
        unbiased, low, high = intervals[name.replace("fd_", "fd2_")]
        out[name] = fairness_discrepancy(corrected, target)
        out[f"{name.replace('fd_', 'fd2_')}_unbiased"] = float(unbiased)
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = distance_interval(low, high, target)
    _, low, high = intervals["kl_train_gen"]
    out.update({"kl_train_gen": kl_divergence(train_mix, corrected), "kl_train_gen_ci_low": float(low), "kl_train_gen_ci_high": float(high)})
    return out


def group_kid(gen_features: np.ndarray, gen_groups: np.ndarray, real_features: np.ndarray, real_groups: np.ndarray,
              groups: list[str], min_images: int, seed: int) -> list[dict]:
    """Per group: the KID (facegen.metrics.distribution.kid) of the generated samples in it against the real
    images in it, where both sides hold ``min_images``. Both sides must be split by the same classifier's
    predictions: splitting the real images by their true labels instead counts the classifier's errors
    as generation error (a group it confuses gets a high KID even for samples identical to real faces)."""
    from facegen.metrics import distribution as dist

    rows = []
    for g, name in enumerate(groups):
        gen, real = gen_features[gen_groups == g], real_features[real_groups == g]
        row = {"group": name, "n_generated": len(gen), "n_real": len(real)}
        if min(len(gen), len(real)) >= min_images:
            row.update({"kid": dist.kid(gen, real, 50, min(len(gen), len(real), 1000), seed)["kid"], "note": ""})
        else:
            row.update({"kid": float("nan"), "note": f"counts do not allow it (need {min_images} generated and real)"})
        rows.append(row)
    return rows


def balanced_reference(groups: np.ndarray, k: int, seed: int, min_per_group: int = 1) -> np.ndarray | None:
    """Indices of a group-balanced subset: the smallest group's count drawn (seeded) from every group;
    None when a group has fewer than ``min_per_group`` images."""
    counts = np.bincount(groups, minlength=k)
    if counts.min() < max(min_per_group, 1):
        return None
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(groups == g), counts.min(), replace=False) for g in range(k)]))


def label(config: dict, run: dict, samples: np.ndarray, real_images: np.ndarray, meta: pd.DataFrame) -> list[dict]:
    """Per labelled target: its group names, the predicted group of each sample and of each real reference
    image, the classifier's test confusion counts (rows true, columns predicted), and every dataset row's
    true group (class indices throughout)."""
    from facegen.experiments.attribute_classifier import load_classifier
    from facegen.experiments.attribute_classifier import predict as predict_attributes

    path = classifier_for(config, run)
    metrics = json.loads(path.with_suffix(".json").read_text())
    if config["bias"]["datasets"][run["dataset"]].get("targets"):
        clf, cinfo = load_demographic(path)
        probs, real_probs = predict(clf, samples), predict(clf, real_images)
        _, truth = encode_targets(meta, cinfo["targets"], run["dataset"])
        return [{"target": t, "groups": metrics.get(f"{t}_classes", [str(c) for c in cinfo["categories"][t]]),
                 "pred": probs[t].argmax(1), "real_pred": real_probs[t].argmax(1),
                 "confusion": np.asarray(metrics[f"{t}_confusion"], float), "truth": truth[t]}
                for t, kind in cinfo["targets"].items() if kind == "class"]
    clf, names = load_classifier(path)
    probs, real_probs = predict_attributes(clf, samples), predict_attributes(clf, real_images)
    return [{"target": a, "groups": [f"not {a}", a], "pred": (probs[:, names.index(a)] > 0.5).astype(np.int64),
             "real_pred": (real_probs[:, names.index(a)] > 0.5).astype(np.int64),
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
        data = PreparedDataset.of(config, r["dataset"])
        meta = data.meta
        train = meta["split"].to_numpy() == "train"
        real = load_real(real_path(config, {**r, "split": ev["real_split"]}))
        real_images = np.asarray(data.images(r["resolution"])[real["rows"]])
        for lab in label(config, r, samples, real_images, meta):
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
            quality += [{"run": key, "target": target, **row}
                        for row in group_kid(gen_feats, pred, real["features"], lab["real_pred"], groups,
                                             bcfg["min_group_images"], bcfg["seed"])]
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
