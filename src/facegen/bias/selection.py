"""Which classifiers and runs the bias analysis involves: config logic only, so that planning a study
(the Snakefile, facegen plan, the report's inputs) imports no torch or scikit-learn."""

from __future__ import annotations

from pathlib import Path

from facegen.config import active_datasets
from facegen.data.prepared import PreparedDataset
from facegen.experiments.selection import attribute_names, classifier_sets
from facegen.paths import attribute_classifier, demographic_classifier, eval_file, real_path
from facegen.training.matrix import training_runs


def classifier_sources(config: dict) -> list[dict]:
    """{dataset, source} of every demographic classifier: the 48x48 grayscale variant where the dataset
    has one, and RGB at each resolution the dataset's runs generate."""
    out = []
    for name in active_datasets(config):
        if not config["bias"]["datasets"].get(name, {}).get("targets"):
            continue
        if config["data"]["datasets"][name].get("gray48"):
            out.append({"dataset": name, "source": "gray48"})
        for res in sorted({r["resolution"] for r in training_runs(config, [name])}):
            out.append({"dataset": name, "source": str(res)})
    return out


def attributes_for(config: dict, run: dict) -> list[str]:
    """The dataset's bias groups that its attribute classifier (latent-experiments issue) predicts, at the
    run's resolution: how CelebA runs, which have no demographic targets, get labelled."""
    if {"dataset": run["dataset"], "resolution": run["resolution"]} not in classifier_sets(config):
        return []
    names = attribute_names(config, run["dataset"])
    return [g for g in config["bias"]["datasets"].get(run["dataset"], {}).get("groups", []) if g in names]


def classifier_for(config: dict, run: dict) -> Path | None:
    """The demographic classifier where the dataset has targets, else the attribute classifier where it
    predicts some of the dataset's bias groups, else None (the run's samples are not labelled)."""
    if config["bias"]["datasets"].get(run["dataset"], {}).get("targets"):
        return demographic_classifier(config, run["dataset"], str(run["resolution"]))
    if attributes_for(config, run):
        return attribute_classifier(config, run["dataset"], run["resolution"])
    return None


def labelled_runs(config: dict) -> list[dict]:
    return [r for r in training_runs(config, active_datasets(config)) if classifier_for(config, r) is not None]


def generation_inputs(config: dict) -> list[str]:
    """The files the generation-bias step reads: each labelled run's samples, its classifier, its real
    features and the real images behind them (which the classifier labels too)."""
    split = config["evaluation"]["real_split"]
    files = set()
    for r in labelled_runs(config):
        files |= {str(eval_file(config, r, "samples")), str(classifier_for(config, r)),
                  str(real_path(config, {**r, "split": split})),
                  str(PreparedDataset.of(config, r["dataset"]).image_path(r["resolution"]))}
    return sorted(files)
