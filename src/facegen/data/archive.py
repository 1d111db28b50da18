"""Open zip and tar archives with errors that name the file and the fix."""

from __future__ import annotations

import contextlib
import tarfile
import zipfile
import zlib
from typing import Iterator


class ArchiveError(RuntimeError):
    pass


def _broken(path, exc: Exception) -> ArchiveError:
    return ArchiveError(
        f"archive '{path}' is truncated or corrupt ({type(exc).__name__}: {exc}). "
        "Delete it and fetch it again, or check the mirror copy with `sha256sum -c SHA256SUMS`."
    )


@contextlib.contextmanager
def open_zip(path) -> Iterator[zipfile.ZipFile]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _broken(path, exc) from exc
    try:
        yield zf
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise _broken(path, exc) from exc
    finally:
        zf.close()


def iter_tar(path) -> Iterator[tuple[tarfile.TarInfo, "tarfile.ExFileObject | None"]]:
    """Stream (member, file object) pairs from a possibly gzipped tar without extracting it."""
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                yield member, tf.extractfile(member) if member.isfile() else None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _broken(path, exc) from exc
