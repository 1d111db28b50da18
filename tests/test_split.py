"""Seeded train/val/test splits: determinism, counts, stratification, group disjointness, bad ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facegen.data.split import SPLITS, group_split, random_split, stratified_split


def counts(labels) -> dict:
    s = pd.Series(labels).value_counts()
    return {k: int(s.get(k, 0)) for k in SPLITS}


def rounded_bounds(n: int, ratios) -> dict:
    """Expected counts: rounded cumulative ratios."""
    r = np.asarray(ratios, float) / np.sum(ratios)
    bounds = np.rint(np.cumsum(r) * n).astype(int)
    sizes = np.diff(np.concatenate([[0], bounds]))
    return dict(zip(SPLITS, sizes.tolist()))


@pytest.fixture(scope="module")
def groups():
    rng = np.random.default_rng(2024)
    sizes = rng.integers(1, 6, 3000)  # 3000 groups of 1..5 items
    labels = np.repeat([f"id{i:04d}" for i in range(3000)], sizes)
    return labels[rng.permutation(len(labels))]


# --- random_split -------------------------------------------------------------------------------


def test_random_split_known_counts():
    labels = random_split(1000, [8, 1, 1], seed=0)
    assert labels.shape == (1000,)
    assert counts(labels) == {"train": 800, "val": 100, "test": 100}
    assert set(labels) == set(SPLITS)


def test_random_split_ratios_are_normalised():
    assert counts(random_split(1000, [0.8, 0.1, 0.1], 3)) == {"train": 800, "val": 100, "test": 100}
    assert counts(random_split(1000, [7, 2, 1], 3)) == {"train": 700, "val": 200, "test": 100}
    assert counts(random_split(90, [1, 1, 1], 3)) == {"train": 30, "val": 30, "test": 30}


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 10, 33, 101])
@pytest.mark.parametrize("ratios", [[8, 1, 1], [7, 2, 1], [1, 1, 1], [1, 0, 0], [0, 0, 1], [0, 3, 1]])
def test_random_split_counts_for_any_n(n, ratios):
    labels = random_split(n, ratios, seed=1)
    assert len(labels) == n
    assert all(label in SPLITS for label in labels)  # every item gets a split
    assert counts(labels) == rounded_bounds(n, ratios)
    for name, ratio in zip(SPLITS, np.asarray(ratios) / np.sum(ratios)):
        assert abs(counts(labels)[name] - ratio * n) <= 1
        if ratio == 0:
            assert name not in set(labels)


def test_random_split_deterministic_and_seed_dependent():
    a = random_split(500, [8, 1, 1], seed=42)
    b = random_split(500, [8, 1, 1], seed=42)
    c = random_split(500, [8, 1, 1], seed=43)
    assert (a == b).all()
    assert (a != c).any()
    assert counts(a) == counts(c)  # same sizes, different members


def test_random_split_is_shuffled():
    labels = random_split(1000, [8, 1, 1], seed=0)
    # Not simply the first 800 as train.
    assert (labels[:800] != "train").any()


# --- stratified_split ---------------------------------------------------------------------------


def test_stratified_split_keeps_each_stratum_proportions():
    strata = np.repeat(["a", "b", "c", "d"], [500, 300, 37, 3])
    labels = stratified_split(strata, [8, 1, 1], seed=0)
    assert len(labels) == len(strata)
    table = pd.crosstab(strata, labels)
    for stratum, n in zip("abcd", [500, 300, 37, 3]):
        got = {s: int(table.loc[stratum].get(s, 0)) for s in SPLITS}
        assert got == rounded_bounds(n, [8, 1, 1]), stratum
        for name, ratio in zip(SPLITS, [0.8, 0.1, 0.1]):
            assert abs(got[name] - ratio * n) <= 1
    assert {s: int(table.loc["a"][s]) for s in SPLITS} == {"train": 400, "val": 50, "test": 50}
    assert {s: int(table.loc["c"][s]) for s in SPLITS} == {"train": 30, "val": 3, "test": 4}


def test_stratified_split_interleaved_strata_and_numbers():
    rng = np.random.default_rng(7)
    strata = rng.integers(0, 5, 2000)
    labels = stratified_split(strata, [7, 2, 1], seed=5)
    for k in range(5):
        n = int((strata == k).sum())
        assert counts(labels[strata == k]) == rounded_bounds(n, [7, 2, 1])


def test_stratified_split_deterministic_and_seed_dependent():
    strata = np.tile(["x", "y", "z"], 200)
    a = stratified_split(strata, [8, 1, 1], 11)
    b = stratified_split(list(strata), [8, 1, 1], 11)
    c = stratified_split(strata, [8, 1, 1], 12)
    assert (a == b).all()
    assert (a != c).any()


# --- group_split --------------------------------------------------------------------------------


def test_group_split_never_shares_a_group(groups):
    labels = group_split(groups, [8, 1, 1], seed=0)
    assert len(labels) == len(groups)
    assert all(label in SPLITS for label in labels)
    per_group = pd.DataFrame({"g": groups, "s": labels}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()


@pytest.mark.parametrize("ratios", [[8, 1, 1], [7, 2, 1], [1, 1, 1]])
@pytest.mark.parametrize("seed", [0, 1])
def test_group_split_fractions_near_ratios(groups, ratios, seed):
    labels = group_split(groups, ratios, seed)
    fractions = pd.Series(labels).value_counts(normalize=True)
    for name, ratio in zip(SPLITS, np.asarray(ratios) / np.sum(ratios)):
        assert abs(fractions[name] - ratio) < 0.02, (name, fractions[name], ratio)


def test_group_split_deterministic_and_seed_dependent(groups):
    a = group_split(groups, [8, 1, 1], 3)
    b = group_split(list(groups), [8, 1, 1], 3)
    c = group_split(groups, [8, 1, 1], 4)
    assert (a == b).all()
    assert (a != c).any()


def test_group_split_independent_of_item_order(groups):
    """The assignment is a property of the group, not of where its items sit in the list."""
    perm = np.random.default_rng(1).permutation(len(groups))
    a = group_split(groups, [8, 1, 1], 9)
    b = group_split(groups[perm], [8, 1, 1], 9)
    assert (a[perm] == b).all()


@pytest.mark.parametrize("ratios, only", [([1, 0, 0], "train"), ([0, 1, 0], "val"), ([0, 0, 1], "test")])
def test_group_split_single_split(groups, ratios, only):
    assert set(group_split(groups, ratios, 0)) == {only}


def test_group_split_zero_ratio_split_stays_empty(groups):
    labels = group_split(groups, [1, 0, 1], 0)
    assert "val" not in set(labels)
    fractions = pd.Series(labels).value_counts(normalize=True)
    assert abs(fractions["train"] - 0.5) < 0.02


def test_group_split_integer_groups():
    groups = np.repeat(np.arange(100), 3)
    labels = group_split(groups, [8, 1, 1], 0)
    assert pd.DataFrame({"g": groups, "s": labels}).groupby("g")["s"].nunique().max() == 1
    assert counts(labels)["train"] == pytest.approx(240, abs=6)


# --- bad ratios ---------------------------------------------------------------------------------

BAD = [[-1, 1, 1], [1, -0.5, 1], [0, 0, 0], [1, 1], [1, 1, 1, 1], [], [[8, 1, 1]]]


@pytest.mark.parametrize("ratios", BAD)
@pytest.mark.parametrize(
    "call",
    [
        lambda r: random_split(10, r, 0),
        lambda r: stratified_split(["a"] * 10, r, 0),
        lambda r: group_split(list(range(10)), r, 0),
    ],
    ids=["random", "stratified", "group"],
)
def test_bad_ratios_raise(call, ratios):
    with pytest.raises(ValueError, match="split ratios must be three finite non-negative numbers, not all zero"):
        call(ratios)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("ratios", [[float("nan"), 1, 1], [float("inf"), 1, 1]])
def test_non_finite_ratios_raise(ratios):
    with pytest.raises(ValueError):
        random_split(10, ratios, 0)
