"""CelebA, aligned and cropped: 40 binary attributes and identities.

With ``list_eval_partition.txt`` the official split is used; without it (the local mirror holds only
train-partition images) the split is seeded and identity-disjoint, so no person is in two splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from facegen.download import RemoteFile
from facegen.data.archive import open_zip
from facegen.data.prepared import seeded_subset
from facegen.data.preprocess import RawDataset
from facegen.data.split import SPLITS, group_split

_GDRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="
# md5 sums are the official ones (as listed by torchvision.datasets.CelebA).
FILES = [
    RemoteFile("celeba/img_align_celeba.zip", (_GDRIVE + "0B7EVK8r0v71pZjFTYXZWM3FlRnM",), "md5:00d2c5bc6d35e252742224ab0c1e8fcb"),
    RemoteFile("celeba/list_attr_celeba.txt", (_GDRIVE + "0B7EVK8r0v71pblRyaVFSWGxPY0U",), "md5:75e246fa4810816ffd6ee81facbd244c"),
    RemoteFile("celeba/identity_CelebA.txt", (_GDRIVE + "1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS",), "md5:32bd1bd63d3c78cd57e08160ec5ed1e2"),
    RemoteFile("celeba/list_eval_partition.txt", (_GDRIVE + "0B7EVK8r0v71pY0NSMzRuSXJEVkk",), "md5:d32c9cbf5e040fd4025c592c306e6668", required=False),
]
IMAGE_DIR = "img_align_celeba/"
FULL_SIZE = 202_599  # images in the official release (a mirror may hold fewer)
SUMMARY_COLUMNS = ["Male", "Young", "Smiling", "Eyeglasses", "Pale_Skin"]


def read_attributes(path) -> pd.DataFrame:
    """Parse list_attr_celeba.txt (count line, names line, then 'file v1 ... v40'; CRLF tolerated)."""
    lines = open(path, newline=None).read().splitlines()
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    bad = [r[0] for r in rows if len(r) != len(names) + 1]
    if bad:
        raise ValueError(f"{path}: {len(bad)} rows do not have {len(names)} attribute values (first: {bad[0]})")
    values = (np.asarray([r[1:] for r in rows], dtype=np.int8) > 0).astype(np.int8)
    frame = pd.DataFrame(values, columns=names)
    frame.insert(0, "file", [r[0] for r in rows])
    return frame


def read_two_columns(path, column: str) -> pd.Series:
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=["file", column], dtype={"file": str, column: np.int64})
    return frame.set_index("file")[column]


def load(manifest: dict, cfg: dict, seed: int) -> RawDataset:
    files = manifest["files"]
    meta = read_attributes(files["list_attr_celeba.txt"]["path"])
    identity = read_two_columns(files["identity_CelebA.txt"]["path"], "identity")
    meta.insert(1, "identity", meta["file"].map(identity))
    if meta["identity"].isna().any():
        missing = meta.loc[meta["identity"].isna(), "file"].iloc[0]
        raise ValueError(f"identity_CelebA.txt has no identity for {missing}; the attribute and identity files do not match")
    meta["identity"] = meta["identity"].astype(np.int64)
    meta.insert(0, "id", meta["file"].str.replace(".jpg", "", regex=False))
    if cfg.get("limit") and cfg["limit"] < len(meta):
        meta = meta.iloc[seeded_subset(len(meta), cfg["limit"], seed)].reset_index(drop=True)
    if "list_eval_partition.txt" in files:
        part = read_two_columns(files["list_eval_partition.txt"]["path"], "partition")
        meta.insert(2, "split", meta["file"].map(part).map(dict(enumerate(SPLITS))))
        split_method = "official list_eval_partition.txt"
    else:
        meta.insert(2, "split", group_split(meta["identity"], cfg["split"], seed))
        split_method = f"seeded identity-disjoint split, ratios {cfg['split']}"
    zip_path = files["img_align_celeba.zip"]["path"]

    def images():
        with open_zip(zip_path) as zf:
            names = set(zf.namelist())
            for file in meta["file"]:
                member = IMAGE_DIR + file
                if member in names:
                    yield file.replace(".jpg", ""), zf.read(member)

    return RawDataset(meta, images, {"split_method": split_method, "n_identities": int(meta["identity"].nunique())})
