"""Panels of image tiles, one row per run, saved reproducibly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facegen.io import save_figure  # noqa: E402


def panels(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], path, width: float = 3.2) -> None:
    """rows: (row title, [(panel title, uint8 image), ...]); empty rows get a note instead of images."""
    ncol = max([len(p) for _, p in rows] + [1])
    fig, axes = plt.subplots(len(rows) or 1, ncol, figsize=(width * ncol, width * max(len(rows), 1)), squeeze=False)
    for r, (title, items) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(items):
                ax.imshow(items[c][1], interpolation="nearest")
                ax.set_title(f"{title}\n{items[c][0]}" if c == 0 else items[c][0], fontsize=8)
            elif c == 0:
                ax.text(0.5, 0.5, f"{title}: not applicable", ha="center", va="center", fontsize=8)
    if not rows:
        axes[0][0].text(0.5, 0.5, "no runs selected", ha="center", va="center")
    save_figure(path, fig)
    plt.close(fig)
