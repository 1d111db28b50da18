"""Face detection and alignment for a folder of the user's own photos (``align:`` in a folder dataset).

Each photo goes through MTCNN (Zhang et al. 2016), whose weights ship inside PyPI's facenet-pytorch
2.6.0 wheel and are checked by sha256 before use: face boxes, their probability and five landmarks
(eye centres, nose tip, mouth corners). A face is kept when its box's shorter side is at least
``min_face`` pixels; of several, the largest, or every one (``faces: all``). Each kept face is warped
by the similarity transform (rotation, uniform scale, shift; least squares, Umeyama 1991) that puts its
landmarks onto TEMPLATE, the mean MTCNN landmarks of CelebA's aligned images within the study's own
CelebA crop, so that a model trained on CelebA sees a user's faces framed the same way: eye line
level, the same inter-ocular distance at a given resolution. ``margin`` widens the frame by that
fraction on every side. Photos with no face, and faces under ``min_face``, are skipped and counted with
their reason in prepare.json.

Detection runs one photo at a time (MTCNN batches only images of one size, and a folder's photos
differ), with the prepare job's progress bar.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = "facenet-pytorch==2.6.0"
INSTALL = (f"face alignment needs {PACKAGE}, whose wheel ships the MTCNN weights; `bash scripts/install.sh` installs it "
           "(pip install --no-deps, as its torch pin predates ours), or remove align: from the dataset")
# The three MTCNN stages as they ship in the facenet-pytorch 2.6.0 wheel (sha256 of the wheel itself:
# ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca, checked by scripts/install.sh).
WEIGHTS_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
# Mean MTCNN landmarks of the mirror's aligned CelebA images, as fractions of the image (width, height):
# left eye, right eye, nose, left and right mouth corner, from the first 300 images (one missed), with a
# per-point sd of 0.7-3.7% of the side. `facegen bench align` prints them again ("mean landmarks").
CELEBA_LANDMARKS = np.array([[0.3955, 0.5168], [0.6155, 0.5164], [0.5016, 0.6279], [0.4070, 0.7088], [0.6033, 0.7079]])
CELEBA_ASPECT = 178 / 218  # CelebA's aligned images are 178 x 218 (the mirror's are half that)
OUTPUT_SIDE = 256  # the aligned square before the study's resize; larger than any prepared resolution we use


def template(crop: dict, margin: float = 0.0) -> np.ndarray:
    """TEMPLATE: the CelebA landmarks in fractions of the study's square CelebA crop (``crop``: the
    celeba kind's size and center_y), widened by ``margin`` on every side."""
    w, h = CELEBA_ASPECT, 1.0
    side = crop["size"] * min(w, h)
    left, top = (w - side) / 2, crop["center_y"] * h - side / 2
    pts = (CELEBA_LANDMARKS * [w, h] - [left, top]) / side
    return 0.5 + (pts - 0.5) / (1 + 2 * margin)


def check_weights(data_dir: Path) -> None:
    for name, digest in WEIGHTS_SHA256.items():
        path = data_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"MTCNN weights {path} are missing; reinstall {PACKAGE}")
        found = hashlib.sha256(path.read_bytes()).hexdigest()
        if found != digest:
            raise ValueError(f"MTCNN weights {path} have sha256 {found}, expected {digest}; reinstall {PACKAGE}")


def mtcnn_detector():
    """A detector: PIL image -> (boxes (K, 4), probs (K,), landmarks (K, 5, 2)), all float, K >= 0."""
    try:
        import facenet_pytorch
        from facenet_pytorch import MTCNN
    except ImportError as exc:
        raise RuntimeError(INSTALL) from exc
    check_weights(Path(facenet_pytorch.__file__).parent / "data")
    net = MTCNN(keep_all=True, device="cpu")

    def detect(img: Image.Image):
        boxes, probs, landmarks = net.detect(img, landmarks=True)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        return np.asarray(boxes, float), np.asarray(probs, float), np.asarray(landmarks, float)

    return detect


DETECTORS = {"mtcnn": mtcnn_detector}


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 similarity transform taking the points ``src`` to ``dst`` in least squares."""
    from skimage.transform import SimilarityTransform

    tform = SimilarityTransform.from_estimate(src, dst)
    if not tform:
        raise ValueError("degenerate landmarks: no similarity transform fits them")
    return tform.params


def warp(img: Image.Image, matrix: np.ndarray, side: int) -> Image.Image:
    """``img`` resampled onto a side x side square by ``matrix`` (image -> output pixel coordinates)."""
    inv = np.linalg.inv(matrix)
    return img.transform((side, side), Image.Transform.AFFINE, data=tuple(inv[:2].ravel()),
                         resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


@dataclass
class Aligner:
    """Aligns one photo: ``__call__(img) -> (faces, reason)``; ``reason`` names why none was kept."""

    detect: object
    target: np.ndarray  # TEMPLATE in output pixels
    min_face: int
    keep_all: bool
    side: int = OUTPUT_SIDE

    @classmethod
    def from_config(cls, align: dict, crop: dict, detect=None) -> "Aligner":
        if align["method"] not in DETECTORS:
            raise ValueError(f"unknown face detector '{align['method']}'; known: {', '.join(DETECTORS)}")
        return cls(detect or DETECTORS[align["method"]](), template(crop, align["margin"]) * OUTPUT_SIDE,
                   align["min_face"], align["faces"] == "all")

    def __call__(self, img: Image.Image) -> tuple[list[Image.Image], str | None]:
        img = img.convert("RGB")
        boxes, _, landmarks = self.detect(img)
        if len(boxes) == 0:
            return [], "no face found"
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        big = np.flatnonzero(sides >= self.min_face)
        if len(big) == 0:
            return [], f"face smaller than min_face ({sides.max():.0f} < {self.min_face} px)"
        order = big[np.argsort(-sides[big], kind="stable")]
        keep = order if self.keep_all else order[:1]
        return [warp(img, similarity(landmarks[k], self.target), self.side) for k in keep], None
