"""The training section: loss curves, cost table and convergence, and the HVAE-paper replication."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.io import read_json
from facegen.paths import Run
from facegen.training.matrix import active_runs

NAME = "training"
TITLE = "Training"


def paths(config: dict) -> dict[str, Path]:
    from facegen.paths import training_summary

    return training_summary(config)


def _runs(config: dict) -> list[dict]:
    return active_runs(config)


def inputs(config: dict) -> list[Path]:
    return list(paths(config).values()) if _runs(config) else []


def replica_yardsticks(config: dict, replication: dict | None) -> dict | None:
    """The replica on this study's own yardsticks, from the evaluation table: its Inception FID, KID and
    reconstruction MSE beside the real-versus-real floor's, and the pixel approximate FID of the replica
    and of the floor beside that formula's mean-face and perfect-generator scores on the same reference
    (facegen.metrics.pixel_fid). None until the replica is evaluated."""
    from facegen.report.sections import evaluation

    table_path = evaluation.paths(config)["table"]
    if not (replication and replication.get("fc_hvae")) or not table_path.is_file():
        return None
    table = pd.read_csv(table_path)
    run = replication["fc_hvae"]["run"]
    key = Run.from_key(run)
    dataset, resolution = key.dataset, key.resolution
    mine = table[table["run"] == run]
    floor = table[(table["family"] == "real") & (table["dataset"] == dataset) & (table["resolution"] == resolution)]
    if mine.empty or floor.empty:
        return None
    values = lambda rows: dict(zip(rows["metric"], rows["value"]))  # noqa: E731
    keep = ("fid", "kid", "recon_mse", "approx_fid_pixel", "approx_fid_pixel_mean_face", "approx_fid_pixel_perfect")
    digits = {"fid": 1, "kid": 4, "recon_mse": 4}
    return {"replica": {k: evaluation.fmt(v, digits.get(k, 1)) for k, v in values(mine).items() if k in keep},
            "floor": {k: evaluation.fmt(v, digits.get(k, 1)) for k, v in values(floor).items() if k in keep},
            "floor_name": floor["model"].iloc[0], "n_generated": int(mine["protocol_n_generated"].iloc[0]),
            "n_real": int(mine["protocol_n_real"].iloc[0])}


def context(config: dict, results: Path) -> dict:
    from facegen.training.collapse import D_WON_FAKE, D_WON_SHARE

    if not _runs(config):
        return {"runs": [], "replication": None}
    p = paths(config)
    table = pd.read_csv(p["table"])
    replication = read_json(p["replication"])
    won = table[table["d_won"].fillna(False).astype(bool)] if "d_won" in table else table.iloc[:0]
    return {"runs": table.to_dict("records"), "figure": str(p["figure"].resolve()), "replication": replication,
            "yardsticks": replica_yardsticks(config, replication),
            "d_won": [{"run": r["run"], "d_fake": f"{r['d_fake_final']:.3f}"} for r in won.to_dict("records")],
            "d_won_fake": D_WON_FAKE, "d_won_share": D_WON_SHARE}
