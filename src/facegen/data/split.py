"""Seeded train/val/test splits: plain, stratified, and group-disjoint (no identity in two splits)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def _ratios(ratios) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if r.shape != (3,) or not np.isfinite(r).all() or (r < 0).any() or r.sum() <= 0:
        raise ValueError(f"split ratios must be three finite non-negative numbers, not all zero; got {list(ratios)}")
    return r / r.sum()


def _allot(n: int, ratios: np.ndarray) -> np.ndarray:
    """Split labels for n shuffled items, with counts from rounded cumulative ratios."""
    bounds = np.rint(np.cumsum(ratios) * n).astype(int)
    labels = np.empty(n, dtype=object)
    start = 0
    for name, stop in zip(SPLITS, bounds):
        labels[start:stop] = name
        start = stop
    return labels


def random_split(n: int, ratios, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=object)
    out[rng.permutation(n)] = _allot(n, _ratios(ratios))
    return out


def stratified_split(strata, ratios, seed: int) -> np.ndarray:
    """Every stratum is split in the same proportions (up to rounding)."""
    strata = pd.Series(np.asarray(strata)).astype(str)
    r = _ratios(ratios)
    rng = np.random.default_rng(seed)
    out = np.empty(len(strata), dtype=object)
    for key in sorted(strata.unique()):
        idx = np.flatnonzero(strata.to_numpy() == key)
        out[idx[rng.permutation(len(idx))]] = _allot(len(idx), r)
    return out


def group_split(groups, ratios, seed: int) -> np.ndarray:
    """Assign whole groups (e.g. CelebA identities) to splits so image counts follow the ratios."""
    groups = pd.Series(np.asarray(groups))
    r = _ratios(ratios)
    sizes = groups.value_counts().sort_index()
    rng = np.random.default_rng(seed)
    order = sizes.index.to_numpy()[rng.permutation(len(sizes))]
    counts = sizes.loc[order].to_numpy()
    midpoints = (np.cumsum(counts) - counts / 2) / counts.sum()
    which = np.searchsorted(np.cumsum(r), midpoints, side="right").clip(0, 2)
    mapping = dict(zip(order, np.asarray(SPLITS, dtype=object)[which]))
    return groups.map(mapping).to_numpy(dtype=object)
