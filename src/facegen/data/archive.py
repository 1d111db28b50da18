"""Open zip and tar archives with errors that name the file and the fix."""

from __future__ import annotations

import contextlib
import tarfile
import zipfile
import zlib
from typing import Callable, Iterator


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


def iter_tar(path, want: Callable[[tarfile.TarInfo], bool] | None = None) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Stream (member, bytes) pairs from a possibly gzipped tar without extracting it.

    Bytes are read here, inside the error handler, only for regular files that ``want`` accepts
    (None for the rest), so listing an archive does not hold its contents in memory.
    """
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                read = member.isfile() and (want is None or want(member))
                yield member, tf.extractfile(member).read() if read else None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _broken(path, exc) from exc
