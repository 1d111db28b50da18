"""The dataset section: sizes, splits, skipped files and group make-up, from prepare.json and summary.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.data.prepared import PREPARE_RECORD
from facegen.io import read_json

NAME = "datasets"
TITLE = "Datasets"


def paths(config: dict, name: str) -> dict[str, Path]:
    from facegen.paths import dataset_summary, prepared

    return {"data": prepared(config, name), **dataset_summary(config, name)}


def inputs(config: dict) -> list[Path]:
    from facegen.data import prepared_files

    files = []
    for name in active(config):
        p = paths(config, name)
        files += [p["data"] / f for f in prepared_files(config, name)] + [p["table"], p["figure"]]
    return files


def active(config: dict) -> list[str]:
    from facegen.config import active_datasets

    return active_datasets(config)


def count_table(summary: pd.DataFrame) -> dict:
    """Rows of (attribute, value, train, val, test, share of all images)."""
    wide = summary.pivot_table(index=["attribute", "value"], columns="split", values="count", aggfunc="sum", fill_value=0, sort=False)
    splits = [s for s in ("train", "val", "test") if s in wide.columns]
    wide = wide[splits]
    totals = summary.groupby("attribute")["count"].sum()
    rows = []
    for (attr, value), counts in wide.iterrows():
        total = int(counts.sum())
        rows.append({"attribute": attr, "value": value, "counts": [int(counts[s]) for s in splits],
                     "share": 100.0 * total / totals[attr]})
    return {"splits": splits, "rows": rows}


def context(config: dict, results: Path) -> dict:
    datasets = []
    for name in active(config):
        p = paths(config, name)
        prep = read_json(p["data"] / PREPARE_RECORD)
        summary = pd.read_csv(p["table"], dtype={"value": str})
        datasets.append({
            "name": name,
            "kind": config["data"]["datasets"][name]["kind"],
            "prep": prep,
            "table": count_table(summary),
            "figure": str(p["figure"].resolve()),
            "alignment": str((p["data"] / "alignment.png").resolve()) if "align" in prep else None,
        })
    return {"datasets": datasets, "resolutions": config["data"]["resolutions"]}
