"""The bias analysis: the demographic classifiers against the conv-VAE report's anchors, and
per-group reconstruction quality with intervals, disparity ratios and corrected tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.bias import diagnostics
from facegen.io import read_json
from facegen.reference import CONV_VAE_REPORT_CLASSIFIER

NAME = "bias"
TITLE = "Bias analysis"


def paths(config: dict) -> dict:
    from facegen.bias.selection import classifier_sources
    from facegen import paths as layout

    recon, data, gen = layout.bias_reconstruction(config), layout.bias_dataset(config), layout.bias_generation(config)
    return {"groups": recon["groups"], "disparity": recon["disparity"], "forest": recon["forest"],
            "imbalance": data["imbalance"], "faces": data["faces"], "generation": gen["summary"],
            "generation_quality": gen["quality"], "generation_figure": gen["figure"],
            "mitigation": layout.bias_mitigation(config), "findings": layout.findings(config)["json"],
            "classifiers": [layout.demographic_classifier(config, c["dataset"], c["source"]).with_suffix(".json")
                            for c in classifier_sources(config)]}


def _has_runs(config: dict) -> bool:
    from facegen.training.matrix import active_runs

    return bool(active_runs(config))


def inputs(config: dict) -> list[Path]:
    if not _has_runs(config):
        return []
    p = paths(config)
    return [p["groups"], p["disparity"], p["forest"], p["imbalance"], p["faces"], p["generation"],
            p["generation_quality"], p["generation_figure"], p["mitigation"], p["findings"], *p["classifiers"],
            *[diagnostics.figure_path(f) for f in p["classifiers"]]]


def anchor_verdicts(found: dict) -> dict[str, dict]:
    """The findings' verdict on each classifier metric they judge against a quoted anchor, by metric."""
    return {item[diagnostics.FINDING_METRIC]: item for paper in found.get("papers", []) for item in paper["items"]
            if diagnostics.FINDING_METRIC in item}


def _classifier_rows(files: list[Path], verdicts: dict[str, dict]) -> list[dict]:
    """One row per classifier and metric, test beside val; the conv-VAE report's anchors sit beside the
    classifier trained in its setting (UTKFace 48x48 grayscale), with the findings' verdict on them
    (``verdicts``, from :func:`anchor_verdicts`), so that table and findings cannot disagree."""
    anchors, rows = CONV_VAE_REPORT_CLASSIFIER, []
    for f in files:
        m = read_json(f)
        same_setting = (m["dataset"], m["source"]) == (anchors["dataset"], anchors["input"])
        for k, v in sorted(m.items()):
            if not (k.endswith(diagnostics.SCALAR_METRICS) and isinstance(v, float)) or k.startswith(diagnostics.VAL_PREFIX):
                continue
            anchor = anchors.get(k) if same_setting else None
            verdict = "" if anchor is None else verdicts[k]["verdict"] if k in verdicts else "not judged by the findings"
            digits = 3 if k.endswith("accuracy") else 2
            val = m.get(diagnostics.VAL_PREFIX + k)
            rows.append({"name": f"{m['dataset']} / {m['source']}", "n_test": m["n_test"], "epochs": m["epochs"],
                         "metric": k, "value": f"{v:.{digits}f}", "val": "" if val is None else f"{val:.{digits}f}",
                         "anchor": "" if anchor is None else str(anchor), "verdict": verdict})
    return rows


def _classifier_details(files: list[Path]) -> list[dict]:
    """Per classifier: per-class precision/recall/F1, accuracy by age bucket, and the diagnostics figure."""
    out = []
    for f in files:
        m = read_json(f)
        by_age = [{"target": t, "cells": {b: f"{v:.3f}" for b, v in m[f"{t}_accuracy_by_age_bucket"].items()}}
                  for t in diagnostics.class_targets(m) if f"{t}_accuracy_by_age_bucket" in m]
        shown = diagnostics.panels(m)
        out.append({"name": f"{m['dataset']} / {m['source']}", "figure": str(diagnostics.figure_path(f).resolve()),
                    "caption": "; ".join(shown), "width": f"{min(1.0, 0.3 * max(len(shown), 1)):.2f}",
                    "per_class": [{**r, **{k: f"{r[k]:.3f}" for k in ("precision", "recall", "f1")}}
                                  for r in diagnostics.per_class_rows(m)],
                    "by_age": by_age, "buckets": list(by_age[0]["cells"]) if by_age else []})
    return out


def _disparity_rows(disparity: pd.DataFrame, groups: pd.DataFrame) -> list[dict]:
    """One row per run, attribute and metric (the appendix table behind the findings' synthesis): worst and
    best group, the disparity ratio, and the groups that differ significantly from the pooled mean."""
    out = []
    for r in disparity.itertuples():
        sig = groups[(groups["run"] == r.run) & (groups["attribute"] == r.attribute) & (groups["metric"] == r.metric)
                     & groups["significant"]]
        out.append({"run": r.run, "attribute": r.attribute, "metric": r.metric, "worst": r.worst_group, "best": r.best_group,
                    "ratio": f"{r.disparity_ratio:.3f}",
                    "significant": ", ".join(f"{g.group} ({g.mean:.4g} vs {g.pooled_mean:.4g})" for g in sig.itertuples()) or "none"})
    return out


def context(config: dict, results: Path) -> dict:
    if not _has_runs(config):
        return {"classifiers": [], "has_runs": False}
    p = paths(config)
    groups = pd.read_csv(p["groups"]) if p["groups"].stat().st_size > 1 else pd.DataFrame()
    disparity = pd.read_csv(p["disparity"]) if p["disparity"].stat().st_size > 1 else pd.DataFrame()
    found = read_json(p["findings"]) if p["findings"].is_file() else {}
    return {"classifiers": _classifier_rows(p["classifiers"], anchor_verdicts(found)),
            "classifier_details": _classifier_details(p["classifiers"]),
            "anchor_source": CONV_VAE_REPORT_CLASSIFIER["source"],
            "classifier_method": _classifier_method(config["bias"]["classifier"]),
            "has_runs": True, "disparity": _disparity_rows(disparity, groups) if len(disparity) else [],
            "n_boot": config["bias"]["n_boot"], "n_perm": config["bias"]["n_perm"], "alpha": config["bias"]["alpha"],
            "forest": str(p["forest"].resolve()), "faces": str(p["faces"].resolve()),
            "imbalance": pd.read_csv(p["imbalance"]).to_dict("records") if p["imbalance"].stat().st_size > 1 else [],
            "generation": _generation_rows(p["generation"], config["bias"]["min_group_images"]),
            "zero_width": _zero_width(_read(p["generation"])),
            "generation_quality": _quality_rows(p["generation_quality"]),
            "generation_figure": str(p["generation_figure"].resolve()),
            "mitigation": _mitigation_rows(p["mitigation"]),
            "n_labelled": min(config["evaluation"]["n_generated"], config["evaluation"]["save_samples"]),
            "attribute_labelled": _attribute_labelled(config)}


def _zero_width(generation: pd.DataFrame) -> dict | None:
    """How many rows of the generation table have a zero-width KL interval (the one interval taken from the
    clipped correction, which can repeat one mix in every resample), and in how many of those every sample
    was predicted in one group (counted: a list of runs was a paragraph nobody reads)."""
    if generation.empty:
        return None
    zero = generation[generation["kl_train_gen_ci_high"] - generation["kl_train_gen_ci_low"] < 1e-12]
    if zero.empty:
        return None
    return {"n": len(zero), "total": len(generation), "one_group": int((zero["n_groups_predicted"] == 1).sum())}


def _classifier_method(ccfg: dict) -> str:
    if ccfg["regression_head"] == "l1":
        return "a single output trained by L1"
    return (f"a softmax over {ccfg['bin_width']:g}-unit bins trained towards a Gaussian label distribution of std "
            f"{ccfg['label_sigma']:g} around the true value plus an L1 term on its expected value, which is the "
            "prediction (DLDL-v2)")


def _attribute_labelled(config: dict) -> str:
    from facegen.bias.selection import attributes_for, labelled_runs

    by_dataset = {}
    for r in labelled_runs(config):
        if not config["bias"]["datasets"][r["dataset"]].get("targets"):
            by_dataset.setdefault(r["dataset"], set()).update(attributes_for(config, r))
    return "; ".join(f"{d}: {', '.join(sorted(a))}" for d, a in sorted(by_dataset.items())) or "no dataset"


def _fmt(v, digits=3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) and v == v else "n/a"


def _mitigation_rows(path: Path) -> list[dict]:
    def change(r, stat, digits=3):
        return f"{_fmt(getattr(r, f'{stat}_baseline'), digits)} -> {_fmt(getattr(r, f'{stat}_balanced'), digits)}"

    return [{"pair": f"{r.dataset}/{r.resolution}: {r.baseline} vs {r.balanced} ({r.balance_mode}, balanced on {r.balance_column}, seed {r.seed})",
             "fid": change(r, "fid", 1), "fid_balanced": change(r, "fid_balanced_real", 1),
             "disparity": change(r, "mse_disparity"), "fd_uniform": change(r, "fd_uniform"),
             "fd2_uniform": change(r, "fd2_uniform_unbiased", 4),
             "fd2_difference": f"{_fmt(r.fd2_difference, 4)} [{_fmt(r.fd2_difference_ci_low, 4)}, {_fmt(r.fd2_difference_ci_high, 4)}]",
             "fd_train": change(r, "fd_train"), "fairer": r.fairer}
            for r in _read(path).itertuples()]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.stat().st_size > 1 else pd.DataFrame()


def _generation_rows(path: Path, min_group_images: int) -> list[dict]:
    def interval(r, stat):
        return f"{getattr(r, stat):.3f} [{getattr(r, stat + '_ci_low'):.3f}, {getattr(r, stat + '_ci_high'):.3f}]"

    return [{"run": r.run, "target": r.target, "n": r.n_samples, "fd_uniform_uncorrected": f"{r.fd_uniform_uncorrected:.3f}",
             "fd_uniform": interval(r, "fd_uniform"), "fd2_uniform": _fmt(r.fd2_uniform_unbiased, 4),
             "chi2_p": _fmt(r.chi2_uniform_p, 3), "fd_train": interval(r, "fd_train"),
             "kl_train_gen": interval(r, "kl_train_gen"),
             "fid_balanced_real": f"{_fmt(r.fid_balanced_real, 1)} (n = {r.n_balanced_real})" if r.n_balanced_real else
             f"n/a: a group has fewer than {min_group_images} real reference images"}
            for r in _read(path).itertuples()]


def _quality_rows(path: Path) -> list[dict]:
    return [{"run": r.run, "target": r.target, "group": r.group, "n_generated": r.n_generated, "n_real": r.n_real,
             "kid": f"{r.kid:.4f}" if r.kid == r.kid else (r.note if isinstance(r.note, str) else "n/a")}
            for r in _read(path).itertuples()]
