"""Panels of image tiles, one row per run, saved reproducibly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facegen.io import save_figure  # noqa: E402


# Runs sit side by side until a figure row holds this many panels: one run per row made the tall, narrow
# figures that a page scaled down to unreadable tiles.
MAX_PANELS_PER_ROW = 4


def panels(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], path, width: float = 3.2) -> None:
    """rows: (row title, [(panel title, uint8 image), ...]), one per run; empty rows get a note instead of
    images. Runs are laid out left to right, then top to bottom, as many per figure row as fit in
    MAX_PANELS_PER_ROW panels (at least one)."""
    ncol = max([len(p) for _, p in rows] + [1])
    per_row = max(1, MAX_PANELS_PER_ROW // ncol)
    nrow = max(1, -(-len(rows) // per_row))
    fig, axes = plt.subplots(nrow, ncol * per_row, figsize=(width * ncol * per_row, width * nrow), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (title, items) in enumerate(rows):
        block = axes[r // per_row][(r % per_row) * ncol:(r % per_row + 1) * ncol]
        for c, ax in enumerate(block):
            if c < len(items):
                ax.imshow(items[c][1], interpolation="nearest")
                ax.set_title(f"{title}\n{items[c][0]}" if c == 0 else items[c][0], fontsize=8)
            elif c == 0:
                ax.text(0.5, 0.5, f"{title}: not applicable", ha="center", va="center", fontsize=8)
    if not rows:
        axes[0][0].text(0.5, 0.5, "no runs selected", ha="center", va="center")
    save_figure(path, fig)
    plt.close(fig)
