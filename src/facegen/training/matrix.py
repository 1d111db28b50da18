"""The experiment matrix: which runs the config asks for, and what determines each."""

from __future__ import annotations

import itertools

from facegen.config import ConfigError, active_datasets, dataset_config
from facegen.views import EvaluationView, ModelView


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


def active_runs(config: dict) -> list[dict]:
    """The training runs of the datasets this study builds (facegen.config.active_datasets)."""
    return training_runs(config, active_datasets(config))


def run_experiment(config: dict, dataset: str, resolution: int, model: str, seed: int) -> dict | None:
    """The first experiment that asks for this run, whose training block applies to it; None if none does."""
    return next((e for e in config["experiments"] if dataset in e["datasets"] and resolution in e["resolutions"]
                 and model in e["models"] and seed in e["seeds"]), None)


def real_sets(config: dict, datasets: list[str] | None = None) -> list[dict]:
    """The {dataset, resolution, split} whose real-image features the evaluation of the runs needs."""
    split = EvaluationView(config["evaluation"]).real_split
    pairs = sorted({(r["dataset"], r["resolution"]) for r in training_runs(config, datasets)})
    return [{"dataset": d, "resolution": res, "split": split} for d, res in pairs]


def floor_sets(config: dict, datasets: list[str] | None = None) -> list[dict]:
    """The {dataset, resolution, split} of each real-versus-real floor (evaluation.floor_split; none if null)."""
    split = EvaluationView(config["evaluation"]).floor_split
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
    entry = ModelView(models[model])
    training = {**config["training"], **entry.get("training", {})}
    exp = run_experiment(config, dataset, resolution, model, seed)
    if exp is not None:
        training.update(exp.get("training", {}))
    return {"dataset": dataset, "resolution": resolution, "model": model, "seed": seed, "arch": entry.arch,
            "params": entry.params, "condition": entry.condition, "training": training}
