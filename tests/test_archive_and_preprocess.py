"""Archives, preprocessing, atomic output, and the CelebA / UTKFace label parsers, on tiny tmp fixtures."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facegen.data import celeba, utkface
from facegen.data.archive import ArchiveError, iter_tar, open_zip
from facegen.data.preprocess import RawDataset, crop_box, prepare, process_image
from facegen.io import atomic_path, read_json

RNG = np.random.default_rng(0)


def jpeg_bytes(color=None, size=(89, 109), mode="RGB", quality=95) -> bytes:
    """A small JPEG: flat ``color``, or noise (which compresses badly, so archives of it stay large)."""
    if color is None:
        arr = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        img = Image.fromarray(arr)
    else:
        img = Image.new("RGB", size, color)
    buf = io.BytesIO()
    img.convert(mode).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_tar_gz(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------------------------------
# archives


def test_open_zip_reads_intact_archive(tmp_path):
    path = tmp_path / "faces.zip"
    imgs = {"img/000001.jpg": jpeg_bytes((200, 10, 10)), "img/000002.jpg": jpeg_bytes((10, 200, 10))}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in imgs.items():
            zf.writestr(name, data)
    with open_zip(path) as zf:
        assert sorted(zf.namelist()) == sorted(imgs)
        assert zf.read("img/000002.jpg") == imgs["img/000002.jpg"]


def test_open_zip_truncated(tmp_path):
    path = tmp_path / "faces.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("img/000001.jpg", jpeg_bytes())
        zf.writestr("img/000002.jpg", jpeg_bytes())
    cut_in_half(path)

    with pytest.raises(ArchiveError) as err:
        with open_zip(path):
            pytest.fail("a truncated zip must not open")
    msg = str(err.value)
    assert f"archive '{path}' is truncated or corrupt" in msg
    assert "BadZipFile" in msg
    assert "sha256sum -c SHA256SUMS" in msg


def test_open_zip_corrupt_member_while_reading(tmp_path):
    path = tmp_path / "faces.zip"
    data = jpeg_bytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("img/000001.jpg", data)
    raw = bytearray(path.read_bytes())
    at = raw.index(data) + len(data) // 2
    raw[at] ^= 0xFF  # one flipped byte in the member's data: the CRC check must catch it
    path.write_bytes(bytes(raw))

    with pytest.raises(ArchiveError) as err:
        with open_zip(path) as zf:
            zf.read("img/000001.jpg")
    assert f"archive '{path}' is truncated or corrupt" in str(err.value)
    assert "CRC" in str(err.value)


def test_open_zip_missing_file(tmp_path):
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        with open_zip(tmp_path / "absent.zip"):
            pass


def test_iter_tar_reads_intact_archive(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    members = {"UTKFace/1_0_0_1.jpg.chip.jpg": jpeg_bytes(), "UTKFace/2_1_3_2.jpg.chip.jpg": jpeg_bytes()}
    write_tar_gz(path, members)
    got = {m.name: data for m, data in iter_tar(path) if data is not None}
    assert got == members


def test_iter_tar_truncated(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    write_tar_gz(path, {f"UTKFace/{i}_0_0_{i}.jpg.chip.jpg": jpeg_bytes() for i in range(1, 9)})
    cut_in_half(path)

    with pytest.raises(ArchiveError) as err:
        for _member, _fh in iter_tar(path):
            pass
    msg = str(err.value)
    assert f"archive '{path}' is truncated or corrupt" in msg
    assert "sha256sum -c SHA256SUMS" in msg


def test_iter_tar_not_an_archive(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    path.write_bytes(bytes(RNG.integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(ArchiveError, match=f"archive '{path}' is truncated or corrupt"):
        list(iter_tar(path))


def test_iter_tar_truncated_inside_member_data(tmp_path):
    path = tmp_path / "UTKFace.tar.gz"
    big = bytes(RNG.integers(0, 256, 200_000, dtype=np.uint8))  # incompressible: the cut lands in its data
    write_tar_gz(path, {"UTKFace/1_0_0_1.jpg.chip.jpg": big})
    cut_in_half(path)

    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        list(iter_tar(path))  # member bytes are read inside iter_tar, where errors are translated


# --------------------------------------------------------------------------------------------------
# crop_box / process_image


def test_crop_box_celeba_geometry():
    # 89x109: side = round(0.8315 * 89) = 74, horizontally centred: left = (89 - 74) // 2 = 7.
    left, top, right, bottom = crop_box(89, 109, 0.8315, 0.55)
    assert (left, right) == (7, 81)
    assert bottom - top == 74
    assert top == round(0.55 * 109 - 37) == 23


@pytest.mark.parametrize(
    ("width", "height", "size", "center_y", "expected"),
    [
        (89, 109, 0.8315, 0.0, (7, 0, 81, 74)),  # clamped at the top
        (89, 109, 0.8315, 1.0, (7, 35, 81, 109)),  # clamped at the bottom: 109 - 74 = 35
        (200, 200, 1.0, 0.5, (0, 0, 200, 200)),
        (100, 50, 0.5, 0.5, (37, 12, 62, 37)),  # side = round(0.5 * 50) = 25; left = 75 // 2; top = round(12.5) = 12
        (10, 10, 0.01, 0.5, (4, 4, 5, 5)),  # side never drops below 1
    ],
)
def test_crop_box_known_answers(width, height, size, center_y, expected):
    box = crop_box(width, height, size, center_y)
    assert box == expected
    assert 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height


def test_process_image_shapes_from_gray_and_array():
    gray = Image.open(io.BytesIO(jpeg_bytes((90, 90, 90), mode="L")))
    out = process_image(gray, {"size": 0.8, "center_y": 0.5}, [8, 16], gray48=True)
    assert set(out) == {8, 16, "gray48"}
    assert out[8].shape == (8, 8, 3) and out[16].shape == (16, 16, 3) and out["gray48"].shape == (48, 48)
    assert all(a.dtype == np.uint8 for a in out.values())
    assert abs(int(out[16].mean()) - 90) <= 3


# --------------------------------------------------------------------------------------------------
# prepare()

COLORS = {"a": (230, 20, 20), "b": (20, 230, 20), "d": (20, 20, 230)}
CROP = {"size": 0.8315, "center_y": 0.55}


def corrupt_bytes(kind: str) -> bytes:
    if kind == "random":
        return bytes(RNG.integers(0, 256, 3000, dtype=np.uint8))
    good = jpeg_bytes()  # noise image: the scan data is most of the file
    return good[: len(good) // 2]


def tiny_raw(kind: str) -> RawDataset:
    meta = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "split": ["train", "train", "val", "test", "train"],
            "label": [1, 2, 3, 4, 5],
        }
    )

    def images():
        yield "d", jpeg_bytes(COLORS["d"])
        yield "zzz", jpeg_bytes()  # not in the labels: ignored, not counted
        yield "c", corrupt_bytes(kind)  # unreadable
        yield "b", np.asarray(Image.new("RGB", (89, 109), COLORS["b"]))  # arrays are accepted too
        yield "a", jpeg_bytes(COLORS["a"])
        yield "a", b"a later duplicate is ignored"
        # "e" is listed in meta but never yielded

    return RawDataset(meta, images, {"split_method": "test fixture"})


@pytest.mark.parametrize("kind", ["random", "truncated"])
def test_prepare_skips_and_counts_unreadable(tmp_path, kind):
    out_dir = tmp_path / "prepared"
    summary = prepare(tiny_raw(kind), CROP, [16, 32], out_dir, "tiny", gray48=True)

    assert summary["dataset"] == "tiny"
    assert summary["n_images"] == 3
    assert summary["n_skipped_unreadable"] == 2
    assert sorted(summary["skipped_unreadable"]) == ["c", "e"]
    expected_error = "UnidentifiedImageError" if kind == "random" else "OSError"
    assert summary["skipped_unreadable"]["c"].startswith(expected_error + ": ")
    assert summary["skipped_unreadable"]["e"] == "listed in the labels but absent from the archive"
    assert summary["split_counts"] == {"train": 2, "test": 1}
    assert summary["resolutions"] == [16, 32] and summary["gray48"] is True and summary["crop"] == CROP
    assert summary["split_method"] == "test fixture"
    assert read_json(out_dir / "prepare.json") == summary

    meta = pd.read_parquet(out_dir / "metadata.parquet")
    assert meta["id"].tolist() == ["a", "b", "d"]  # label order, not the order images arrived in
    assert meta["label"].tolist() == [1, 2, 4]
    assert meta.columns.tolist() == ["id", "split", "label"]

    for res in (16, 32):
        arr = np.load(out_dir / f"images_{res}.npy")
        assert arr.shape == (3, res, res, 3) and arr.dtype == np.uint8
        for row, image_id in enumerate(meta["id"]):
            mean = arr[row].reshape(-1, 3).mean(axis=0)
            assert np.abs(mean - COLORS[image_id]).max() < 6, (res, image_id, mean)
    gray = np.load(out_dir / "images_gray48.npy")
    assert gray.shape == (3, 48, 48) and gray.dtype == np.uint8

    assert sorted(os.listdir(out_dir)) == sorted(
        ["images_16.npy", "images_32.npy", "images_gray48.npy", "metadata.parquet", "prepare.json"]
    )
    assert not [p for p in os.listdir(out_dir) if p.startswith(".")]


def test_prepare_without_gray48(tmp_path):
    summary = prepare(tiny_raw("random"), CROP, [8], tmp_path, "tiny")
    assert summary["gray48"] is False
    assert sorted(os.listdir(tmp_path)) == ["images_8.npy", "metadata.parquet", "prepare.json"]


def test_prepare_nothing_readable(tmp_path):
    meta = pd.DataFrame({"id": ["x", "y"], "split": ["train", "val"]})

    def images():
        yield "x", b"not an image"

    with pytest.raises(RuntimeError) as err:
        prepare(RawDataset(meta, images), CROP, [16], tmp_path / "out", "celeba_tiny")
    assert "dataset 'celeba_tiny': no image could be read (2 skipped)" in str(err.value)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


# --------------------------------------------------------------------------------------------------
# io.atomic_path


def test_atomic_path_failure_creates_nothing(tmp_path):
    target = tmp_path / "sub" / "result.json"
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_text("half written")
            1 / 0
    assert not target.exists()
    assert os.listdir(target.parent) == []


def test_atomic_path_failure_keeps_old_content(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_atomic_path_success_replaces(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.name.startswith(".result.json.") and tmp.suffix == ".json"
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["result.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------------------------------
# UTKFace names

MALFORMED = [
    "24_0_1_20170116220224657 .jpg.chip.jpg",
    "39_1_20170116174525125.jpg.chip.jpg",
    "55_0_0_20170116232725357jpg.chip.jpg",
    "61_1_20170109142408075.jpg.chip.jpg",
    "61_1_20170109150557335.jpg.chip.jpg",
]


@pytest.mark.parametrize("name", MALFORMED)
def test_utkface_malformed_names(name):
    assert utkface.parse_name(name) is None
    assert utkface.parse_name("UTKFace/" + name) is None


def test_utkface_good_names():
    assert utkface.parse_name("UTKFace/26_1_2_20170116174525125.jpg.chip.jpg") == {"age": 26, "gender": 1, "race": 2}
    assert utkface.parse_name("116_0_4_20170120134921760.jpg.chip.jpg") == {"age": 116, "gender": 0, "race": 4}
    assert utkface.parse_name("26_2_2_20170116174525125.jpg.chip.jpg") is None  # gender is 0 or 1
    assert utkface.parse_name("26_1_5_20170116174525125.jpg.chip.jpg") is None  # race is 0..4
    assert utkface.parse_name("26_1_2_20170116174525125.jpg") is None


def test_utkface_label_table():
    ages = [1, 2, 3, 9, 10, 29, 30, 69, 70, 116]
    good = [f"UTKFace/{age}_{i % 2}_{i % 5}_2017011617452{i}.jpg.chip.jpg" for i, age in enumerate(ages)]
    names = good[:5] + ["UTKFace/" + n for n in MALFORMED] + good[5:]

    meta, malformed = utkface.label_table(names)

    assert malformed == MALFORMED
    assert len(meta) == len(ages)
    assert meta["member"].tolist() == good
    assert meta["id"].tolist() == [n.removeprefix("UTKFace/").removesuffix(".jpg.chip.jpg") for n in good]
    assert meta["age"].tolist() == ages
    assert meta["age_bucket"].tolist() == ["0-2", "0-2", "3-9", "3-9", "10-19", "20-29", "30-39", "60-69", "70+", "70+"]
    assert meta["gender_name"].tolist() == ["male", "female"] * 5
    assert meta["race_name"].tolist()[:5] == ["White", "Black", "Asian", "Indian", "Others"]


# --------------------------------------------------------------------------------------------------
# CelebA attributes


def test_celeba_read_attributes_crlf(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(
        b"3\r\n"
        b"5_o_Clock_Shadow Male Young \r\n"
        b"000001.jpg -1  1  1\r\n"
        b"000002.jpg  1 -1 -1\r\n"
        b"000003.jpg -1 -1  1\r\n"
    )
    frame = celeba.read_attributes(path)
    assert frame.columns.tolist() == ["file", "5_o_Clock_Shadow", "Male", "Young"]
    assert frame["file"].tolist() == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert frame.drop(columns="file").values.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 1]]
    assert all(pd.api.types.is_integer_dtype(frame[c]) for c in ["5_o_Clock_Shadow", "Male", "Young"])


def test_celeba_read_attributes_wrong_width(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(b"2\r\nMale Young\r\n000001.jpg 1 1\r\n000002.jpg -1\r\n")
    with pytest.raises(ValueError) as err:
        celeba.read_attributes(path)
    assert f"{path}: 1 rows do not have 2 attribute values (first: 000002.jpg)" == str(err.value)
