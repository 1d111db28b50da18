"""Appendix: the recipe tuning (facegen.tuning), its candidates' validation scores and the verdict on
each tuned model's recipe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.io import read_json
from facegen.tuning import outputs, tuning_runs

NAME = "tuning"
TITLE = "Appendix: recipe tuning"


def _active(config: dict) -> bool:
    from facegen.config import active_datasets

    return bool(tuning_runs(config, active_datasets(config)))


def inputs(config: dict) -> list[Path]:
    return list(outputs(config).values()) if _active(config) else []


def context(config: dict, results: Path) -> dict:
    if not _active(config):
        return {"enabled": False}
    p = outputs(config)
    summary = read_json(p["summary"])
    rows = pd.read_csv(p["table"]).sort_values(["model", "fid"], kind="stable")
    fmt = lambda v, d: "n/a" if pd.isna(v) else f"{v:.{d}f}"  # noqa: E731
    table = [{"model": r["model"], "candidate": r["candidate"], "config": bool(r["config_recipe"]), "seed": int(r["seed"]),
              "fid": fmt(r["fid"], 1), "kid": fmt(r["kid"], 3), "precision": fmt(r["precision"], 3),
              "recall": fmt(r["recall"], 3), "diversity": fmt(r["lpips_diversity"], 3),
              "minutes": fmt(r["train_minutes"], 1), "tflop": fmt(r["train_tflop"], 1)} for r in rows.to_dict("records")]
    floor = summary["floor"]
    return {"enabled": True, "summary": summary, "table": table, "figure": str(p["figure"].resolve()),
            "verdicts": [{**v, "gap": fmt(v["gap"], 1) if v["gap"] is not None else "n/a", "best_fid": fmt(v["best_fid"], 1)}
                         for v in summary["verdicts"]],
            "floor_fid": fmt(floor.get("fid"), 1), "floor_kid": fmt(floor.get("kid"), 3),
            "diversity_real": fmt(rows["lpips_diversity_real"].iloc[0], 3),  # the reference's, the same in every row
            "budget": summary["training"], "single_seed": len(summary["seeds"]) == 1}
