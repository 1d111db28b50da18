"""The mitigation ablation: each model beside its group-balanced twin (training.balance_column), on
overall FID, FID against a group-balanced real reference, the reconstruction disparity ratio of the
balanced attribute, and the group mix of the samples against the uniform mix (fd_uniform, Choi et al.
2020) and against the training mix (fd_train), all read from the evaluation and bias result files.

One row per pair and training seed. Which of that seed's two models generates the fairer mix follows the
unbiased squared fairness discrepancy (fd2_uniform_unbiased): the paired bootstrap interval of the
difference, balanced minus baseline (facegen.bias.stats.fd_difference), must exclude 0, else the reading
is "no clear difference". That reading is about these two trained models only. Whether rebalancing
makes a model fairer is decided across seeds by the findings (facegen.findings.bias), because a
generator's group mix moves between training seeds and no per-seed interval contains that."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from facegen.bias.stats import fd_difference
from facegen.config import active_datasets
from facegen import paths
from facegen.io import write_csv
from facegen.training.matrix import run_spec, training_runs
from facegen.views import TrainingView


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def _rows(frame: pd.DataFrame, **match) -> pd.DataFrame:
    rows = frame
    for k, v in match.items():
        if k not in rows:
            return rows.iloc[:0]
        rows = rows[rows[k].isin(v) if isinstance(v, list) else rows[k] == v]
    return rows


def _pick(frame: pd.DataFrame, value: str, **match):
    rows = _rows(frame, **match) if not frame.empty else frame
    return float(rows[value].iloc[0]) if len(rows) and value in rows else float("nan")


# Not "n/a": pandas reads that back from the CSV as NaN.
NO_INTERVAL = "no interval"


def fairer(row: dict) -> str:
    """'balanced', 'baseline', 'no clear difference' (the paired interval of fd2_uniform, balanced minus
    baseline, holds 0) or NO_INTERVAL, for one seed's two models."""
    low, high = row["fd2_difference_ci_low"], row["fd2_difference_ci_high"]
    if low != low or high != high:
        return NO_INTERVAL
    if high < 0:
        return "balanced"
    if low > 0:
        return "baseline"
    return "no clear difference"


def _labels(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """A generation-summary row's predicted labels (rebuilt from its counts, which is all a bootstrap of a
    group mix sees) and its classifier's confusion counts; None without that row."""
    if summary.empty or "predicted_counts" not in summary:
        return None
    counts = np.asarray(json.loads(summary["predicted_counts"].iloc[0]))
    return np.repeat(np.arange(len(counts)), counts), np.asarray(json.loads(summary["confusion_counts"].iloc[0]))


def paired_difference(generation: pd.DataFrame, baseline: str, balanced: str, target: str, n_boot: int, seed: int) -> dict:
    """fd2_uniform of the balanced twin minus the baseline's (facegen.bias.stats.fd_difference); NaN where
    either side's labels are missing."""
    a = _labels(_rows(generation, run=balanced, target=target)) if not generation.empty else None
    b = _labels(_rows(generation, run=baseline, target=target)) if not generation.empty else None
    if a is None or b is None:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan")}
    if not np.array_equal(a[1], b[1]):
        raise ValueError(f"{balanced} and {baseline} were labelled by different classifiers; a paired comparison needs one")
    return fd_difference(a[0], b[0], a[1], len(a[1]), n_boot, seed)


def run(config: dict, out: str | Path) -> pd.DataFrame:
    bcfg = config["bias"]
    metrics = _read(paths.evaluation_summary(config)["table"])
    disparity = _read(paths.bias_reconstruction(config)["disparity"])
    generation = _read(paths.bias_generation(config)["summary"])
    runs = {(r["dataset"], r["resolution"], r["model"], r["seed"]) for r in training_runs(config, active_datasets(config))}
    rows = []
    for pair in bcfg["mitigation"]:
        for ds, res, model, seed in sorted(runs):
            twin = (ds, res, pair["balanced"], seed)
            if model != pair["baseline"] or twin not in runs:
                continue
            training = TrainingView(run_spec(config, *twin)["training"])
            column = training.balance_column
            attrs = [column, f"{column}_name"]
            row = {"dataset": ds, "resolution": res, "seed": seed, "baseline": model, "balanced": pair["balanced"],
                   "balance_column": column, "balance_mode": training.balance_mode}
            keys = {side: f"{ds}/{res}/{name}/{seed}" for side, name in (("baseline", model), ("balanced", pair["balanced"]))}
            for side, key in keys.items():
                row[f"fid_{side}"] = _pick(metrics, "value", run=key, metric="fid")
                row[f"mse_disparity_{side}"] = _pick(disparity, "disparity_ratio", run=key, metric="mse", attribute=attrs)
                row[f"fid_balanced_real_{side}"] = _pick(generation, "fid_balanced_real", run=key, target=column)
                for stat in ("fd_uniform", "fd_train"):
                    for suffix in ("", "_ci_low", "_ci_high"):
                        row[f"{stat}{suffix}_{side}"] = _pick(generation, stat + suffix, run=key, target=column)
                for stat in ("fd2_uniform_unbiased", "chi2_uniform_p"):
                    row[f"{stat}_{side}"] = _pick(generation, stat, run=key, target=column)
            diff = paired_difference(generation, keys["baseline"], keys["balanced"], column, bcfg["n_boot"], bcfg["seed"])
            row.update({"fd2_difference": diff["difference"], "fd2_difference_ci_low": diff["low"], "fd2_difference_ci_high": diff["high"]})
            row["fairer"] = fairer(row)
            rows.append(row)
    table = pd.DataFrame(rows)
    write_csv(out, table)
    return table
