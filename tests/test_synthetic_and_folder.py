"""Synthetic faces (determinism, group mix, skin tones, per-group noise) and the user-folder dataset."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facegen.config import load as load_config
from facegen.data import fetch, prepare_dataset, synthetic
from facegen.data.split import SPLITS, random_split

SYNTH = {"n": 60, "size": 64, "group_weights": [1.0, 1.0, 1.0], "group_noise": [0.0, 0.05, 0.15],
         "p_smile": 0.5, "p_glasses": 0.2, "split": [8, 1, 1], "crop": {"size": 1.0, "center_y": 0.5}}


def render(cfg: dict, seed: int):
    raw = synthetic.load({}, cfg, seed)
    images = dict(raw.images())
    return raw, images


def corner_std(image: np.ndarray) -> float:
    """Pixel std of the top-left 5x5 patch, which is plain background (one flat colour) before noise."""
    return float(image[:5, :5].astype(float).std(axis=(0, 1)).mean())


# --- synthetic ----------------------------------------------------------------------------------


def test_synthetic_same_seed_identical():
    raw_a, img_a = render(SYNTH, 5)
    raw_b, img_b = render(SYNTH, 5)
    pd.testing.assert_frame_equal(raw_a.meta, raw_b.meta)
    assert list(img_a) == list(raw_a.meta["id"])
    assert img_a.keys() == img_b.keys()
    for key in img_a:
        assert img_a[key].dtype == np.uint8 and img_a[key].shape == (64, 64, 3)
        np.testing.assert_array_equal(img_a[key], img_b[key])


def test_synthetic_different_seed_differs():
    raw_a, img_a = render(SYNTH, 5)
    raw_b, img_b = render(SYNTH, 6)
    assert list(raw_a.meta["id"]) == list(raw_b.meta["id"])  # ids are positional
    assert not raw_a.meta[["group", "smile", "glasses", "hair"]].equals(raw_b.meta[["group", "smile", "glasses", "hair"]])
    assert sum(not np.array_equal(img_a[k], img_b[k]) for k in img_a) == len(img_a)


def test_synthetic_metadata_columns_and_consistency():
    raw, _ = render(SYNTH, 1)
    meta = raw.meta
    assert list(meta.columns[:2]) == ["id", "split"]
    assert meta["id"].tolist() == [f"synth_{i:06d}" for i in range(60)]
    assert (meta["group_name"] == "tone_" + meta["group"].astype(str)).all()
    assert (meta["hair_name"] == np.asarray(synthetic.HAIR_NAMES)[meta["hair"]]).all()
    assert (meta["noise"] == np.asarray(SYNTH["group_noise"])[meta["group"]]).all()
    assert set(meta["split"]) <= set(SPLITS)
    for col in synthetic.SUMMARY_COLUMNS:
        assert col in meta.columns


def test_group_mix_follows_weights():
    cfg = dict(SYNTH, n=20000, group_weights=[0.5, 0.25, 0.15, 0.1], group_noise=[0.02] * 4)
    frame = synthetic.attributes(cfg, seed=11)
    fractions = frame["group"].value_counts(normalize=True).sort_index()
    assert list(fractions.index) == [0, 1, 2, 3]
    np.testing.assert_allclose(fractions.to_numpy(), [0.5, 0.25, 0.15, 0.1], atol=0.015)


def test_group_weights_are_relative():
    cfg = dict(SYNTH, n=20000, group_weights=[3, 1], group_noise=[0, 0])
    fractions = synthetic.attributes(cfg, 2)["group"].value_counts(normalize=True)
    assert fractions[0] == pytest.approx(0.75, abs=0.015)


def test_smile_and_glasses_rates():
    cfg = dict(SYNTH, n=20000, p_smile=0.3, p_glasses=0.0)
    frame = synthetic.attributes(cfg, 4)
    assert frame["smile"].mean() == pytest.approx(0.3, abs=0.015)
    assert frame["glasses"].sum() == 0


def test_synthetic_split_stratified_by_group():
    cfg = dict(SYNTH, n=500)
    meta = synthetic.attributes(cfg, 3)
    raw = synthetic.load({}, cfg, 3)
    for g in range(3):
        labels = raw.meta.loc[raw.meta["group"] == g, "split"]
        n = len(labels)
        for name, ratio in zip(SPLITS, [0.8, 0.1, 0.1]):
            assert abs((labels == name).sum() - ratio * n) <= 1
    assert (meta["group"] == raw.meta["group"]).all()


@pytest.mark.parametrize("n_groups", [2, 3, 4, 5, 7])
def test_skin_tone_darkens_with_group(n_groups):
    tones = np.array([synthetic.skin_tone(g, n_groups) for g in range(n_groups)], float)
    assert tones.dtype == float
    means = tones.mean(axis=1)
    assert (np.diff(means) < 0).all()
    np.testing.assert_array_equal(tones[0], [255, 224, 196])  # lightest end of the ramp
    np.testing.assert_array_equal(tones[-1], [92, 58, 36])  # darkest end


def test_skin_tone_known_values():
    np.testing.assert_array_equal(synthetic.skin_tone(1, 4), [222, 176, 133])
    np.testing.assert_array_equal(synthetic.skin_tone(2, 5), [198, 145, 100])
    assert synthetic.skin_tone(0, 4).dtype == np.uint8


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("group", [0, 1, 2, 3])
def test_face_is_drawn_in_the_group_skin_tone(size, group):
    img = synthetic.draw_face(np.random.default_rng(group), size, group, 4, smile=False, glasses=True, hair=0, noise=0.0)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    s = size / 128
    cheek = img[int(size / 2 + 11 * s), int(size / 2 + 20 * s)]
    np.testing.assert_array_equal(cheek, synthetic.skin_tone(group, 4))


def test_noise_is_the_only_difference_between_two_renders():
    """Same rng seed: geometry is identical; noise adds a zero-mean perturbation of sigma noise*255."""
    def face(noise):
        return synthetic.draw_face(np.random.default_rng(99), 128, 1, 4, True, False, 2, noise).astype(float)

    clean = face(0.0)
    np.testing.assert_array_equal(clean, face(0.0))
    for sigma in (0.02, 0.08):
        diff = face(sigma) - clean
        assert abs(diff.mean()) < 1.0
        assert diff.std() == pytest.approx(sigma * 255, rel=0.1)


def test_group_noise_raises_per_group_variation():
    raw, images = render(SYNTH, 8)
    meta = raw.meta
    per_group = {}
    for g in range(3):
        ids = meta.loc[meta["group"] == g, "id"]
        assert len(ids) >= 5
        per_group[g] = np.array([corner_std(images[i]) for i in ids])
    # A flat background stays flat without noise, and its std follows the group's noise sigma.
    assert (per_group[0] == 0).all()
    assert per_group[1].mean() == pytest.approx(0.05 * 255, rel=0.2)
    assert per_group[2].mean() == pytest.approx(0.15 * 255, rel=0.2)
    assert per_group[1].min() > 0
    assert per_group[2].min() > per_group[1].max()


def test_synthetic_prepare_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({
        "seed": 21,
        "results_dir": str(tmp_path / "results"),
        "data": {"resolutions": [64, 16], "datasets": {"toy": {"kind": "synthetic", "n": 40, "size": 64,
                                                                "group_weights": [1, 1], "group_noise": [0.0, 0.1]}}},
    })
    manifest_path = tmp_path / "results" / "manifests" / "toy.json"
    manifest = fetch(config, "toy", manifest_path)
    assert manifest == {"dataset": "toy", "kind": "synthetic", "files": {}}
    assert json.loads(manifest_path.read_text()) == manifest
    out = tmp_path / "results" / "data" / "toy"
    summary = prepare_dataset(config, "toy", manifest_path, out)
    assert summary["n_images"] == 40
    assert summary["resolutions"] == [16, 64]
    assert summary["n_skipped_unreadable"] == 0
    assert summary["gray48"] is False
    assert json.loads((out / "prepare.json").read_text()) == json.loads(json.dumps(summary))
    meta = pd.read_parquet(out / "metadata.parquet")
    assert len(meta) == 40
    assert summary["split_counts"] == {k: int((meta["split"] == k).sum()) for k in SPLITS if (meta["split"] == k).any()}
    assert sum(summary["split_counts"].values()) == 40
    big, small = np.load(out / "images_64.npy"), np.load(out / "images_16.npy")
    assert big.shape == (40, 64, 64, 3) and small.shape == (40, 16, 16, 3)
    assert big.dtype == np.uint8 and small.dtype == np.uint8
    # Arrays are in metadata order and equal to the generator's output at its own size.
    _, raw_images = render(config["data"]["datasets"]["toy"], 21)
    for k, image_id in enumerate(meta["id"]):
        np.testing.assert_array_equal(big[k], raw_images[image_id])
    # The noisy group stays noisier after storing.
    stds = np.array([corner_std(im) for im in big])
    assert stds[meta["group"].to_numpy() == 0].max() == 0
    assert stds[meta["group"].to_numpy() == 1].min() > 5
    assert list(tmp_path.glob("results/data/toy/.*")) == []  # no temporary files left behind


# --- folder dataset -----------------------------------------------------------------------------


COLOURS = {"a.png": (255, 0, 0), "b.jpg": (0, 255, 0), "d.PNG": (0, 0, 255), "sub/c.png": (200, 200, 200)}


@pytest.fixture
def faces(tmp_path):
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), COLOURS["a.png"]).save(root / "a.png")
    Image.new("RGB", (30, 40), COLOURS["b.jpg"]).save(root / "b.jpg", quality=95)
    Image.new("RGBA", (24, 24), COLOURS["d.PNG"] + (255,)).save(root / "d.PNG")
    Image.new("L", (50, 50), 200).save(root / "sub" / "c.png")
    (root / "notes.txt").write_text("not an image")
    return root


def folder_config(tmp_path, **ds) -> dict:
    return load_config({
        "seed": 3,
        "results_dir": str(tmp_path / "results"),
        "data": {"resolutions": [16], "datasets": {"mine": {"kind": "folder", **ds}}},
    })


def run_folder(tmp_path, config):
    manifest_path = tmp_path / "results" / "manifests" / "mine.json"
    manifest = fetch(config, "mine", manifest_path)
    out = tmp_path / "results" / "data" / "mine"
    summary = prepare_dataset(config, "mine", manifest_path, out)
    return manifest, summary, pd.read_parquet(out / "metadata.parquet"), np.load(out / "images_16.npy")


def test_folder_fetch_manifest(tmp_path, faces):
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,age\na.png,30\n")
    config = folder_config(tmp_path, path=str(faces), labels=str(labels))
    manifest = fetch(config, "mine", tmp_path / "m.json")
    files = manifest["files"]
    assert files["folder"]["path"] == str(faces.resolve())
    assert files["folder"]["n_files"] == 4  # notes.txt is not an image
    digest = hashlib.sha256()
    for rel in ["a.png", "b.jpg", "d.PNG", "sub/c.png"]:  # names and contents: an edited image changes it
        digest.update(rel.encode() + b"\0" + hashlib.sha256((faces / rel).read_bytes()).digest())
    assert files["folder"]["sha256"] == digest.hexdigest()
    assert files["labels"]["sha256"] == hashlib.sha256(labels.read_bytes()).hexdigest()
    assert files["labels"]["path"] == str(labels.resolve())


def test_folder_relative_path_resolved_from_cwd(tmp_path, faces, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = folder_config(tmp_path, path="faces")
    manifest = fetch(config, "mine", "m.json")
    assert manifest["files"]["folder"]["path"] == str(faces.resolve())
    assert (tmp_path / "m.json").exists()


def test_folder_with_labels_end_to_end(tmp_path, faces):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"filename": ["a.png", "b.jpg", "sub/c.png", "ghost.png"], "age": [31, 42, 53, 64],
                  "gender": ["f", "m", "f", "m"]}).to_csv(labels, index=False)
    config = folder_config(tmp_path, path=str(faces), labels=str(labels))
    _, summary, meta, images = run_folder(tmp_path, config)
    assert summary["n_images"] == 4
    assert summary["n_labels_without_image"] == 1
    assert summary["split_method"] == "seeded random split, ratios [8, 1, 1]"
    assert meta["file"].tolist() == ["a.png", "b.jpg", "d.PNG", "sub/c.png"]
    assert meta["id"].tolist() == ["a.png", "b.jpg", "d.PNG", "sub/c.png"]
    # Labels joined by file name; the unlabelled image gets missing labels.
    assert meta["age"].tolist()[:2] == [31, 42] and meta["age"].tolist()[3] == 53 and pd.isna(meta["age"][2])
    assert meta["gender"].tolist()[:2] == ["f", "m"] and pd.isna(meta["gender"][2])
    assert "ghost.png" not in set(meta["file"])
    # Seeded random split in file order.
    assert meta["split"].tolist() == list(random_split(4, [8, 1, 1], 3))
    assert summary["split_counts"] == {"train": 3, "val": 1}
    # Images are stored in metadata order, converted to RGB.
    assert images.shape == (4, 16, 16, 3)
    for k, file in enumerate(meta["file"]):
        np.testing.assert_allclose(images[k].reshape(-1, 3).mean(axis=0), COLOURS[file], atol=3)


def test_folder_without_labels(tmp_path, faces):
    config = folder_config(tmp_path, path=str(faces))
    manifest, summary, meta, _ = run_folder(tmp_path, config)
    assert "labels" not in manifest["files"]
    assert list(meta.columns) == ["id", "file", "split"]
    assert summary["n_images"] == 4 and "n_labels_without_image" not in summary


def test_folder_split_column_used_as_given(tmp_path, faces):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"filename": ["a.png", "b.jpg", "d.PNG", "sub/c.png"],
                  "split": ["test", "test", "val", "train"]}).to_csv(labels, index=False)
    config = folder_config(tmp_path, path=str(faces), labels=str(labels))
    _, summary, meta, _ = run_folder(tmp_path, config)
    assert summary["split_method"] == "from the labels CSV"
    assert meta["split"].tolist() == ["test", "test", "val", "train"]
    assert summary["split_counts"] == {"train": 1, "val": 1, "test": 2}


def test_folder_incomplete_split_column_is_replaced(tmp_path, faces):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"filename": ["a.png", "b.jpg"], "split": ["test", "bogus"]}).to_csv(labels, index=False)
    config = folder_config(tmp_path, path=str(faces), labels=str(labels))
    _, summary, meta, _ = run_folder(tmp_path, config)
    assert summary["split_method"].startswith("seeded random split")
    assert meta["split"].tolist() == list(random_split(4, [8, 1, 1], 3))


def test_folder_limit(tmp_path, faces):
    config = folder_config(tmp_path, path=str(faces), limit=2)
    _, summary, meta, images = run_folder(tmp_path, config)
    assert summary["n_images"] == 2 and len(meta) == 2 and images.shape[0] == 2
    assert meta["file"].is_monotonic_increasing
    assert set(meta["file"]) <= set(COLOURS)


def test_folder_unreadable_image_is_skipped_and_counted(tmp_path, faces):
    (faces / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    config = folder_config(tmp_path, path=str(faces))
    _, summary, meta, images = run_folder(tmp_path, config)
    assert summary["n_images"] == 4
    assert summary["n_skipped_unreadable"] == 1
    assert list(summary["skipped_unreadable"]) == ["broken.png"]
    assert "broken.png" not in set(meta["file"])
    assert images.shape[0] == 4


def test_folder_labels_without_filename_column(tmp_path, faces):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,age\na.png,30\n")
    config = folder_config(tmp_path, path=str(faces), labels=str(labels))
    manifest_path = tmp_path / "m.json"
    fetch(config, "mine", manifest_path)
    with pytest.raises(ValueError) as info:
        prepare_dataset(config, "mine", manifest_path, tmp_path / "out")
    msg = str(info.value)
    assert "needs a 'filename' column" in msg
    assert "['file', 'age']" in msg
    assert str(labels.resolve()) in msg
    assert not (tmp_path / "out" / "prepare.json").exists()


def test_folder_missing_folder(tmp_path):
    missing = tmp_path / "no_such_faces"
    config = folder_config(tmp_path, path=str(missing))
    with pytest.raises(FileNotFoundError) as info:
        fetch(config, "mine", tmp_path / "m.json")
    assert str(missing) in str(info.value)
    assert "data.datasets.<name>.path" in str(info.value)
    assert not (tmp_path / "m.json").exists()


def test_folder_missing_labels_file(tmp_path, faces):
    missing = tmp_path / "labels_absent.csv"
    config = folder_config(tmp_path, path=str(faces), labels=str(missing))
    with pytest.raises(FileNotFoundError) as info:
        fetch(config, "mine", tmp_path / "m.json")
    assert str(missing) in str(info.value)


def test_folder_with_no_images_fails_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    config = folder_config(tmp_path, path=str(empty))
    with pytest.raises(FileNotFoundError, match=f"image folder '{empty}' holds no images"):
        fetch(config, "mine", tmp_path / "m.json")


def test_folder_ids_unique_for_colliding_names(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    Image.new("RGB", (20, 20), (255, 0, 0)).save(root / "a b.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(root / "a_b.png")
    config = folder_config(tmp_path, path=str(root))
    _, _, meta, images = run_folder(tmp_path, config)
    assert meta["id"].is_unique
    by_file = dict(zip(meta["file"], images[:, 8, 8].tolist()))
    assert by_file == {"a b.png": [255, 0, 0], "a_b.png": [0, 0, 255]}
