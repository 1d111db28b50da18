"""`facegen bench quality`: a measured quality gate for the model recipes, printed, never asserted in
tests (issue 14).

Each model is trained for one budget (the config's own for the run, or --epochs / --max-images for all
alike) on one dataset and resolution, then evaluated exactly as the study evaluates, at ``n`` generated
images against ``n`` real training images, beside the real-versus-real floor at the same n. The table
flags the study's gates (facegen.evaluation.gates), with each run's training TFLOPs beside it, since the
comparison is meant at equal compute. Sample grids
are written beside the table, because "recognisable faces" is judged by looking.

Runs and features are cached under the work directory, so a rerun with more models reuses the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from facegen.evaluation.gates import COLUMNS, gates

log = logging.getLogger(__name__)


def quality_config(config: dict, dataset: str, resolution: int, models: list[str], seeds: list[int], n: int,
                   epochs: int | None = None, max_images: int | None = None) -> dict:
    """The config the benchmark runs: the study's, evaluated at n against n, with one experiment holding
    the runs (a budget override applies to all of them alike)."""
    from facegen.config import deep_merge, validate
    from facegen.training.matrix import run_experiment

    ev = {"n_generated": n, "n_real": n, "kid_subset_size": min(config["evaluation"]["kid_subset_size"], n)}
    out = deep_merge(config, {"evaluation": ev})
    budget = {k: v for k, v in (("epochs", epochs), ("max_images", max_images)) if v is not None}
    experiments = []
    for model in models:
        for seed in seeds:
            own = run_experiment(config, dataset, resolution, model, seed)
            training = {**((own or {}).get("training") or {}), **budget}
            experiments.append({"name": f"quality_{model}_{seed}", "datasets": [dataset], "resolutions": [resolution],
                                "models": [model], "seeds": [seed], "training": training})
    out["experiments"] = experiments
    return validate(out)


def bench_quality(config: dict, dataset: str, resolution: int, models: list[str], seeds: list[int], n: int,
                  work_dir: str | Path, epochs: int | None = None, max_images: int | None = None) -> pd.DataFrame:
    from PIL import Image

    from facegen.evaluation.real import real_features
    from facegen.evaluation.run import evaluate_run
    from facegen.evaluation.samples import load_samples
    from facegen.data.summary import sample_grid
    from facegen import paths
    from facegen.io import read_json
    from facegen.records import read_card, read_metrics, train_tflop
    from facegen.training.run import train_run

    cfg = quality_config(config, dataset, resolution, models, seeds, n, epochs, max_images)
    work = Path(work_dir)
    # The study's own layout: the runs under the work folder, their evaluations and the real features
    # under one folder per sample count, so a rerun at another n retrains nothing.
    trained, scored = {"results_dir": str(work)}, {"results_dir": str(work / f"n{n}")}
    ev = cfg["evaluation"]
    real = paths.real_path(scored, {"dataset": dataset, "resolution": resolution, "split": ev["real_split"]})
    floor = paths.floor_path(scored, {"dataset": dataset, "resolution": resolution, "split": ev["floor_split"]})
    if not real.is_file():
        real_features(cfg, dataset, resolution, ev["real_split"], real)
    if not floor.is_file():
        real_features(cfg, dataset, resolution, ev["floor_split"], floor, reference=real)
    floor_info = read_json(floor.with_suffix(".json"))["floor"]
    rows = [{"run": floor_info["run"], "arch": "real", "family": "real", "train_minutes": 0.0, "train_tflop": 0.0,
             **{k: floor_info["metrics"].get(k) for k in COLUMNS}}]
    for model in models:
        for seed in seeds:
            run = {"dataset": dataset, "resolution": resolution, "model": model, "seed": seed}
            run_dir = paths.run_dir(trained, run)
            if not paths.train_files(run_dir)["model"].is_file():
                train_run(cfg, dataset, resolution, model, seed, run_dir)
            eval_dir = paths.eval_dir(scored, run)
            files = paths.eval_files(eval_dir)
            result = read_metrics(files["metrics"]) if files["metrics"].is_file() else evaluate_run(cfg, run_dir, real, eval_dir)
            m = result["metrics"]
            card = read_card(run_dir)
            rows.append({"run": result["run"], "arch": result["arch"], "family": result["family"],
                         "train_minutes": result["train_minutes"],
                         "train_tflop": train_tflop(card),
                         **{k: m.get(k) for k in COLUMNS}})
            samples, _ = load_samples(files["samples"])
            Image.fromarray(sample_grid(samples, 8, seed=0)).save(work / f"grid_{dataset}_{resolution}_{model}_{seed}.png")
            log.info("quality %s: FID %.1f, FID_inf %.1f, precision %.3f, recall %.3f", result["run"], m["fid"], m["fid_inf"],
                     m["precision"], m["recall"])
    return gates(pd.DataFrame(rows))
