"""Find a dataset's official files: first in a local mirror, then at their public URLs.

Downloads resume from a ``.part`` file, show a progress bar, and only become the real file after the
checksum matches, so a truncated or corrupt download can never pass as complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import requests
from facegen.progress import progress

from facegen.config import MIRROR_ENV
from facegen.io import sha256_file

log = logging.getLogger(__name__)

MIRROR_HINT = (
    f"Download the file by hand and place it in a mirror folder under its official name, listed in a "
    f"SHA256SUMS file, then set {MIRROR_ENV}=/path/to/mirror (or the config key data.mirror)."
)


class AcquisitionError(RuntimeError):
    """A dataset file could not be found, downloaded or verified."""


class ChecksumError(AcquisitionError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    """One official dataset file. ``name`` is its path under the mirror root, e.g. 'celeba/list_attr_celeba.txt'."""

    name: str
    urls: tuple[str, ...] = ()
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>"
    required: bool = True
    note: str = ""

    @property
    def basename(self) -> str:
        return Path(self.name).name


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


def _digest(path: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(path)
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, checksum: str, label: str) -> None:
    algo, _, expected = checksum.partition(":")
    actual = _digest(path, algo)
    if actual != expected.lower():
        raise ChecksumError(
            f"checksum mismatch for {label}: expected {algo} {expected}, got {actual} ({path}). "
            f"The file is corrupt or not the official one. {MIRROR_HINT}"
        )


def from_mirror(root: Path, rf: RemoteFile, sums: dict[str, str]) -> Resolved | None:
    path = root / rf.name
    if not path.exists():
        return None
    if rf.name not in sums:
        raise AcquisitionError(f"mirror file '{path}' is not listed in {root / 'SHA256SUMS'}; add its sha256 line so it can be verified.")
    verify(path, "sha256:" + sums[rf.name], f"mirror file '{rf.name}'")
    return Resolved(rf, path, sums[rf.name], f"mirror:{root}")


def download(url: str, dest: Path, checksum: str | None, label: str, chunk: int = 1 << 16, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest``, resuming a previous ``dest.part``; verify before the final rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = requests.get(url, headers=headers, stream=True, timeout=timeout)
        if resp.status_code == 416:  # the .part already holds everything the server has
            resp.close()
        else:
            resp.raise_for_status()
            if offset and resp.status_code != 206:
                offset = 0  # server ignored the Range header: start over
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            mode = "ab" if offset else "wb"
            received = offset
            with open(part, mode) as fh, progress(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name) as bar:
                broken = False
                try:
                    for block in resp.iter_content(chunk):
                        fh.write(block)
                        received += len(block)
                        bar.update(len(block))
                except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
                    broken = True  # a connection cut mid-body is a short download; reported just below
            if broken or (total is not None and received < total):
                raise AcquisitionError(
                    f"download of {label} from {url} stopped at {received} of {total or 'unknown'} bytes; "
                    f"rerun to resume from {part}. {MIRROR_HINT}"
                )
    except requests.RequestException as exc:
        raise AcquisitionError(f"download of {label} from {url} failed: {exc}. {MIRROR_HINT}") from exc
    if checksum:
        try:
            verify(part, checksum, label)
        except ChecksumError:
            part.unlink(missing_ok=True)  # a wrong file cannot be resumed into a right one
            raise
    os.replace(part, dest)
    return dest


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
    errors = []
    for url in rf.urls:
        try:
            download(url, dest, rf.checksum, f"'{rf.name}'")
            return Resolved(rf, dest.resolve(), sha256_file(dest), url)
        except ChecksumError:
            raise
        except AcquisitionError as exc:
            errors.append(str(exc))
    if rf.required:
        raise AcquisitionError(f"could not obtain {rf.name}: " + " | ".join(errors))
    log.warning("optional file %s unavailable: %s", rf.name, errors)
    return None
