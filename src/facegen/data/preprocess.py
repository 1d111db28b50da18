"""Crop, Lanczos-resize and store a dataset as uint8 arrays plus one metadata table.

Outputs in ``results/data/<dataset>/``: ``images_<res>.npy`` (N, res, res, 3) for each resolution,
``metadata.parquet`` (one row per stored image, in array order), and ``prepare.json`` with the counts
of what was skipped and why.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from PIL import Image
from facegen.progress import progress

from facegen.data.split import SPLITS
from facegen.io import write_json, write_npy, write_parquet

log = logging.getLogger(__name__)

ImageSource = Callable[[], Iterator[tuple[str, "bytes | np.ndarray"]]]


@dataclass
class RawDataset:
    """What a dataset module hands to preprocessing.

    ``meta`` has one row per candidate image with an ``id`` and ``split`` column plus labels;
    ``images`` yields (id, encoded bytes or HxWx3 uint8 array) for those ids, in any order.
    """

    meta: pd.DataFrame
    images: ImageSource
    notes: dict = field(default_factory=dict)


def crop_box(width: int, height: int, size: float, center_y: float) -> tuple[int, int, int, int]:
    """Square crop of side ``size`` x shorter side, horizontally centred, vertically at ``center_y``."""
    side = max(1, int(round(size * min(width, height))))
    left = (width - side) // 2
    top = int(round(center_y * height - side / 2))
    top = min(max(top, 0), height - side)
    return left, top, left + side, top + side


def to_pil(item: "bytes | np.ndarray") -> Image.Image:
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    img = Image.open(io.BytesIO(item))
    img.load()  # decode now so a corrupt file fails here, inside the skip handler
    return img


def process_image(img: Image.Image, crop: dict, resolutions: list[int], gray48: bool = False) -> dict:
    img = img.convert("RGB").crop(crop_box(*img.size, crop["size"], crop["center_y"]))
    out = {res: np.asarray(img.resize((res, res), Image.LANCZOS), dtype=np.uint8) for res in resolutions}
    if gray48:
        out["gray48"] = np.asarray(img.convert("L").resize((48, 48), Image.LANCZOS), dtype=np.uint8)
    return out


def prepare(raw: RawDataset, crop: dict, resolutions: list[int], out_dir: str | Path, name: str, gray48: bool = False) -> dict:
    """Decode every image once, write all resolutions, and return the summary written to prepare.json."""
    out_dir = Path(out_dir)
    wanted = set(raw.meta["id"])
    arrays: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for image_id, item in progress(raw.images(), total=len(wanted), desc=f"prepare {name}", unit="img"):
        if image_id not in wanted or image_id in arrays:
            continue
        try:
            arrays[image_id] = process_image(to_pil(item), crop, resolutions, gray48)
        except Exception as exc:  # PIL raises several types for corrupt data; each is counted, none is fatal
            skipped[image_id] = f"{type(exc).__name__}: {exc}"
            log.warning("skipping unreadable image %s: %s", image_id, exc)
    missing = sorted(wanted - set(arrays) - set(skipped))
    for image_id in missing:
        skipped[image_id] = "listed in the labels but absent from the archive"
    meta = raw.meta[raw.meta["id"].isin(arrays.keys())].reset_index(drop=True)
    if meta.empty:
        raise RuntimeError(f"dataset '{name}': no image could be read ({len(skipped)} skipped); see the log for reasons")
    for key in list(resolutions) + (["gray48"] if gray48 else []):
        write_npy(out_dir / f"images_{key}.npy", np.stack([arrays[i][key] for i in meta["id"]]))
    write_parquet(out_dir / "metadata.parquet", meta)
    summary = {
        "dataset": name,
        "n_images": int(len(meta)),
        "resolutions": list(resolutions),
        "gray48": gray48,
        "crop": crop,
        "split_counts": {k: int((meta["split"] == k).sum()) for k in SPLITS if (meta["split"] == k).any()},
        "n_skipped_unreadable": len(skipped),
        "skipped_unreadable": dict(sorted(skipped.items())[:50]),
        **raw.notes,
    }
    write_json(out_dir / "prepare.json", summary)
    return summary
