"""The evaluation section: the main comparison table (with quoted reference rows), FID against
training time, and precision against recall. Numbers are formatted here once for both templates."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from facegen.reference import HVAE_PAPER, VAE_GAN_STUDY

NAME = "evaluation"
TITLE = "Evaluation"

TRAIN_MINUTES = ("train_minutes", "train min", 1, 1.0)


def tables() -> dict[str, list[tuple[str, str, int, float]]]:
    """The registry's tables (facegen.metrics.tables), each with the training minutes last; a table shows
    a metric only if some run has it."""
    from facegen.metrics import tables as registry_tables

    return {title: [*spec, TRAIN_MINUTES] for title, spec in registry_tables().items()}


def paths(config: dict) -> dict[str, Path]:
    from facegen.paths import evaluation_summary

    return evaluation_summary(config)


def _has_runs(config: dict) -> bool:
    from facegen.training.matrix import active_runs

    return bool(active_runs(config))


def inputs(config: dict) -> list[Path]:
    return list(paths(config).values()) if _has_runs(config) else []


def fmt(value, digits: int, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value * scale:,.{digits}f}"


def _cell(stats: pd.DataFrame, metric: str, digits: int, scale: float) -> str:
    if metric not in stats.index:
        return "n/a"
    r = stats.loc[metric]
    text = fmt(r["mean"], digits, scale)
    if r["n_seeds"] > 1 and text != "n/a":
        text += f" ± {fmt(r['std'], digits, scale)}"
    return text


def _floor_images(floor: pd.DataFrame, n_generated: int) -> str:
    """How many real images each floor row scored, said against the runs' sample count."""
    counts = sorted({int(n) for n in floor["protocol_n_generated"]})
    if not counts:
        return ""
    if counts == [n_generated]:
        return f"{n_generated:,} real images, as many as each run generates"
    return f"{' or '.join(f'{n:,}' for n in counts)} real images (the split holds fewer than the {n_generated:,} each run generates)"


def _gate_table(gates: pd.DataFrame) -> dict:
    """The quality gates per model (gates.csv of the evaluation summary), in the tables' shape."""
    from facegen.evaluation.gates import COLLAPSE_DIVERSITY, PRECISION_GATE
    from facegen.metrics import verdict_metric

    quality = verdict_metric()
    mark = lambda ok: "" if ok else " (fails)"  # noqa: E731
    rows = [{"name": f"{r.dataset}/{r.resolution}/{r.model}", "n_seeds": int(r.n_seeds),
             "cells": [fmt(r.precision, 3) + mark(r.precision_ok), fmt(r.diversity_share, 2) + mark(r.diversity_ok),
                       (fmt(r.quality_vs_vae, 1) + mark(r.quality_ok)) if r.quality_vs_vae == r.quality_vs_vae else "",
                       "yes" if r.passes else "no"]} for r in gates.itertuples()]
    title = (f"Quality gates at this budget: precision above {PRECISION_GATE}, LPIPS diversity at least {COLLAPSE_DIVERSITY} of the "
             f"real images', an adversarial model's {quality.label} at or below the plain VAE's at its dataset and resolution "
             f"({int(gates['passes'].sum()) if len(gates) else 0} of {len(gates)} models pass; means over seeds, untested)")
    return {"title": title, "columns": ["precision", "diversity / real", f"{quality.label} minus the VAE's", "passes"], "rows": rows,
            "references": [], "notes": []}


def context(config: dict, results: Path) -> dict:
    from facegen.evaluation.gates import COLLAPSE_DIVERSITY
    from facegen.evaluation.summary import collapsed  # seaborn: only when rendering

    if not _has_runs(config):
        return {"rows": [], "tables": []}
    p = paths(config)
    table = pd.read_csv(p["table"])
    minutes = table.groupby(["dataset", "resolution", "model"])["train_minutes"].first()
    per_model = table.groupby(["dataset", "resolution", "model", "metric"])["value"].agg(mean="mean", std="std", n_seeds="count")
    present = set(table["metric"])
    groups = []
    for (ds, res, model), stats in per_model.groupby(level=[0, 1, 2]):
        stats = stats.droplevel([0, 1, 2])
        stats.loc["train_minutes"] = [minutes[(ds, res, model)], float("nan"), 1]
        groups.append((f"{ds}/{res}/{model}", stats))
    # The HVAE paper's KL is not comparable (its scaling is not stated), so only MSE, pixel FID and time are quoted.
    quoted = [("quoted: HVAE paper, FC-HVAE, CelebA 32x32",
               {"approx_fid_pixel": fmt(HVAE_PAPER["approx_fid"], 2), "recon_mse": fmt(HVAE_PAPER["recon_mse"], 4),
                "train_minutes": fmt(HVAE_PAPER["cpu_hours"] * 60, 0)})]
    quoted += [(f"quoted: VAE/GAN study, {who}, CelebA 64x64", {"sharpness_samples": fmt(v, 0)})
               for who, v in VAE_GAN_STUDY["laplacian_variance"].items()]
    table_rows = []
    for title, spec in tables().items():
        columns = [c for c in spec if c[0] in present or c[0] == "train_minutes"]
        if len(columns) <= 1:
            continue
        keys = [m for m, *_ in columns]
        rows = [{"name": name, "n_seeds": int(stats["n_seeds"].max()), "cells": [_cell(stats, m, d, sc) for m, _, d, sc in columns]}
                for name, stats in groups if any(m in stats.index for m in keys[:-1])]
        references = [{"name": n, "cells": [c.get(k, "") for k in keys]} for n, c in quoted if set(c) & set(keys[:-1])]
        # a metric no run could compute (its feature space's weights missing here) says why under its table
        empty = table[table["metric"].isin(keys[:-1]) & table["value"].isna() & (table["metric"] != "inception_score")]
        notes = sorted({f"{m}: {n}" for m, n in zip(empty["metric"], empty["note"].fillna("")) if n})
        table_rows.append({"title": title, "columns": [label for _, label, *_ in columns], "rows": rows, "references": references,
                           "notes": notes})
    table_rows.append(_gate_table(pd.read_csv(p["gates"])))
    protocol = table[table["family"] != "real"].drop_duplicates("run").iloc[0]
    # The notes shown under "Inception Score"; other metrics' notes (a floor's unavailable precision on a
    # tiny split) stay in the table.
    notes = sorted({n for n in table.loc[table["metric"] == "inception_score", "note"].dropna() if n})
    floor = table[table["family"] == "real"]
    return {"tables": table_rows, "rows": [name for name, _ in groups],
            "protocol": {k.removeprefix("protocol_"): protocol[k] for k in table.columns if k.startswith("protocol_")},
            "is_notes": notes, "floor_split": config.get("evaluation", {}).get("floor_split"),
            "floor_images": _floor_images(floor, int(protocol["protocol_n_generated"])), "is_quoted": VAE_GAN_STUDY["inception_score"],
            "fid_time": str(p["fid_time"].resolve()), "scatter": str(p["scatter"].resolve()), "grids": str(p["grids"].resolve()),
            "n_runs": table["run"].nunique(),
            "collapsed": [{"run": r["run"], "diversity": fmt(r["lpips_diversity"], 3), "real": fmt(r["lpips_diversity_real"], 3)}
                          for r in collapsed(table).to_dict("records")], "collapse_share": COLLAPSE_DIVERSITY}
