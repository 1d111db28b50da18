"""The readers of a run's records, each beside its writer: the model card and the history that
`facegen train` writes, the metrics.json and per-image table that `facegen evaluate` writes (samples.npz
has its own module, facegen.evaluation.samples). File names come from facegen.paths."""

from __future__ import annotations

from pathlib import Path

from facegen.io import read_json, write_json, write_parquet
from facegen.paths import eval_files, train_files


def write_card(run_dir: str | Path, card: dict) -> None:
    write_json(train_files(run_dir)["card"], card)


def read_card(run_dir: str | Path) -> dict:
    """A trained run's model card (run key, arch, FLOPs, times, the resolved spec)."""
    path = train_files(run_dir)["card"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; train the run first (`facegen train`)")
    return read_json(path)


def train_tflop(card: dict) -> float:
    """The run's counted training compute in TFLOP: FLOPs per image of a step, times the images it saw."""
    return card["train_flops_per_image"] * card["epochs"] * card["n_train_images"] / 1e12


def read_history(run_dir: str | Path):
    """A run's per-epoch history (the trainer appends one row an epoch)."""
    import pandas as pd

    return pd.read_csv(train_files(run_dir)["history"])


def write_metrics(eval_dir: str | Path, result: dict) -> None:
    write_json(eval_files(eval_dir)["metrics"], result)


def read_metrics(path: str | Path) -> dict:
    """An evaluated run's metrics.json."""
    return read_json(path)


def write_per_image(eval_dir: str | Path, table) -> None:
    write_parquet(eval_files(eval_dir)["per_image"], table)


def read_per_image(eval_dir: str | Path):
    import pandas as pd

    return pd.read_parquet(eval_files(eval_dir)["per_image"])
