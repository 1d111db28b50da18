"""The mitigation ablation: each model beside its group-balanced twin (training.balance_column), on
overall FID, FID against a group-balanced real reference, the reconstruction disparity ratio of the
balanced attribute, and the group mix of the samples against the uniform mix (fd_uniform, Choi et al.
2020) and against the training mix (fd_train), all read from the evaluation and bias result files.

Which twin is fairer follows fd_uniform, and is called only when their bootstrap intervals do not
overlap (a conservative test, stricter than one at the 5% level); otherwise the reading is "no clear difference"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.config import active_datasets
from facegen import paths
from facegen.io import write_csv
from facegen.training.matrix import run_spec, training_runs
from facegen.views import TrainingView


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def _pick(frame: pd.DataFrame, value: str, **match):
    if frame.empty:
        return float("nan")
    rows = frame
    for k, v in match.items():
        if k not in rows:
            return float("nan")
        rows = rows[rows[k].isin(v) if isinstance(v, list) else rows[k] == v]
    return float(rows[value].iloc[0]) if len(rows) else float("nan")


# Not "n/a": pandas reads that back from the CSV as NaN.
NO_INTERVAL = "no interval"


def fairer(row: dict) -> str:
    """'balanced', 'baseline', 'no clear difference' (overlapping fd_uniform intervals) or NO_INTERVAL."""
    lo_b, hi_b = row["fd_uniform_ci_low_baseline"], row["fd_uniform_ci_high_baseline"]
    lo_m, hi_m = row["fd_uniform_ci_low_balanced"], row["fd_uniform_ci_high_balanced"]
    if any(v != v for v in (lo_b, hi_b, lo_m, hi_m)):
        return NO_INTERVAL
    if hi_m < lo_b:
        return "balanced"
    if hi_b < lo_m:
        return "baseline"
    return "no clear difference"


def run(config: dict, out: str | Path) -> pd.DataFrame:
    metrics = _read(paths.evaluation_summary(config)["table"])
    disparity = _read(paths.bias_reconstruction(config)["disparity"])
    generation = _read(paths.bias_generation(config)["summary"])
    runs = {(r["dataset"], r["resolution"], r["model"], r["seed"]) for r in training_runs(config, active_datasets(config))}
    rows = []
    for pair in config["bias"]["mitigation"]:
        for ds, res, model, seed in sorted(runs):
            twin = (ds, res, pair["balanced"], seed)
            if model != pair["baseline"] or twin not in runs:
                continue
            training = TrainingView(run_spec(config, *twin)["training"])
            column = training.balance_column
            attrs = [column, f"{column}_name"]
            row = {"dataset": ds, "resolution": res, "seed": seed, "baseline": model, "balanced": pair["balanced"],
                   "balance_column": column, "balance_mode": training.balance_mode}
            for side, name in (("baseline", model), ("balanced", pair["balanced"])):
                key = f"{ds}/{res}/{name}/{seed}"
                row[f"fid_{side}"] = _pick(metrics, "value", run=key, metric="fid")
                row[f"mse_disparity_{side}"] = _pick(disparity, "disparity_ratio", run=key, metric="mse", attribute=attrs)
                row[f"fid_balanced_real_{side}"] = _pick(generation, "fid_balanced_real", run=key, target=column)
                for stat in ("fd_uniform", "fd_train"):
                    for suffix in ("", "_ci_low", "_ci_high"):
                        row[f"{stat}{suffix}_{side}"] = _pick(generation, stat + suffix, run=key, target=column)
            row["fairer"] = fairer(row)
            rows.append(row)
    table = pd.DataFrame(rows)
    write_csv(out, table)
    return table
