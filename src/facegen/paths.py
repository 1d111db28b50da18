"""The results layout, in one place: every path a job writes or reads under ``results_dir``.

The Snakemake rules take their output patterns from these same functions, given wildcards in place
of values (``run_dir(config, RUN)`` is ``results/train/{dataset}/{resolution}/{model}/{seed}``), and
dvc.yaml is generated from those rules, so a layout change is made here only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

# Snakemake's wildcards, as the values of a run, a real-image set or a classifier.
RUN = {"dataset": "{dataset}", "resolution": "{resolution}", "model": "{model}", "seed": "{seed}"}
REAL = {"dataset": "{dataset}", "resolution": "{resolution}", "split": "{split}"}

# A run's files, by the role each plays: what `facegen train` and `facegen evaluate` write in its two folders.
TRAIN_FILES = {"model": "model.pt", "history": "history.csv", "card": "model_card.json"}
RESUME_FILE = "last.pt"  # the resumable checkpoint, spent once model.pt exists
EVAL_FILES = {"metrics": "metrics.json", "per_image": "per_image.parquet", "samples": "samples.npz"}


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run's identity. ``key`` (dataset/resolution/model/seed) names it in every table and
    file; ``Run.from_key`` reads one back."""
    dataset: str
    resolution: int
    model: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.resolution}/{self.model}/{self.seed}"

    @classmethod
    def from_key(cls, key: str) -> "Run":
        parts = str(key).split("/")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            raise ValueError(f"'{key}' is not a run key: expected dataset/resolution/model/seed, e.g. celeba/32/vae/0")
        return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))

    @classmethod
    def of(cls, run: Mapping) -> "Run":
        return cls(run["dataset"], int(run["resolution"]), run["model"], int(run["seed"]))

    def fields(self) -> dict:
        return dataclasses.asdict(self)


def run_key(run: Mapping | Run) -> str:
    """The key of a run given as a Run or as its fields."""
    return run.key if isinstance(run, Run) else Run.of(run).key


def _fields(run: Mapping | Run) -> Mapping:
    return run.fields() if isinstance(run, Run) else run


def results(config: dict) -> Path:
    return Path(config["results_dir"])


def manifest(config: dict, dataset: str) -> Path:
    return results(config) / "manifests" / f"{dataset}.json"


def prepared(config: dict, dataset: str) -> Path:
    """The prepared dataset's folder (facegen.data.prepared reads it)."""
    return results(config) / "data" / dataset


def dataset_summary(config: dict, dataset: str) -> dict[str, Path]:
    root = results(config) / "summary"
    return {"table": root / f"{dataset}.csv", "figure": root / f"{dataset}.png"}


def run_dir(config: dict, run: Mapping | Run) -> Path:
    run = _fields(run)
    return results(config) / "train" / run["dataset"] / str(run["resolution"]) / run["model"] / str(run["seed"])


def eval_dir(config: dict, run: Mapping | Run) -> Path:
    run = _fields(run)
    return results(config) / "eval" / run["dataset"] / str(run["resolution"]) / run["model"] / str(run["seed"])


def train_files(folder: str | Path) -> dict[str, Path]:
    """The files `facegen train` writes in a run's folder (run_dir), by role."""
    return {role: Path(folder) / name for role, name in TRAIN_FILES.items()}


def eval_files(folder: str | Path) -> dict[str, Path]:
    """The files `facegen evaluate` writes in a run's evaluation folder (eval_dir), by role."""
    return {role: Path(folder) / name for role, name in EVAL_FILES.items()}


def train_file(config: dict, run: Mapping | Run, role: str) -> Path:
    return train_files(run_dir(config, run))[role]


def eval_file(config: dict, run: Mapping | Run, role: str) -> Path:
    return eval_files(eval_dir(config, run))[role]


def real_path(config: dict, real: dict) -> Path:
    """The cached Inception features of a {dataset, resolution, split}; their protocol is the .json beside it."""
    return results(config) / "eval" / "real" / real["dataset"] / str(real["resolution"]) / f"{real['split']}.npz"


def floor_path(config: dict, floor: dict) -> Path:
    """The real-versus-real floor of a {dataset, resolution, split}."""
    return real_path(config, {**floor, "split": f"floor_{floor['split']}"})


def attribute_classifier(config: dict, dataset: str, resolution: int | str) -> Path:
    return results(config) / "experiments" / "classifier" / dataset / str(resolution) / "classifier.pt"


def demographic_classifier(config: dict, dataset: str, source: str) -> Path:
    return results(config) / "bias" / "classifier" / dataset / source / "classifier.pt"


def tuning_dir(config: dict) -> Path:
    """The recipe tuning: its runs under the same layout, and its summary."""
    return results(config) / "tuning"


def provenance(config: dict) -> Path:
    return results(config) / "provenance.json"


def plan(config: dict) -> Path:
    return results(config) / "plan.json"


def report_dir(config: dict) -> Path:
    return results(config) / "report"


# The summary steps' files, by the role each plays (a rule's output names, a report section's inputs).
def training_summary(config: dict) -> dict[str, Path]:
    root = results(config) / "training"
    return {"table": root / "summary.csv", "figure": root / "curves.png", "replication": root / "replication.json"}


def evaluation_summary(config: dict) -> dict[str, Path]:
    root = results(config) / "evaluation"
    return {"table": root / "metrics.csv", "json": root / "metrics.json", "fid_time": root / "fid_vs_time.png",
            "scatter": root / "precision_recall.png", "per_run": root / "per_run.csv", "grids": root / "samples.png",
            "gates": root / "gates.csv"}


def experiment_outputs(config: dict, name: str) -> dict[str, Path]:
    root = results(config) / "experiments" / name
    return {"table": root / "table.csv", "figure": root / "figure.png"}


def bias_reconstruction(config: dict) -> dict[str, Path]:
    root = results(config) / "bias"
    return {"groups": root / "reconstruction_groups.csv", "disparity": root / "reconstruction_disparity.csv",
            "forest": root / "reconstruction_forest.png"}


def bias_dataset(config: dict) -> dict[str, Path]:
    root = results(config) / "bias"
    return {"groups": root / "dataset_groups.csv", "imbalance": root / "dataset_imbalance.csv", "faces": root / "mean_faces.png"}


def bias_generation(config: dict) -> dict[str, Path]:
    root = results(config) / "bias"
    return {"summary": root / "generation_summary.csv", "mix": root / "generation_mix.csv",
            "quality": root / "generation_quality.csv", "figure": root / "generation_mix.png"}


def bias_mitigation(config: dict) -> Path:
    return results(config) / "bias" / "mitigation.csv"


def findings(config: dict) -> dict[str, Path]:
    root = results(config) / "findings"
    return {"json": root / "findings.json", "figure": root / "central.png"}


def tuning_summary(config: dict) -> dict[str, Path]:
    root = tuning_dir(config)
    return {"table": root / "table.csv", "figure": root / "grids.png", "summary": root / "summary.json"}
