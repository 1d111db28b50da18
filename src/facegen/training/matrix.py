"""The experiment matrix: which runs the config asks for, and the config slice each run depends on."""

from __future__ import annotations

import itertools


def training_runs(config: dict, datasets: list[str] | None = None) -> list[dict]:
    """Every {dataset, resolution, model, seed} the experiments ask for, once each, in config order."""
    seen, runs = set(), []
    for exp in config["experiments"]:
        for ds, res, model, seed in itertools.product(exp["datasets"], exp["resolutions"], exp["models"], exp["seeds"]):
            key = (ds, res, model, seed)
            if key not in seen and (datasets is None or ds in datasets):
                seen.add(key)
                runs.append({"dataset": ds, "resolution": res, "model": model, "seed": seed})
    return runs


def run_config(config: dict, dataset: str, resolution: int, model: str, seed: int) -> dict:
    """The part of the config one run reads; a change anywhere else does not retrain it."""
    exp = next((e for e in config["experiments"] if dataset in e["datasets"] and resolution in e["resolutions"]
                and model in e["models"] and seed in e["seeds"]), None)
    experiments = []
    if exp is not None:
        experiments = [{**exp, "datasets": [dataset], "resolutions": [resolution], "models": [model], "seeds": [seed]}]
    data = {k: v for k, v in config["data"].items() if k != "datasets"}
    data["datasets"] = {dataset: config["data"]["datasets"][dataset]}
    return {"seed": config["seed"], "results_dir": config["results_dir"], "logs_dir": config["logs_dir"], "data": data,
            "training": config["training"], "models": {model: config["models"][model]}, "experiments": experiments}
