"""CelebA and UTKFace loaders on tiny built archives, and on the real mirror when it is present."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from facegen.config import load as load_config
from facegen.data import celeba, fetch, utkface
from facegen.data.split import SPLITS


def jpeg(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (89, 109), colour).save(buf, "JPEG")
    return buf.getvalue()


def celeba_files(root, n=60, partition=False):
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as zf:
        for i, name in enumerate(names):
            zf.writestr(celeba.IMAGE_DIR + name, jpeg((i * 4 % 256, 0, 0)))
    attrs = ["Male", "Smiling"]
    rows = [f"{name} {' '.join('1' if (i + k) % 2 else '-1' for k in range(len(attrs)))}" for i, name in enumerate(names)]
    (root / "list_attr_celeba.txt").write_text("\r\n".join([str(n), " ".join(attrs), *rows]) + "\r\n")
    (root / "identity_CelebA.txt").write_text("\n".join(f"{name} {i // 3}" for i, name in enumerate(names)) + "\n")
    files = {f: {"path": str(root / f)} for f in ["img_align_celeba.zip", "list_attr_celeba.txt", "identity_CelebA.txt"]}
    if partition:
        (root / "list_eval_partition.txt").write_text("\n".join(f"{name} {i % 3}" for i, name in enumerate(names)) + "\n")
        files["list_eval_partition.txt"] = {"path": str(root / "list_eval_partition.txt")}
    return {"files": files}


CELEBA_CFG = {"split": [8, 1, 1], "limit": None}


def test_celeba_identity_disjoint_split(tmp_path):
    raw = celeba.load(celeba_files(tmp_path), CELEBA_CFG, seed=3)
    meta = raw.meta
    assert len(meta) == 60 and set(meta["split"]) <= set(SPLITS)
    assert meta.groupby("identity")["split"].nunique().max() == 1  # nobody is in two splits
    assert raw.notes["split_method"].startswith("seeded identity-disjoint")
    assert meta.loc[meta["id"] == "000002", ["Male", "Smiling"]].values.tolist() == [[1, 0]]
    got = dict(raw.images())
    assert set(got) == set(meta["id"]) and got["000001"][:2] == b"\xff\xd8"


def test_celeba_official_partition_and_limit(tmp_path):
    raw = celeba.load(celeba_files(tmp_path, partition=True), {**CELEBA_CFG, "limit": 30}, seed=0)
    assert len(raw.meta) == 30
    assert raw.notes["split_method"] == "official list_eval_partition.txt"
    expected = raw.meta["file"].map(lambda f: SPLITS[(int(f[:6]) - 1) % 3])
    assert (raw.meta["split"] == expected).all()
    assert set(dict(raw.images())) == set(raw.meta["id"])


def test_celeba_identity_file_mismatch(tmp_path):
    manifest = celeba_files(tmp_path)
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    with pytest.raises(ValueError, match="identity_CelebA.txt has no identity for 000002.jpg"):
        celeba.load(manifest, CELEBA_CFG, seed=0)


def test_utkface_tiny_archive(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    names = [f"{20 + i}_{i % 2}_{i % 5}_2017010{i}.jpg.chip.jpg" for i in range(20)] + ["39_1_20170116174525125.jpg.chip.jpg"]
    with tarfile.open(path, "w:gz") as tf:
        for name in names:
            data = jpeg((10, 200, 10))
            info = tarfile.TarInfo("UTKFace/" + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = utkface.load({"files": {"UTKFace.tar.gz": {"path": str(path)}}}, {"split": [7, 2, 1], "limit": None}, seed=0)
    assert raw.notes["n_malformed_names"] == 1
    assert raw.notes["malformed_names"] == ["39_1_20170116174525125.jpg.chip.jpg"]
    assert len(raw.meta) == 20 and set(dict(raw.images())) == set(raw.meta["id"])
    row = raw.meta.set_index("id").loc["23_1_3_20170103"]
    assert (row["age"], row["gender_name"], row["race_name"], row["age_bucket"]) == (23, "female", "Indian", "20-29")


@pytest.fixture
def mirror_config(mirror, tmp_path):
    return load_config("config/config.yaml", {"data": {"mirror": str(mirror), "download_dir": str(tmp_path / "dl")}})


def test_real_utkface_labels(mirror_config, tmp_path):
    manifest = fetch(mirror_config, "utkface", tmp_path / "utk.json")
    assert manifest["files"]["UTKFace.tar.gz"]["source"].startswith("mirror:")
    raw = utkface.load(manifest, mirror_config["data"]["datasets"]["utkface"], seed=1234)
    meta = raw.meta
    assert len(meta) == 23_702 and raw.notes["n_malformed_names"] == 5
    assert meta["race_name"].value_counts().to_dict() == {"White": 10_077, "Black": 4_524, "Indian": 3_975, "Asian": 3_434, "Others": 1_692}
    assert meta["gender_name"].value_counts().to_dict() == {"male": 12_388, "female": 11_314}
    assert (meta["age"].min(), meta["age"].max()) == (1, 116)
    # 7:2:1 within each gender x race stratum, up to rounding
    for _, group in meta.groupby(["gender", "race"]):
        share = group["split"].value_counts(normalize=True)
        assert abs(share["train"] - 0.7) < 0.01 and abs(share["val"] - 0.2) < 0.01


def test_real_celeba_attributes_and_identity_split(mirror_config, tmp_path):
    manifest = fetch(mirror_config, "celeba", tmp_path / "celeba.json")
    assert "list_eval_partition.txt" not in manifest["files"]  # the mirror has only train images
    meta = celeba.load(manifest, mirror_config["data"]["datasets"]["celeba"], seed=1234).meta
    assert len(meta) == 10_000
    positives = meta[["Male", "Young", "Pale_Skin", "Smiling", "Eyeglasses"]].mean().round(3).to_dict()
    assert positives == {"Male": 0.422, "Young": 0.777, "Pale_Skin": 0.044, "Smiling": 0.482, "Eyeglasses": 0.067}
    assert meta.groupby("identity")["split"].nunique().max() == 1
    share = meta["split"].value_counts(normalize=True)
    assert np.allclose([share["train"], share["val"], share["test"]], [0.8, 0.1, 0.1], atol=0.01)
