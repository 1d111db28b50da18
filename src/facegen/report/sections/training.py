"""The training section: loss curves, cost table and convergence, and the HVAE-paper replication."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.io import read_json
from facegen.training.matrix import training_runs

NAME = "training"
TITLE = "Training"


def paths(config: dict) -> dict[str, Path]:
    root = Path(config["results_dir"]) / "training"
    return {"table": root / "summary.csv", "figure": root / "curves.png", "replication": root / "replication.json"}


def _runs(config: dict) -> list[dict]:
    from facegen.config import active_datasets

    return training_runs(config, active_datasets(config))


def inputs(config: dict) -> list[Path]:
    return list(paths(config).values()) if _runs(config) else []


def context(config: dict, results: Path) -> dict:
    if not _runs(config):
        return {"runs": [], "replication": None}
    p = paths(config)
    table = pd.read_csv(p["table"])
    return {"runs": table.to_dict("records"), "figure": str(p["figure"].resolve()), "replication": read_json(p["replication"])}
