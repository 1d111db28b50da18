"""The experiment matrix: which runs the config asks for, and the config slice each run depends on."""

from __future__ import annotations

import itertools

from facegen.config import ConfigError, dataset_config


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
            "job_threads": config["job_threads"], "training": config["training"], "models": {model: config["models"][model]},
            "experiments": experiments}


def eval_config(config: dict, dataset: str) -> dict:
    """The part of the config evaluating a run of ``dataset`` reads (its data slice and the evaluation block)."""
    data = {k: v for k, v in config["data"].items() if k != "datasets"}
    data["datasets"] = {dataset: config["data"]["datasets"][dataset]}
    return {"seed": config["seed"], "results_dir": config["results_dir"], "logs_dir": config["logs_dir"], "data": data,
            "job_threads": config["job_threads"], "evaluation": config["evaluation"]}


def real_sets(config: dict, datasets: list[str] | None = None) -> list[dict]:
    """The {dataset, resolution, split} whose real-image features the evaluation of the runs needs."""
    split = config["evaluation"]["real_split"]
    pairs = sorted({(r["dataset"], r["resolution"]) for r in training_runs(config, datasets)})
    return [{"dataset": d, "resolution": res, "split": split} for d, res in pairs]


def floor_sets(config: dict, datasets: list[str] | None = None) -> list[dict]:
    """The {dataset, resolution, split} of each real-versus-real floor (evaluation.floor_split; none if null)."""
    split = config["evaluation"]["floor_split"]
    if not split:
        return []
    return [{**r, "split": split} for r in real_sets(config, datasets)]


def run_spec(config: dict, dataset: str, resolution: int, model: str, seed: int) -> dict:
    """Everything that determines a run's weights: architecture, hyperparameters, training settings."""
    dataset_config(config, dataset)
    models = config["models"]
    if model not in models:
        raise ConfigError(f"unknown model name '{model}'; the config defines: {', '.join(sorted(models)) or 'none'}. Add it under models: or fix the name.")
    if resolution not in config["data"]["resolutions"]:
        raise ConfigError(f"resolution {resolution} is not prepared; data.resolutions is {config['data']['resolutions']}")
    entry = models[model]
    training = {**config["training"], **entry.get("training", {})}
    for exp in config["experiments"]:
        if dataset in exp["datasets"] and resolution in exp["resolutions"] and model in exp["models"] and seed in exp["seeds"]:
            training.update(exp.get("training", {}))
            break
    return {"dataset": dataset, "resolution": resolution, "model": model, "seed": seed, "arch": entry["arch"],
            "params": entry.get("params", {}), "condition": entry.get("condition", []), "training": training}
