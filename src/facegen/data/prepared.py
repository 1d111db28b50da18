"""The one reader of a prepared dataset, results/data/<name>/: its image arrays, its metadata and the
seeded subsets of its splits. Every job reads prepared data through it, so the layout and the subset
rule live in one place (a second copy of the rule would draw other rows under the same seed)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd

METADATA = "metadata.parquet"
PREPARE_RECORD = "prepare.json"


def image_file(key: int | str) -> str:
    """The array file of a resolution (64) or a variant ('gray48')."""
    return f"images_{key}.npy"


def seeded_subset(rows: np.ndarray | int, n: int | None, seed: int) -> np.ndarray:
    """``rows`` (or ``range(rows)``) itself, or a seeded draw of ``n`` of them without replacement,
    sorted so that memory-mapped reads go forward."""
    rows = np.arange(rows) if isinstance(rows, (int, np.integer)) else np.asarray(rows)
    if n is None or n >= len(rows):
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


def split_rows(meta: pd.DataFrame, split: str, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Sorted rows of ``split`` in a prepared dataset's metadata, a seeded subset of ``n`` when the split
    is larger (may be empty)."""
    return seeded_subset(np.flatnonzero(meta["split"].to_numpy() == split), n, seed)


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    root: Path
    name: str

    @classmethod
    def of(cls, config: dict, name: str) -> PreparedDataset:
        from facegen.paths import prepared

        return cls(prepared(config, name), name)

    def image_path(self, key: int | str) -> Path:
        return self.root / image_file(key)

    def images(self, key: int | str) -> np.ndarray:
        """uint8 (N, H, W, C) or (N, H, W), memory-mapped; row i belongs to ``meta`` row i."""
        path = self.image_path(key)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: prepare the dataset first (facegen prepare {self.name}), with "
                                    f"'{key}' among its data.resolutions or its variants (gray48) in the config")
        return np.load(path, mmap_mode="r")

    @functools.cached_property
    def meta(self) -> pd.DataFrame:
        path = self.root / METADATA
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: prepare the dataset first (facegen prepare {self.name})")
        return pd.read_parquet(path)

    def rows(self, split: str, n: int | None = None, seed: int = 0) -> np.ndarray:
        return split_rows(self.meta, split, n, seed)
