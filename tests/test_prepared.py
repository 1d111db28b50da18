"""facegen.data.prepared: the one reader of a prepared dataset and its seeded subsets."""

import numpy as np
import pandas as pd
import pytest

from facegen.data.prepared import METADATA, PreparedDataset, image_file, seeded_subset
from facegen.tensors import to_tensor, to_uint8


def test_seeded_subset_is_the_sorted_seeded_draw():
    rows = np.arange(10, 60, 5)
    got = seeded_subset(rows, 4, seed=3)
    assert list(got) == sorted(np.random.default_rng(3).choice(rows, 4, replace=False))
    assert set(got) <= set(rows) and list(got) == sorted(got)
    # A count and its range draw the same rows, so every job's subsets agree whichever it passes.
    assert list(seeded_subset(50, 7, 1)) == list(seeded_subset(np.arange(50), 7, 1))


@pytest.mark.parametrize("n", [None, 10, 11])
def test_seeded_subset_keeps_every_row_when_n_is_not_smaller(n):
    rows = np.array([2, 4, 9, 11, 13, 20, 21, 30, 31, 40])
    assert list(seeded_subset(rows, n, 0)) == list(rows)


@pytest.fixture
def prepared(tmp_path):
    root = tmp_path / "results" / "data" / "toy"
    root.mkdir(parents=True)
    np.save(root / image_file(8), np.arange(6 * 8 * 8 * 3, dtype=np.uint8).reshape(6, 8, 8, 3))
    pd.DataFrame({"id": list("abcdef"), "split": ["train", "test", "train", "val", "train", "train"]}).to_parquet(root / METADATA)
    return PreparedDataset.of({"results_dir": str(tmp_path / "results")}, "toy")


def test_rows_images_and_meta_agree(prepared):
    assert list(prepared.rows("train")) == [0, 2, 4, 5]
    assert list(prepared.rows("train", 2, seed=0)) == list(seeded_subset(np.array([0, 2, 4, 5]), 2, 0))
    assert list(prepared.rows("nosuch")) == []
    images = prepared.images(8)
    assert isinstance(images, np.memmap) and images.shape == (6, 8, 8, 3)
    assert list(prepared.meta["id"]) == list("abcdef")


def test_a_missing_array_names_the_file_and_the_fix(prepared):
    with pytest.raises(FileNotFoundError, match=r"images_gray48\.npy not found: prepare the dataset first \(facegen prepare toy\)"):
        prepared.images("gray48")
    with pytest.raises(FileNotFoundError, match=r"metadata\.parquet not found: prepare the dataset first"):
        PreparedDataset.of({"results_dir": str(prepared.root.parent.parent)}, "absent").meta


def test_image_converters_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 4, 3), dtype=np.uint8)
    x = to_tensor(rgb)
    assert x.shape == (3, 3, 5, 4) and x.dtype.is_floating_point and float(x.max()) <= 1
    assert np.array_equal(to_uint8(x), rgb)
    gray = rgb[..., 0]
    assert to_tensor(gray).shape == (3, 1, 5, 4)
    assert np.array_equal(to_tensor(gray)[:, 0].numpy(), gray / np.float32(255))
