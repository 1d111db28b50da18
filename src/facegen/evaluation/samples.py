"""samples.npz, an evaluated run's generated images with their features in each space: written once by
the evaluation, read by the bias analysis, the tuning's grids and the benchmarks. A module of its own
so that its readers do not import the metrics (torch-fidelity's imports take about 2.5 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.io import atomic_path


def save_samples(path: Path, samples: np.ndarray, features: dict[str, np.ndarray]) -> None:
    """The generated images (uint8) with the features of the first ``len(samples)`` of them under each
    space's .npz key (facegen.metrics.spaces.Embedded.arrays), so later steps label and score the very
    samples the metrics saw instead of drawing and embedding new ones."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, samples=samples, **{k: f[:len(samples)].astype(np.float32) for k, f in features.items()})


def load_samples(path: str | Path, space: str = "inception") -> tuple[np.ndarray, np.ndarray]:
    """The samples and their features in ``space``."""
    from facegen.metrics.spaces import SPACES

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found; evaluate the run first (`facegen evaluate`), with evaluation.save_samples > 0")
    with np.load(path) as f:
        key = SPACES[space].keys["features"]
        if key not in f.files:
            raise KeyError(f"{path} holds no {SPACES[space].label} features (evaluation.feature_spaces did not include "
                           f"'{space}', or its network was unavailable)")
        return f["samples"], f[key]


def grid_figure(items: list[tuple[str, Path]], path: Path, side: int = 6, cols: int = 4) -> None:
    """One side x side grid of each run's evaluation samples, titled, ``cols`` runs to a row: the sample
    grids of the evaluation summary (every model) and of the tuning (every candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facegen.data.summary import sample_grid
    from facegen.io import save_figure

    cols = min(cols, max(1, len(items)))
    rows = max(1, -(-len(items) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, npz) in zip(axes.flat, items):
        samples, _ = load_samples(npz)
        if len(samples):
            ax.imshow(sample_grid(samples, side, seed=0))
        else:
            ax.text(0.5, 0.5, "no samples kept\n(evaluation.save_samples: 0)", ha="center", va="center", fontsize=8)
        ax.set_title(title, fontsize=8)
    save_figure(path, fig)
    plt.close(fig)
