"""Procedural cartoon faces drawn from known attributes, for tests and a no-download demo.

Each face has a skin-tone group, a smile, glasses and a hair colour. The group frequencies
(``group_weights``) and a per-group pixel-noise level (``group_noise``) are configurable, so a bias
analysis run on this set has a known answer: how imbalanced the groups are and which group is harder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from facegen.data.preprocess import RawDataset
from facegen.data.split import stratified_split

# Light to dark; groups are spread evenly over this ramp whatever their number.
_SKIN_RAMP = np.array([[255, 224, 196], [234, 192, 150], [198, 145, 100], [141, 93, 60], [92, 58, 36]], float)
HAIR_COLOURS = np.array([[30, 25, 20], [110, 70, 35], [220, 190, 110], [150, 150, 150]], np.uint8)
HAIR_NAMES = ["black", "brown", "blond", "gray"]


def skin_tone(group: int, n_groups: int) -> np.ndarray:
    pos = group / max(n_groups - 1, 1) * (len(_SKIN_RAMP) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(_SKIN_RAMP) - 1)
    return (_SKIN_RAMP[lo] + (pos - lo) * (_SKIN_RAMP[hi] - _SKIN_RAMP[lo])).round().astype(np.uint8)


def draw_face(rng: np.random.Generator, size: int, group: int, n_groups: int, smile: bool, glasses: bool, hair: int, noise: float) -> np.ndarray:
    s = size / 128.0
    bg = tuple(int(v) for v in rng.integers(60, 200, 3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    cx = size / 2 + rng.normal(0, 2) * s
    cy = size / 2 + 6 * s + rng.normal(0, 2) * s
    rx, ry = (34 + rng.normal(0, 2)) * s, (44 + rng.normal(0, 2)) * s
    skin = tuple(int(v) for v in skin_tone(group, n_groups))
    hair_rgb = tuple(int(v) for v in HAIR_COLOURS[hair])
    d.ellipse([cx - rx - 6 * s, cy - ry - 10 * s, cx + rx + 6 * s, cy + ry * 0.3], fill=hair_rgb)  # hair behind the face
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
    d.chord([cx - rx, cy - ry - 4 * s, cx + rx, cy - ry * 0.25], 180, 360, fill=hair_rgb)  # fringe
    ey = cy - 8 * s
    for ex in (cx - 14 * s, cx + 14 * s):
        d.ellipse([ex - 5 * s, ey - 3.5 * s, ex + 5 * s, ey + 3.5 * s], fill=(245, 245, 245))
        d.ellipse([ex - 2.5 * s, ey - 2.5 * s, ex + 2.5 * s, ey + 2.5 * s], fill=(40, 30, 30))
        if glasses:
            d.ellipse([ex - 10 * s, ey - 8 * s, ex + 10 * s, ey + 8 * s], outline=(20, 20, 20), width=max(1, round(2 * s)))
    if glasses:
        d.line([cx - 4 * s, ey, cx + 4 * s, ey], fill=(20, 20, 20), width=max(1, round(2 * s)))
    d.line([cx, ey + 4 * s, cx - 3 * s, cy + 12 * s, cx + 2 * s, cy + 12 * s], fill=tuple(int(v * 0.8) for v in skin), width=max(1, round(s)))
    my = cy + 24 * s
    lips = (150, 50, 50)
    if smile:
        d.arc([cx - 14 * s, my - 10 * s, cx + 14 * s, my + 6 * s], 20, 160, fill=lips, width=max(1, round(3 * s)))
    else:
        d.line([cx - 10 * s, my, cx + 10 * s, my], fill=lips, width=max(1, round(3 * s)))
    arr = np.asarray(img, dtype=np.float32)
    if noise > 0:
        arr = arr + rng.normal(0, noise * 255, arr.shape)
    return np.clip(arr, 0, 255).round().astype(np.uint8)


SUMMARY_COLUMNS = ["group_name", "smile", "glasses", "hair_name"]


def attributes(cfg: dict, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 0])
    n = cfg["n"]
    weights = np.asarray(cfg["group_weights"], float)
    frame = pd.DataFrame({
        "id": [f"synth_{i:06d}" for i in range(n)],
        "group": rng.choice(len(weights), size=n, p=weights / weights.sum()),
        "smile": (rng.random(n) < cfg["p_smile"]).astype(np.int8),
        "glasses": (rng.random(n) < cfg["p_glasses"]).astype(np.int8),
        "hair": rng.integers(0, len(HAIR_COLOURS), n),
    })
    frame["hair_name"] = np.asarray(HAIR_NAMES)[frame["hair"]]
    frame["group_name"] = "tone_" + frame["group"].astype(str)
    frame["noise"] = np.asarray(cfg["group_noise"], float)[frame["group"]]
    return frame


def fetch(cfg: dict) -> dict:
    return {}


def load(manifest: dict, cfg: dict, seed: int) -> RawDataset:
    meta = attributes(cfg, seed)
    meta.insert(1, "split", stratified_split(meta["group"], cfg["split"], seed))
    n_groups = len(cfg["group_weights"])

    def images():
        for i, row in enumerate(meta.itertuples()):
            rng = np.random.default_rng([seed, 1, i])
            yield row.id, draw_face(rng, cfg["size"], row.group, n_groups, bool(row.smile), bool(row.glasses), row.hair, row.noise)

    return RawDataset(meta, images, {"split_method": f"seeded split stratified by group, ratios {cfg['split']}", "generator": "facegen.data.synthetic"})
