"""Crop, Lanczos-resize and store a dataset as uint8 arrays plus one metadata table.

Outputs in ``results/data/<dataset>/``: ``images_<res>.npy`` (N, res, res, 3) for each resolution,
``metadata.parquet`` (one row per stored image, in array order), and ``prepare.json`` with the counts
of what was skipped and why.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from PIL import Image
from facegen.progress import progress

from facegen.data.prepared import METADATA, PREPARE_RECORD, image_file
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


ALIGN_EXAMPLES = 8  # photo / aligned pairs in alignment.png
FRAMED = {"size": 1.0, "center_y": 0.5}  # an aligned face is already framed: no further crop


def prepare(raw: RawDataset, crop: dict, resolutions: list[int], out_dir: str | Path, name: str, gray48: bool = False,
            align=None) -> dict:
    """Decode every image once, write all resolutions, and return the summary written to prepare.json.

    ``align`` (facegen.data.align.Aligner) replaces the crop: each photo gives its aligned faces, or a
    reason it gave none, which is counted. A second face of a photo gets the id ``<id>#face2`` and the
    photo's labels and split."""
    out_dir = Path(out_dir)
    wanted = set(raw.meta["id"])
    arrays: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    no_face: dict[str, str] = {}
    faces_of: dict[str, list[str]] = {}
    examples: list[tuple[np.ndarray, np.ndarray]] = []
    t0 = time.perf_counter()
    for image_id, item in progress(raw.images(), total=len(wanted), desc=f"prepare {name}", unit="img"):
        if image_id not in wanted or image_id in arrays or image_id in no_face:
            continue
        try:
            img = to_pil(item)
            if align is None:
                arrays[image_id] = process_image(img, crop, resolutions, gray48)
                continue
            faces, reason = align(img)
        except Exception as exc:  # PIL raises several types for corrupt data; each is counted, none is fatal
            skipped[image_id] = f"{type(exc).__name__}: {exc}"
            log.warning("skipping unreadable image %s: %s", image_id, exc)
            continue
        if reason:
            no_face[image_id] = reason
            continue
        keys = [image_id] + [f"{image_id}#face{k + 1}" for k in range(1, len(faces))]
        faces_of[image_id] = keys
        for key, face in zip(keys, faces):
            arrays[key] = process_image(face, FRAMED, resolutions, gray48)
        if len(examples) < ALIGN_EXAMPLES:
            examples.append((process_image(img, crop, [64])[64], arrays[image_id][64] if 64 in resolutions else
                             process_image(faces[0], FRAMED, [64])[64]))
    seconds = time.perf_counter() - t0
    missing = sorted(wanted - set(arrays) - set(skipped) - set(no_face))
    for image_id in missing:
        skipped[image_id] = "listed in the labels but absent from the archive"
    meta = raw.meta[raw.meta["id"].isin(arrays.keys())].reset_index(drop=True)
    if align is not None and faces_of:
        rows = meta.loc[meta.index.repeat([len(faces_of[i]) for i in meta["id"]])].reset_index(drop=True)
        rows["face"] = np.concatenate([np.arange(1, len(faces_of[i]) + 1) for i in meta["id"]])
        rows["id"] = [faces_of[i][f - 1] for i, f in zip(rows["id"], rows["face"])]
        meta = rows
    if meta.empty:
        reasons = f"{len(skipped)} skipped" + (f", {len(no_face)} photos without a face kept" if align is not None else "")
        raise RuntimeError(f"dataset '{name}': no image could be read ({reasons}); see the log for reasons")
    for key in list(resolutions) + (["gray48"] if gray48 else []):
        write_npy(out_dir / image_file(key), np.stack([arrays[i][key] for i in meta["id"]]))
    write_parquet(out_dir / METADATA, meta)
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
    if align is not None:
        counts: dict[str, int] = {}
        for reason in no_face.values():
            kind = "no_face" if reason == "no face found" else "small_face"
            counts[kind] = counts.get(kind, 0) + 1
        n_photos = len(faces_of) + len(no_face)
        summary["align"] = {"n_photos_read": n_photos, "n_photos_with_face": len(faces_of), "n_faces_stored": int(len(meta)),
                            "n_skipped_no_face": counts.get("no_face", 0), "n_skipped_small_face": counts.get("small_face", 0),
                            "skipped": dict(sorted(no_face.items())[:50]), "img_per_s": n_photos / seconds if seconds > 0 else None,
                            "template": np.round(align.target / align.side, 4).tolist(), "min_face": align.min_face,
                            "all_faces": align.keep_all}
        _alignment_figure(examples, out_dir / "alignment.png")
    write_json(out_dir / PREPARE_RECORD, summary)
    return summary


def _alignment_figure(examples: list[tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Each photo (the crop it would have had without alignment) above its aligned face."""
    from facegen.io import save_figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(1, len(examples))
    fig, axes = plt.subplots(2, cols, figsize=(1.4 * cols, 3.0), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (photo, aligned) in enumerate(examples):
        axes[0, k].imshow(photo)
        axes[1, k].imshow(aligned)
    axes[0, 0].set_title("photo (centre crop)", fontsize=7, loc="left")
    axes[1, 0].set_title("aligned", fontsize=7, loc="left")
    save_figure(path, fig)
