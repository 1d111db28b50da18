"""Which runs and files the experiments involve: config logic only, so that planning a study (the
Snakefile, facegen plan, the report's inputs) imports no torch."""

from __future__ import annotations

from facegen.config import ConfigError, active_datasets
from facegen.paths import run_key, train_file
from facegen.training.matrix import training_runs


def selected_runs(config: dict) -> list[dict]:
    """The runs the experiments study: latent_experiments.runs, or every run of the matrix."""
    runs = training_runs(config, active_datasets(config))
    wanted = config["latent_experiments"]["runs"]
    if wanted is None:
        return runs
    by_key = {run_key(r): r for r in runs}
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise ConfigError(f"latent_experiments.runs names {unknown}, which the experiment matrix does not train; "
                          f"trained runs: {', '.join(by_key) or 'none'}")
    return [by_key[w] for w in wanted]


def model_files(config: dict) -> list[str]:
    return [str(train_file(config, r, "model")) for r in selected_runs(config)]


def classifier_sets(config: dict) -> list[dict]:
    """{dataset, resolution} of the selected runs whose dataset has attributes: one classifier each."""
    names = config["latent_experiments"]["attributes"]["names"]
    pairs = sorted({(r["dataset"], r["resolution"]) for r in selected_runs(config) if names.get(r["dataset"])})
    return [{"dataset": d, "resolution": res} for d, res in pairs]


def experiment_inputs(config: dict, name: str) -> list[str]:
    """Files an experiment reads besides the prepared data: the models, and per experiment the
    attribute classifiers or the cached real-image features."""
    from facegen.paths import attribute_classifier, real_path

    files = model_files(config)
    if name == "attributes":
        files += [str(attribute_classifier(config, c["dataset"], c["resolution"])) for c in classifier_sets(config)]
    if name == "postprocess":
        split = config["evaluation"]["real_split"]
        files += sorted({str(real_path(config, {**r, "split": split})) for r in selected_runs(config)})
    return files


def attribute_names(config: dict, dataset: str) -> list[str]:
    names = config["latent_experiments"]["attributes"]["names"].get(dataset, [])
    return list(names)
