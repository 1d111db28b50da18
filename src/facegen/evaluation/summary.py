"""All evaluated runs in one tidy table (run x metric, with the protocol), the per-run JSON that
`dvc metrics show` lists, and two figures: FID against training time, and precision against recall."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from facegen.evaluation.gates import COLLAPSE_DIVERSITY, gate_table  # noqa: E402
from facegen.io import save_figure, write_csv, write_json  # noqa: E402
from facegen.records import read_metrics  # noqa: E402

ID_COLUMNS = ["run", "dataset", "resolution", "model", "seed", "arch", "family", "train_minutes"]


def tidy(results: list[dict]) -> pd.DataFrame:
    rows = []
    for r in results:
        protocol = {f"protocol_{k}": v for k, v in r["protocol"].items()}
        for metric, value in r["metrics"].items():
            if isinstance(value, str):
                continue  # notes travel with their metric below
            note = r["metrics"].get(f"{metric}_note", "")
            rows.append({**{k: r[k] for k in ID_COLUMNS}, "metric": metric,
                         "value": float("nan") if value is None else float(value), "note": note, **protocol})
    return pd.DataFrame(rows).sort_values(["dataset", "resolution", "model", "seed", "metric"], kind="stable")


def across_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and count over training seeds of every model x metric."""
    g = table.groupby(["dataset", "resolution", "model", "metric"], sort=True)["value"]
    out = g.agg(mean="mean", std="std", n_seeds="count").reset_index()
    return out


def collapsed(table: pd.DataFrame) -> pd.DataFrame:
    """Runs whose LPIPS diversity is below COLLAPSE_DIVERSITY x the real images': run, both diversities."""
    wide = per_run(table)
    if not {"lpips_diversity", "lpips_diversity_real"} <= set(wide.columns):
        return pd.DataFrame(columns=["run", "lpips_diversity", "lpips_diversity_real"])
    low = wide["lpips_diversity"] < COLLAPSE_DIVERSITY * wide["lpips_diversity_real"]
    return wide.loc[low, ["run", "lpips_diversity", "lpips_diversity_real"]].reset_index(drop=True)


def per_run(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run (floors included, which have no train_minutes), one column per metric."""
    # unstack, not pivot_table(dropna=False): that keeps the floors but builds the cross product of the
    # index levels, tens of thousands of empty rows that the scatter plots then annotated (minutes of drawing).
    return table.set_index(["run", "model", "resolution", "train_minutes", "metric"])["value"].unstack("metric").reset_index()


def _scatter(frame: pd.DataFrame, x: str, y: str, path: str | Path, size=(6, 4), **axes) -> None:
    """One point per run, labelled model/resolution."""
    fig, ax = plt.subplots(figsize=size)
    sns.scatterplot(data=frame, x=x, y=y, hue="model", style="resolution", s=70, ax=ax)
    for _, r in frame.iterrows():
        ax.annotate(f"{r['model']}/{r['resolution']}", (r[x], r[y]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(**axes)
    # Outside the axes, not loc="best": "best" tests every annotation against every candidate box, which
    # took over two minutes for the paper's 35 runs.
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    save_figure(path, fig)
    plt.close(fig)


def _clean(obj):
    """NaN is not JSON; a missing spread (one seed) is null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# What makes two runs' sample metrics comparable, with each feature space's setting and each metric's keys
# (facegen.metrics.protocol_keys); the real reference (n_real) must also match within a dataset and
# resolution, where every run scores against the same real features.
SHARED_PROTOCOL = ("n_generated", "real_split", "sampler", "seed")


def check_protocols(results: list[dict]) -> None:
    """Refuse to put runs evaluated under different protocols into one table (e.g. a metrics.json left
    from an earlier evaluation config), naming the runs, the key and the values."""
    from facegen.metrics import protocol_keys

    problems = []
    for key in SHARED_PROTOCOL + protocol_keys():
        values = {}
        for r in results:
            values.setdefault(json.dumps(r["protocol"].get(key)), []).append(r["run"])
        if len(values) > 1:
            problems.append(f"{key}: " + "; ".join(f"{v} in {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''}"
                                                   for v, runs in values.items()))
    by_set: dict = {}
    for r in results:
        by_set.setdefault((r["dataset"], r["resolution"]), {}).setdefault(r["protocol"].get("n_real"), []).append(r["run"])
    problems += [f"n_real for {d}/{res}: " + "; ".join(f"{n} in {', '.join(runs[:3])}" for n, runs in counts.items())
                 for (d, res), counts in by_set.items() if len(counts) > 1]
    if problems:
        raise ValueError("runs were evaluated under different protocols and cannot share a table: " + " | ".join(problems)
                         + ". Re-evaluate the stale runs with the current evaluation config (delete their eval/ directories).")


def summarize_evaluation(metric_files: list[str | Path], table_path, json_path, fid_time_path, scatter_path,
                         floor_files: list[str | Path] = (), per_run_path=None, grids_path=None, gates_path=None) -> pd.DataFrame:
    """``floor_files``: real-versus-real floors (the .json of `facegen real-features --reference`); they
    join the table as rows of family 'real', under the same protocol as the runs. ``per_run_path``: the
    same numbers one row per run, one column per metric (what `dvc plots` draws). ``grids_path``: a sample
    grid of every model, from its first seed's samples.npz beside its metrics.json. ``gates_path``: the
    quality gates of each model (facegen.evaluation.gates), which the report and the findings read."""
    metric_files = sorted(map(str, metric_files))
    results = [read_metrics(p) for p in metric_files]
    if not results:
        raise ValueError("no metrics.json files to summarize; evaluate some runs first")
    check_protocols(results)
    results += [json.loads(Path(p).read_text())["floor"] for p in sorted(map(str, floor_files))]
    table = tidy(results)
    write_csv(table_path, table)
    seeds = across_seeds(table)
    run_metrics = {r["run"]: {k: v for k, v in r["metrics"].items() if isinstance(v, (int, float)) and v is not None}
               for r in results}
    write_json(json_path, _clean({"runs": run_metrics, "across_seeds": {
        f"{d}/{res}/{m}": grp.set_index("metric")[["mean", "std", "n_seeds"]].to_dict("index")
        for (d, res, m), grp in seeds.groupby(["dataset", "resolution", "model"])}}))
    wide = per_run(table)
    if per_run_path is not None:
        write_csv(per_run_path, wide)
    if gates_path is not None:
        write_csv(gates_path, gate_table(table))
    trained = wide.dropna(subset=["train_minutes"])
    _scatter(trained, "train_minutes", "fid", fid_time_path, xlabel="training time (minutes)",
             ylabel="FID (Inception, lower is better)", title="FID versus training time")
    _scatter(wide, "recall", "precision", scatter_path, size=(5, 5), xlim=(-0.02, 1.02), ylim=(-0.02, 1.02),
             xlabel="recall, Inception features (diversity)", ylabel="precision, Inception features (quality)",
             title="Quality versus diversity")
    if grids_path is not None:
        from facegen.evaluation.samples import grid_figure
        from facegen.paths import eval_files

        first = {}
        for f, r in zip(metric_files, results):
            key = (r["dataset"], int(r["resolution"]), r["model"])
            if key not in first or r["seed"] < first[key][1]["seed"]:
                first[key] = (f, r)
        grid_figure([(f"{r['run']}\nFID {r['metrics']['fid']:.0f}", eval_files(Path(f).parent)["samples"])
                     for _, (f, r) in sorted(first.items())], grids_path)
    return table
