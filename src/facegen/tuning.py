"""The recipe tuning (issue 14): a few candidate settings per model, one short budget, chosen on the
validation split, and the appendix's verdict on whether the config's own recipe is the best of them.

The tuning is a study of its own (``tuning_study``): the candidates are its models, one experiment holds
them at ``tuning.training``'s budget, and its evaluation scores them against ``tuning.real_split`` (val)
with a real-versus-real floor on ``tuning.floor_split`` (test), at the study's n. Its jobs are the study's
own CLI calls (``facegen train``, ``real-features``, ``evaluate``) under ``results/tuning``, so nothing
here trains or evaluates; this module only names the runs and summarises them. No test-split number
chooses anything: test is only in the floor row.

A candidate is named ``<model>__<candidate>``; the config's recipe for ``<model>`` is its entry under
``models``, and the appendix marks the candidate equal to it (same arch, params, condition and training
keys) as "config".
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SEP = "__"


def candidates(config: dict) -> dict[str, dict]:
    """Setting name -> {model, candidate, entry}, in config order."""
    out = {}
    for group in config["tuning"]["candidates"]:
        model = group["model"]
        for cand, entry in group["settings"].items():
            out[f"{model}{SEP}{cand}"] = {"model": model, "candidate": cand, "entry": entry}
    return out


def tuning_study(config: dict) -> dict:
    """The config the tuning's jobs read: the candidates as models, one experiment at the tuning budget,
    and the evaluation block with the tuning's reference and floor splits."""
    t = config["tuning"]
    models = {name: c["entry"] for name, c in candidates(config).items()}
    experiments = [{"name": "tuning", "datasets": [t["dataset"]], "resolutions": [t["resolution"]],
                    "models": list(models), "seeds": t["seeds"], "training": t["training"]}] if models else []
    evaluation = {**config["evaluation"], "real_split": t["real_split"], "floor_split": t["floor_split"]}
    # Its own tuning block is empty: the tuning study tunes nothing, and stays a valid config.
    return {**config, "models": models, "experiments": experiments, "evaluation": evaluation,
            "tuning": {**t, "candidates": []}}


def paths_config(config: dict) -> dict:
    """The tuning study with results_dir moved to results/tuning, for the run-path functions only (its
    jobs still read the prepared data under the study's results_dir)."""
    from facegen.paths import tuning_dir

    return {**tuning_study(config), "results_dir": str(tuning_dir(config))}


def tuning_runs(config: dict, datasets: list[str] | None = None) -> list[dict]:
    from facegen.training.matrix import training_runs

    return training_runs(tuning_study(config), datasets)


def outputs(config: dict) -> dict[str, Path]:
    from facegen.paths import tuning_summary

    return tuning_summary(config)


def same_recipe(a: dict, b: dict) -> bool:
    """Two model entries train the same model (defaults filled: params/condition empty, training {})."""
    keys = ("arch", "params", "condition", "training")
    fill = lambda e: {k: e.get(k) or ({} if k != "arch" else None) for k in keys}  # noqa: E731
    return fill(a) == fill(b)


def table(config: dict, results: list[dict], cards: dict[str, dict]) -> pd.DataFrame:
    """One row per evaluated candidate run: its headline metrics (facegen.metrics.headline), cost, and
    whether it is the config's recipe."""
    from facegen.metrics import headline
    from facegen.records import train_tflop

    cands = candidates(config)
    rows = []
    for r in results:
        c = cands[r["model"]]
        card = cards[r["run"]]
        rows.append({"run": r["run"], "model": c["model"], "candidate": c["candidate"], "seed": r["seed"],
                     "arch": r["arch"], "config_recipe": same_recipe(c["entry"], config["models"][c["model"]]),
                     "train_minutes": r["train_minutes"],
                     "train_tflop": train_tflop(card),
                     **{k: r["metrics"].get(k) for k in headline()},
                     "real_split": r["protocol"]["real_split"], "n_generated": r["protocol"]["n_generated"]})
    return pd.DataFrame(rows)


def seed_tolerance(frame: pd.DataFrame, stated: float) -> tuple[float, str]:
    """The FID gap that counts: the stated tolerance, or twice the pooled seed standard deviation of the
    candidates when the tuning has two or more seeds and that is larger."""
    by = frame.groupby(["model", "candidate"])["fid"]
    counts, var = by.count(), by.var(ddof=1)
    ok = counts >= 2
    if ok.any():
        pooled = float(np.sqrt((var[ok] * (counts[ok] - 1)).sum() / (counts[ok] - 1).sum()))
        if 2 * pooled > stated:
            return 2 * pooled, f"twice the pooled seed sd of the candidates ({pooled:.1f})"
    return stated, "the stated tolerance (tuning.tolerance_fid)"


def verdicts(frame: pd.DataFrame, stated: float) -> tuple[list[dict], dict]:
    """Per tuned model: the candidate with the lowest mean validation FID, the config's recipe, and the
    verdict, decided by the tolerance."""
    tol, tol_source = seed_tolerance(frame, stated)
    out = []
    for model, rows in frame.groupby("model", sort=False):
        means = rows.groupby("candidate", sort=False).agg(fid=("fid", "mean"), seeds=("seed", "count"),
                                                          config_recipe=("config_recipe", "first"))
        best = means["fid"].idxmin()
        mine = means.index[means["config_recipe"]].tolist()
        entry = {"model": model, "best": best, "best_fid": float(means.loc[best, "fid"]),
                 "config": mine[0] if mine else None, "seeds": int(means["seeds"].max())}
        if not mine:
            entry.update(gap=None, verdict="the config's recipe is not among the candidates")
        else:
            gap = float(means.loc[mine[0], "fid"] - entry["best_fid"])
            entry["gap"] = gap
            if mine[0] == best:
                entry["verdict"] = "the config's recipe has the lowest validation FID"
            elif gap <= tol:
                entry["verdict"] = f"the config's recipe is within the tolerance ({tol:.1f}) of the lowest"
            else:
                entry["verdict"] = f"'{best}' beats the config's recipe by more than the tolerance ({tol:.1f}): adopt it"
        out.append(entry)
    return out, {"tolerance_fid": tol, "tolerance_source": tol_source}


def summarize(config: dict, metrics_files: list[str | Path], floor_file: str | Path, out: dict[str, Path]) -> dict:
    """The appendix's table, verdicts and sample grids, from the candidates' metrics.json and the floor."""
    from facegen.evaluation.samples import grid_figure
    from facegen.evaluation.summary import check_protocols
    from facegen.io import read_json, write_csv, write_json
    from facegen.paths import eval_files, run_dir
    from facegen.records import read_card, read_metrics

    results = [read_metrics(f) for f in metrics_files]
    check_protocols(results)

    where = paths_config(config)
    cards = {r["run"]: read_card(run_dir(where, r)) for r in results}
    frame = table(config, results, cards)
    floor = read_json(Path(floor_file).with_suffix(".json"))["floor"]
    write_csv(out["table"], frame)
    found, tolerance = verdicts(frame, config["tuning"]["tolerance_fid"])
    t = config["tuning"]
    summary = {"verdicts": found, **tolerance, "dataset": t["dataset"], "resolution": t["resolution"],
               "training": t["training"], "seeds": t["seeds"], "real_split": t["real_split"],
               # the floor scores real images: no LPIPS diversity of its own
               "floor": {"split": t["floor_split"], **{k: floor["metrics"].get(k) for k in ("fid", "kid", "precision", "recall")}},
               "n_generated": int(frame["n_generated"].iloc[0]) if len(frame) else 0}
    write_json(out["summary"], summary)
    grid_figure([(f"{r['model']}\nval FID {r['metrics']['fid']:.0f}", eval_files(Path(f).parent)["samples"])
                 for f, r in zip(metrics_files, results) if r["seed"] == min(t["seeds"])], out["figure"])
    log.info("tuning: %d candidate runs; %s", len(frame), "; ".join(f"{v['model']}: {v['verdict']}" for v in found))
    return summary
