"""samples.npz, an evaluated run's generated images with their Inception features: written once by
the evaluation, read by the bias analysis, the tuning's grids and the benchmarks. A module of its own
so that its readers do not import the metrics (torch-fidelity's imports take about 2.5 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.io import atomic_path


def save_samples(path: Path, samples: np.ndarray, features: np.ndarray) -> None:
    """The generated images (uint8) with their Inception features, so later steps label and score the
    very samples the metrics saw instead of drawing and embedding new ones."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, samples=samples, features=features.astype(np.float32))


def load_samples(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found; evaluate the run first (`facegen evaluate`), with evaluation.save_samples > 0")
    with np.load(path) as f:
        return f["samples"], f["features"]
