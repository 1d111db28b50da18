"""Fetch a file from the first of its URLs that serves it.

A download resumes from a ``.part`` file, shows a progress bar, and becomes the real file only once its
checksum matches, so a truncated or corrupt download can never pass as complete. Every message ends with
the caller's ``hint``: how to supply the file by hand (a data mirror, a weights folder).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import requests

from facegen.io import sha256_file
from facegen.progress import progress


class AcquisitionError(RuntimeError):
    """A file could not be found, downloaded or verified."""


class ChecksumError(AcquisitionError):
    pass


class UnavailableError(AcquisitionError):
    """No URL served the file; ``errors`` holds each URL's reason."""

    def __init__(self, label: str, errors: list[str]):
        super().__init__(f"could not obtain {label}: {' | '.join(errors) or 'no URL'}")
        self.errors = errors


@dataclass(frozen=True)
class RemoteFile:
    """One official file. ``name`` is its path under the mirror root, e.g. 'celeba/list_attr_celeba.txt'."""

    name: str
    urls: tuple[str, ...] = ()
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>"
    required: bool = True
    note: str = ""

    @property
    def basename(self) -> str:
        return Path(self.name).name


def _with(message: str, hint: str) -> str:
    return f"{message} {hint}" if hint else message


def _digest(path: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(path)
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, checksum: str, label: str, hint: str = "") -> None:
    algo, _, expected = checksum.partition(":")
    actual = _digest(path, algo)
    if actual != expected.lower():
        raise ChecksumError(_with(
            f"checksum mismatch for {label}: expected {algo} {expected}, got {actual} ({path}). "
            f"The file is corrupt or not the official one.", hint))


def download(url: str, dest: Path, checksum: str | None, label: str, hint: str = "", chunk: int = 1 << 16,
             timeout: float = 60) -> Path:
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
                raise AcquisitionError(_with(
                    f"download of {label} from {url} stopped at {received} of {total or 'unknown'} bytes; "
                    f"rerun to resume from {part}.", hint))
    except requests.RequestException as exc:
        raise AcquisitionError(_with(f"download of {label} from {url} failed: {exc}.", hint)) from exc
    if checksum:
        try:
            verify(part, checksum, label, hint)
        except ChecksumError:
            part.unlink(missing_ok=True)  # a wrong file cannot be resumed into a right one
            raise
    os.replace(part, dest)
    return dest


def fetch(urls: Sequence[str], dest: Path, checksum: str | None, label: str, hint: str = "") -> str:
    """Download ``dest`` from the first of ``urls`` that serves it and return that URL. Any failure but a
    wrong checksum moves on to the next URL, and UnavailableError lists them all; a wrong checksum raises
    at once, so that a file that is not the pinned one is reported rather than skipped."""
    errors = []
    for url in urls:
        try:
            download(url, dest, checksum, label, hint)
            return url
        except ChecksumError:
            raise
        except AcquisitionError as exc:
            errors.append(str(exc))
    raise UnavailableError(label, errors)
