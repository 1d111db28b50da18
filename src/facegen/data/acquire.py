"""Find a dataset's official files: first in a local mirror, then at their public URLs (facegen.download)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from facegen import download as _download
from facegen.config import MIRROR_ENV
from facegen.download import AcquisitionError, ChecksumError, RemoteFile, UnavailableError
from facegen.io import sha256_file

__all__ = ["AcquisitionError", "ChecksumError", "MIRROR_HINT", "RemoteFile", "Resolved", "download", "mirror_root",
           "read_sha256sums", "resolve", "verify"]

log = logging.getLogger(__name__)

MIRROR_HINT = (
    f"Download the file by hand and place it in a mirror folder under its official name, listed in a "
    f"SHA256SUMS file, then set {MIRROR_ENV}=/path/to/mirror (or the config key data.mirror)."
)


@dataclass
class Resolved:
    file: RemoteFile
    path: Path
    sha256: str
    source: str
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "source": self.source}


def mirror_root(configured: str | None) -> Path | None:
    root = configured or os.environ.get(MIRROR_ENV) or None
    if root is None:
        return None
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise AcquisitionError(f"data mirror '{root}' is not a directory. Fix data.mirror or {MIRROR_ENV}.")
    return path


def read_sha256sums(root: Path) -> dict[str, str]:
    sums_file = root / "SHA256SUMS"
    if not sums_file.exists():
        raise AcquisitionError(f"data mirror '{root}' has no SHA256SUMS file; create it with `sha256sum */* > SHA256SUMS` inside the mirror.")
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def verify(path: Path, checksum: str, label: str) -> None:
    _download.verify(path, checksum, label, MIRROR_HINT)


def from_mirror(root: Path, rf: RemoteFile, sums: dict[str, str]) -> Resolved | None:
    path = root / rf.name
    if not path.exists():
        return None
    if rf.name not in sums:
        raise AcquisitionError(f"mirror file '{path}' is not listed in {root / 'SHA256SUMS'}; add its sha256 line so it can be verified.")
    verify(path, "sha256:" + sums[rf.name], f"mirror file '{rf.name}'")
    return Resolved(rf, path, sums[rf.name], f"mirror:{root}")


def download(url: str, dest: Path, checksum: str | None, label: str, chunk: int = 1 << 16, timeout: float = 60) -> Path:
    """facegen.download.download, its messages ending with how to supply the file through the data mirror."""
    return _download.download(url, dest, checksum, label, MIRROR_HINT, chunk, timeout)


def resolve(files: list[RemoteFile], mirror: str | None, download_dir: str | Path) -> dict[str, Resolved]:
    """Locate every file: verified mirror copy first, else a verified (possibly cached) download."""
    root = mirror_root(mirror)
    sums = read_sha256sums(root) if root else {}
    out: dict[str, Resolved] = {}
    for rf in files:
        found = from_mirror(root, rf, sums) if root else None
        if found is None and root and not rf.required:
            log.info("optional file %s is not in the mirror; going on without it", rf.name)
            continue
        if found is None:
            found = _from_web(rf, Path(download_dir))
        if found is not None:
            log.info("%s <- %s", rf.name, found.source)
            out[rf.basename] = found
    return out


def _from_web(rf: RemoteFile, download_dir: Path) -> Resolved | None:
    dest = download_dir / rf.name
    if dest.exists():
        if rf.checksum:
            verify(dest, rf.checksum, f"cached download '{dest}'")
        return Resolved(rf, dest.resolve(), sha256_file(dest), "cache")
    if not rf.urls:
        if rf.required:
            raise AcquisitionError(f"{rf.name} has no public download URL. {MIRROR_HINT}")
        return None
    try:
        url = _download.fetch(rf.urls, dest, rf.checksum, f"'{rf.name}'", MIRROR_HINT)
    except UnavailableError as exc:
        if rf.required:
            raise AcquisitionError(f"could not obtain {rf.name}: " + " | ".join(exc.errors)) from exc
        log.warning("optional file %s unavailable: %s", rf.name, exc.errors)
        return None
    return Resolved(rf, dest.resolve(), sha256_file(dest), url)
