"""UTKFace, aligned and cropped: age, gender and race parsed from the file names.

Names follow ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg``. The public archive has 5 malformed
names (a missing label, a stray space or dot); they are skipped and reported, never fatal.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pandas as pd

from facegen.download import RemoteFile
from facegen.data.archive import iter_tar
from facegen.data.prepared import seeded_subset
from facegen.data.preprocess import RawDataset
from facegen.data.split import stratified_split

# Official Google Drive copy. Its sha256 was read from the verified local mirror of the public archive.
FILES = [
    RemoteFile(
        "utkface/UTKFace.tar.gz",
        ("https://drive.usercontent.google.com/download?export=download&confirm=t&id=0BxYys69jI14kYVM3aVhKS1VhRUk",),
        "sha256:4f0bf740340152c90de1f468a5faa4e8e268b5f6f99dd33035125071cb3b8755",
    )
]
NAME_RE = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<datetime>\d+)\.jpg\.chip\.jpg$")
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
AGE_BINS = [0, 3, 10, 20, 30, 40, 50, 60, 70, 200]
AGE_LABELS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]
SUMMARY_COLUMNS = ["race_name", "gender_name", "age_bucket"]
FULL_SIZE = 23_702  # names of the public archive that parse (5 are malformed)


def parse_name(name: str) -> dict | None:
    """Labels from a UTKFace file name, or None if the name is malformed."""
    match = NAME_RE.match(PurePosixPath(name).name)
    if not match:
        return None
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if not 0 < age < 200:
        return None
    return {"age": age, "gender": gender, "race": race}


def label_table(names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    rows, malformed = [], []
    for name in names:
        labels = parse_name(name)
        if labels is None:
            malformed.append(PurePosixPath(name).name)
        else:
            rows.append({"id": PurePosixPath(name).name.removesuffix(".jpg.chip.jpg"), "member": name, **labels})
    meta = pd.DataFrame(rows, columns=["id", "member", "age", "gender", "race"])
    meta["gender_name"] = meta["gender"].map(GENDERS)
    meta["race_name"] = meta["race"].map(RACES)
    meta["age_bucket"] = pd.cut(meta["age"], AGE_BINS, right=False, labels=AGE_LABELS).astype(str)
    return meta, malformed


def load(manifest: dict, cfg: dict, seed: int) -> RawDataset:
    path = manifest["files"]["UTKFace.tar.gz"]["path"]
    names = sorted(m.name for m, _ in iter_tar(path, want=lambda m: False) if m.isfile() and m.name.lower().endswith(".jpg"))
    meta, malformed = label_table(names)
    if meta["id"].duplicated().any():
        meta = meta.drop_duplicates("id").reset_index(drop=True)
    if cfg.get("limit") and cfg["limit"] < len(meta):
        meta = meta.iloc[seeded_subset(len(meta), cfg["limit"], seed)].reset_index(drop=True)
    meta.insert(1, "split", stratified_split(meta["gender"].astype(str) + "_" + meta["race"].astype(str), cfg["split"], seed))
    wanted = dict(zip(meta["member"], meta["id"]))

    def images():
        for member, data in iter_tar(path, want=lambda m: m.name in wanted):
            if data is not None:
                yield wanted[member.name], data

    notes = {
        "n_malformed_names": len(malformed),
        "malformed_names": malformed,
        "split_method": f"seeded split stratified by gender x race, ratios {cfg['split']}",
    }
    return RawDataset(meta.drop(columns="member"), images, notes)
