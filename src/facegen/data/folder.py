"""A generic folder of the user's own face images, with an optional labels CSV.

The CSV needs a ``filename`` column; other columns become metadata. A ``split`` column, if present,
is used as given; otherwise the split is seeded and random.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from facegen.data.preprocess import RawDataset
from facegen.data.split import SPLITS, random_split

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist; fix data.datasets.<name>.path")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not images:
        raise FileNotFoundError(f"image folder '{root}' holds no images ({', '.join(sorted(EXTENSIONS))}); fix data.datasets.<name>.path")
    return images


def fetch(cfg: dict) -> dict:
    root = Path(cfg["path"]).expanduser().resolve()
    images = list_images(root)
    # One digest over every file's name and content, so an edited image changes the provenance record.
    digest = hashlib.sha256()
    for p in images:
        digest.update(str(p.relative_to(root)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    listing = digest.hexdigest()
    files = {"folder": {"path": str(root), "sha256": listing, "source": "local folder", "n_files": len(images)}}
    if cfg.get("labels"):
        labels = Path(cfg["labels"]).expanduser().resolve()
        if not labels.exists():
            raise FileNotFoundError(f"labels CSV '{labels}' does not exist; fix data.datasets.<name>.labels or set it to null")
        files["labels"] = {"path": str(labels), "sha256": hashlib.sha256(labels.read_bytes()).hexdigest(), "source": "local file"}
    return files


def load(manifest: dict, cfg: dict, seed: int) -> RawDataset:
    root = Path(manifest["files"]["folder"]["path"])
    paths = {str(p.relative_to(root)): p for p in list_images(root)}
    meta = pd.DataFrame({"file": sorted(paths)})
    notes = {}
    if "labels" in manifest["files"]:
        labels = pd.read_csv(manifest["files"]["labels"]["path"])
        if "filename" not in labels.columns:
            raise ValueError(f"labels CSV '{manifest['files']['labels']['path']}' needs a 'filename' column; it has {list(labels.columns)}")
        labels = labels.rename(columns={"filename": "file"})
        notes["n_labels_without_image"] = int((~labels["file"].isin(meta["file"])).sum())
        meta = meta.merge(labels, on="file", how="left")
    meta.insert(0, "id", meta["file"])  # the relative path is unique; a sanitised name might not be
    if cfg.get("limit") and cfg["limit"] < len(meta):
        meta = meta.sample(n=cfg["limit"], random_state=seed).sort_values("file").reset_index(drop=True)
    if "split" in meta.columns and meta["split"].isin(SPLITS).all():
        notes["split_method"] = "from the labels CSV"
    else:
        meta["split"] = random_split(len(meta), cfg["split"], seed)
        notes["split_method"] = f"seeded random split, ratios {cfg['split']}"
    ids = dict(zip(meta["file"], meta["id"]))

    def images():
        for file, image_id in ids.items():
            yield image_id, paths[file].read_bytes()

    return RawDataset(meta, images, notes)
