"""The part of the config each job reads, in one place: Snakemake passes a job its slice inline
(``--config '{...}'``, workflow/rules) and DVC writes the same slice to the job's own file
(facegen.dvcfile), so that either reruns a job exactly when what it reads has changed, and not when
the config changed elsewhere.
"""

from __future__ import annotations

from facegen.training.matrix import run_experiment

# What every job reads: where results and logs go, the master seed and the job's thread count.
SHARED = ("seed", "results_dir", "logs_dir", "job_threads")


def data_config(config: dict, datasets: list[str]) -> dict:
    """The shared keys and the data block, with only ``datasets`` of its datasets."""
    data = {k: v for k, v in config["data"].items() if k != "datasets"}
    data["datasets"] = {n: config["data"]["datasets"][n] for n in datasets}
    return {**{k: config[k] for k in SHARED}, "data": data}


def run_config(config: dict, dataset: str, resolution: int, model: str, seed: int) -> dict:
    """What one training run reads: its dataset, the training block, its model and its experiment,
    narrowed to the run; a change anywhere else does not retrain it."""
    exp = run_experiment(config, dataset, resolution, model, seed)
    experiments = []
    if exp is not None:
        experiments = [{**exp, "datasets": [dataset], "resolutions": [resolution], "models": [model], "seeds": [seed]}]
    return {**data_config(config, [dataset]), "training": config["training"], "models": {model: config["models"][model]},
            "experiments": experiments}


def eval_config(config: dict, dataset: str) -> dict:
    """What evaluating a run of ``dataset`` reads: its dataset and the evaluation block."""
    return {**data_config(config, [dataset]), "evaluation": config["evaluation"]}


def experiment_config(config: dict) -> dict:
    """Everything but the report and tuning settings: experiments and the bias steps read models, data,
    evaluation and their own block (the tuning's candidates are read only by its own rules)."""
    return {k: v for k, v in config.items() if k not in ("report", "tuning")}


def classifier_config(config: dict) -> dict:
    """What the classifiers and the dataset bias read: the data and their own blocks. Without the models and
    the matrix in it, a new recipe does not retrain them."""
    return {k: config[k] for k in (*SHARED, "data", "bias", "latent_experiments")}
