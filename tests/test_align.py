"""Face alignment for photo folders: the template, the warp's geometry (known answers with a stub
detector), the real MTCNN on drawn faces, counted skips, and the config."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from facegen import config as cfgmod
from facegen.data import align
from facegen.data.preprocess import RawDataset, prepare

CELEBA_CROP = cfgmod.kind_default("celeba", "crop")
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def similar(points: np.ndarray, scale: float, degrees: float, shift) -> np.ndarray:
    t = np.deg2rad(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return points @ rot.T * scale + np.asarray(shift)


def dotted(points: np.ndarray, size=(320, 300)) -> Image.Image:
    img = Image.new("RGB", size, (40, 40, 40))
    d = ImageDraw.Draw(img)
    for (x, y), c in zip(points, COLOURS):
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=c)
    return img


def centroids(img: Image.Image) -> np.ndarray:
    a = np.asarray(img).astype(int)
    out = []
    for c in COLOURS:
        ys, xs = np.nonzero((np.abs(a - c).sum(-1) < 120))
        out.append([xs.mean(), ys.mean()])
    return np.array(out)


def stub(points, boxes=None):
    boxes = np.array(boxes if boxes is not None else [[0, 0, 200, 200]], float)

    def detect(img):
        return boxes, np.ones(len(boxes)), np.repeat(np.asarray(points, float)[None], len(boxes), 0)

    return detect


def test_template_is_celebas_framing_with_a_level_eye_line_and_widens_by_the_margin():
    t = align.template(CELEBA_CROP)
    assert abs(t[0, 1] - t[1, 1]) < 0.005 and t[0, 0] < 0.5 < t[1, 0]  # eyes level, either side of the centre
    assert np.all((t > 0.2) & (t < 0.9))  # the face fills the study's tight CelebA crop
    wide = align.template(CELEBA_CROP, margin=0.5)
    assert np.allclose(wide - 0.5, (t - 0.5) / 2)  # half the size about the centre: a quarter of the side added each way


@pytest.mark.parametrize("scale, degrees, shift", [(0.5, 20.0, (60, 90)), (1.2, -35.0, (20, 10)), (0.8, 0.0, (100, 50))])
def test_warp_puts_the_landmarks_on_the_template(scale, degrees, shift):
    """A photo whose landmarks are the template moved by a known similarity comes out with them on the template."""
    target = align.template(CELEBA_CROP) * align.OUTPUT_SIDE
    points = similar(target, scale, degrees, shift)
    aligner = align.Aligner(stub(points), target, min_face=10, keep_all=False)
    (face,), reason = aligner(dotted(points))
    assert reason is None and face.size == (align.OUTPUT_SIDE, align.OUTPUT_SIDE)
    assert np.abs(centroids(face) - target).max() < 2.0  # pixels, of 256


def test_faces_under_min_face_and_photos_without_one_are_skipped_with_a_reason():
    target = align.template(CELEBA_CROP) * align.OUTPUT_SIDE
    small = align.Aligner(stub(target, boxes=[[0, 0, 30, 50]]), target, min_face=40, keep_all=False)
    assert small(Image.new("RGB", (64, 64))) == ([], "face smaller than min_face (30 < 40 px)")
    none = align.Aligner(lambda img: (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))), target, 40, False)
    assert none(Image.new("RGB", (64, 64))) == ([], "no face found")


def raw(n: int) -> RawDataset:
    meta = pd.DataFrame({"id": [f"p{i}" for i in range(n)], "split": ["train", "val", "test", "train"][:n], "label": range(n)})
    return RawDataset(meta, lambda: ((f"p{i}", np.full((90, 90, 3), 10 * i, np.uint8)) for i in range(n)))


def test_prepare_counts_the_photos_without_a_face_and_keeps_every_face_with_its_photos_split(tmp_path):
    target = align.template(CELEBA_CROP) * align.OUTPUT_SIDE
    points = similar(target, 0.3, 0.0, (5, 5))

    def detect(img):  # photo 0: no face; 1: one too small; 2: two faces; 3: one
        k = int(np.asarray(img)[0, 0, 0]) // 10
        boxes = {0: [], 1: [[0, 0, 20, 20]], 2: [[0, 0, 60, 60], [0, 0, 80, 80]], 3: [[0, 0, 60, 60]]}[k]
        return np.array(boxes, float).reshape(-1, 4), np.ones(len(boxes)), np.repeat(points[None], len(boxes), 0)

    aligner = align.Aligner(detect, target, min_face=40, keep_all=True)
    summary = prepare(raw(4), {"size": 1.0, "center_y": 0.5}, [32], tmp_path, "photos", align=aligner)
    a = summary["align"]
    assert (a["n_photos_read"], a["n_photos_with_face"], a["n_faces_stored"]) == (4, 2, 3)
    assert (a["n_skipped_no_face"], a["n_skipped_small_face"]) == (1, 1)
    assert a["skipped"] == {"p0": "no face found", "p1": "face smaller than min_face (20 < 40 px)"}
    meta = pd.read_parquet(tmp_path / "metadata.parquet")
    assert meta["id"].tolist() == ["p2", "p2#face2", "p3"] and meta["split"].tolist() == ["test", "test", "train"]
    assert meta["label"].tolist() == [2, 2, 3] and meta["face"].tolist() == [1, 2, 1]
    assert np.load(tmp_path / "images_32.npy").shape == (3, 32, 32, 3)
    assert (tmp_path / "alignment.png").stat().st_size > 0
    assert json.loads((tmp_path / "prepare.json").read_text())["align"]["n_faces_stored"] == 3


def test_mtcnn_weights_are_checked_by_sha256(tmp_path):
    for name in align.WEIGHTS_SHA256:
        (tmp_path / name).write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="pnet.pt have sha256 .* expected a2a71925"):
        align.check_weights(tmp_path)


def test_align_config_defaults_and_bad_values():
    base = {"data": {"datasets": {"mine": {"kind": "folder", "path": "/tmp"}}}}
    assert cfgmod.load(base)["data"]["datasets"]["mine"]["align"] is None
    on = cfgmod.load(cfgmod.deep_merge(base, {"data": {"datasets": {"mine": {"align": {}}}}}))
    assert on["data"]["datasets"]["mine"]["align"] == {"method": "mtcnn", "min_face": 40, "margin": 0.0, "faces": "largest",
                                                       "on_no_face": "skip"}
    for bad in ({"method": "haar"}, {"faces": "some"}, {"min_face": 2}):
        with pytest.raises(cfgmod.ConfigError):
            cfgmod.load(cfgmod.deep_merge(base, {"data": {"datasets": {"mine": {"align": bad}}}}))


mtcnn = pytest.importorskip("facenet_pytorch", reason="face alignment's detector (scripts/install.sh installs it)")


def drawn_face(degrees: float) -> Image.Image:
    from facegen.data.synthetic import draw_face

    face = Image.fromarray(draw_face(np.random.default_rng(3), 128, 0, 4, False, False, 0, 0.0))
    canvas = Image.new("RGB", (300, 260), (128, 128, 128))
    canvas.paste(face.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128)), (90, 60))
    return canvas


@pytest.mark.parametrize("degrees", [0.0, 15.0])
def test_mtcnn_aligns_a_drawn_face_level_and_onto_the_template(degrees):
    """Known answer with the real detector: a face drawn rotated and off-centre on a larger canvas comes out
    with its re-detected eyes level and on the template's eyes (with a margin: MTCNN does not find a drawn
    face again in CelebA's tight frame, which cuts the chin)."""
    aligner = align.Aligner.from_config({"method": "mtcnn", "min_face": 40, "margin": 0.3, "faces": "largest"}, CELEBA_CROP)
    (face,), reason = aligner(drawn_face(degrees))
    assert reason is None
    boxes, _, landmarks = aligner.detect(face)
    assert len(boxes)
    eyes = landmarks[np.argmax(boxes[:, 2] - boxes[:, 0]), :2]
    side = align.OUTPUT_SIDE
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.03 * side
    assert np.abs(eyes - aligner.target[:2]).max() < 0.06 * side


def test_mtcnn_finds_no_face_in_a_blank_photo():
    aligner = align.Aligner.from_config({"method": "mtcnn", "min_face": 40, "margin": 0.0, "faces": "largest"}, CELEBA_CROP)
    assert aligner(Image.new("RGB", (200, 200), (128, 128, 128))) == ([], "no face found")


def test_a_photo_folder_is_aligned_counted_and_reported(tmp_path):
    """End to end on the real detector: drawn faces are aligned, a blank photo and a corrupt file are
    counted apart, and the dataset section shows the counts and the figure."""
    from facegen import report
    from facegen.data import fetch, prepare_dataset
    from facegen.data.summary import summarize
    from facegen.report.sections import datasets as section

    photos = tmp_path / "photos"
    photos.mkdir()
    for k, degrees in enumerate((0.0, 10.0, -10.0)):
        drawn_face(degrees).save(photos / f"face{k}.png")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(photos / "blank.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = cfgmod.load({"results_dir": str(tmp_path / "results"), "data": {"resolutions": [32], "datasets": {
        "mine": {"kind": "folder", "path": str(photos), "split": [1, 1, 1], "align": {"margin": 0.3}}}}})
    results = tmp_path / "results"
    fetch(cfg, "mine", results / "manifests" / "mine.json")
    prep = prepare_dataset(cfg, "mine", results / "manifests" / "mine.json", results / "data" / "mine")
    assert prep["n_skipped_unreadable"] == 1 and "broken.jpg" in prep["skipped_unreadable"]
    a = prep["align"]
    assert (a["n_photos_read"], a["n_skipped_no_face"]) == (4, 1) and a["skipped"] == {"blank.png": "no face found"}
    assert a["n_faces_stored"] == prep["n_images"] == 3 and a["img_per_s"] > 0
    summarize(cfg, "mine", results / "data" / "mine", results / "summary" / "mine.csv", results / "summary" / "mine.png")
    assert str(results / "data" / "mine" / "alignment.png") in [str(p) for p in section.inputs(cfg)]
    html = report._environment("html").get_template("datasets.html.j2").render(section=section.context(cfg, results))
    assert "3 of 4 photos gave 3 faces" in html and "1 without a face" in html
