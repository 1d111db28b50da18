"""One trained run through `facegen evaluate`: outputs, protocol, per-image table and bad inputs."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import shared_weights
from facegen.cli import main
from facegen.config import load
from facegen.data import fetch, prepare_dataset
from facegen.evaluation.real import real_features
from facegen.evaluation.run import evaluate_run
from facegen.models.base import GenerativeModel
from facegen.training.run import train_run

EVAL = {"n_generated": 12, "n_real": 12, "n_recon": 4, "kid_subsets": 4, "kid_subset_size": 6, "lpips_pairs": 6,
        "iwae_samples": 2, "n_iwae": 3, "inception_score": False, "batch_size": 12, "feature_spaces": ["inception"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    try:
        weights = shared_weights()
    except Exception as exc:  # no network and no cache: the weights tests report the cause
        pytest.skip(f"pretrained weights unavailable: {exc}")
    mp = pytest.MonkeyPatch()
    mp.setenv("FACEGEN_WEIGHTS_DIR", str(weights))
    config = load({
        "results_dir": str(tmp / "results"),
        "data": {"resolutions": [16], "datasets": {"synthetic": {"kind": "synthetic", "n": 48, "size": 64}}},
        "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
        "models": {"cvae": {"arch": "cvae", "params": {"latent_dim": 8, "channels": [8, 16]}, "condition": ["group", "smile"]},
                   "dcgan": {"arch": "dcgan", "params": {"ngf": 8, "ndf": 8}}},
        "experiments": [{"datasets": ["synthetic"], "resolutions": [16], "models": ["cvae", "dcgan"], "seeds": [0]}],
        "evaluation": EVAL,
    })
    fetch(config, "synthetic", tmp / "m.json")
    prepare_dataset(config, "synthetic", tmp / "m.json", tmp / "results/data/synthetic")
    for model in ("cvae", "dcgan"):
        train_run(config, "synthetic", 16, model, 0, tmp / "results/train/synthetic/16" / model / "0")
    real = tmp / "results/eval/real/synthetic/16/train.npz"
    real_features(config, "synthetic", 16, "train", real)
    yield config, tmp, real
    mp.undo()


def test_conditional_vae_evaluation(trained):
    config, tmp, real = trained
    out = tmp / "results/eval/synthetic/16/cvae/0"
    result = evaluate_run(config, tmp / "results/train/synthetic/16/cvae/0", real, out)
    assert json.loads((out / "metrics.json").read_text())["metrics"]["fid"] == result["metrics"]["fid"] > 0
    p = result["protocol"]
    assert (p["n_generated"], p["n_real"], p["sampler"], p["resolution"], p["n_recon"]) == (12, 12, "prior", 16, 4)
    m = result["metrics"]
    for key in ("kid", "kid_ci_low", "precision", "recall", "density", "coverage", "approx_fid_pixel", "recon_mse",
                "recon_psnr", "recon_ssim", "recon_lpips", "kl", "iwae_bpd", "sharpness_samples", "lpips_diversity"):
        assert m[key] == m[key], key  # present and not NaN
    assert m["inception_score"] is None and m["inception_score_note"] == "unavailable: disabled in the config"
    per_image = pd.read_parquet(out / "per_image.parquet")
    assert len(per_image) == 4 and {"id", "mse", "psnr", "ssim", "lpips", "kl", "iwae_bpd"} <= set(per_image.columns)
    assert per_image["iwae_bpd"].notna().sum() == 3
    from facegen.evaluation.samples import load_samples
    from facegen.metrics.distribution import fid_from_statistics, statistics

    samples, feats = load_samples(out / "samples.npz")  # the very samples the metrics saw, for the bias analysis
    assert samples.shape == (12, 16, 16, 3) and samples.dtype == np.uint8 and feats.shape == (12, 2048)
    with np.load(real) as r:
        assert fid_from_statistics(statistics(feats), {"mu": r["mu"], "sigma": r["sigma"]}) == pytest.approx(m["fid"])
    with pytest.raises(FileNotFoundError, match="evaluate the run first"):
        load_samples(out / "missing.npz")


def test_gan_has_no_reconstruction_metrics(trained):
    config, tmp, real = trained
    result = evaluate_run(config, tmp / "results/train/synthetic/16/dcgan/0", real, tmp / "results/eval/synthetic/16/dcgan/0")
    assert "recon_mse" not in result["metrics"] and result["protocol"]["n_recon"] == 0
    assert result["metrics"]["fid"] > 0


def test_mismatched_real_features_are_rejected(trained, tmp_path):
    config, tmp, real = trained
    other = tmp_path / "train.npz"
    shutil.copy(real, other)
    protocol = json.loads(real.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps({**protocol, "resolution": 32}))
    with pytest.raises(ValueError, match="are for synthetic/32, the run is synthetic/16"):
        evaluate_run(config, tmp / "results/train/synthetic/16/cvae/0", other, tmp_path / "out")


def test_kid_subset_too_large_and_missing_features_via_cli(trained, tmp_path, capsys, restore_logging):
    config, tmp, real = trained
    # More real images asked for than the split has: the run stops before generating anything.
    big = json.dumps({**config, "evaluation": {**config["evaluation"], "n_real": 100, "n_generated": 100, "kid_subset_size": 50}})
    args = ["evaluate", "--config", big, "--run-dir", str(tmp / "results/train/synthetic/16/dcgan/0"), "--out-dir", str(tmp_path)]
    assert main([*args, "--real", str(real)]) == 2
    assert "KID subset size 50 exceeds the number of real images with features (12 in" in capsys.readouterr().err
    assert main([*args, "--real", str(tmp_path / "none.npz")]) == 2
    assert "run `facegen real-features`" in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_real_versus_real_floor_is_scored_like_a_run(trained):
    from facegen.evaluation.summary import summarize_evaluation
    from facegen.metrics import distribution
    from facegen.metrics.pixel_fid import approx_fid

    config, tmp, real = trained
    floor = tmp / "results/eval/real/synthetic/16/floor_val.npz"
    info = real_features(config, "synthetic", 16, "val", floor, reference=real)
    record = json.loads(floor.with_suffix(".json").read_text())["floor"]
    assert record == json.loads(json.dumps(info["floor"]))
    with np.load(floor) as f, np.load(real) as r:
        feats = f["features"]
        assert len(feats) == min(EVAL["n_generated"], 5)  # the val split holds 5 of the 48 images
        assert record["metrics"]["fid"] == pytest.approx(distribution.fid_from_features(feats, {"mu": r["mu"], "sigma": r["sigma"]}))
        images = np.load(tmp / "results/data/synthetic/images_16.npy")
        assert record["metrics"]["approx_fid_pixel"] == pytest.approx(approx_fid(images[r["rows"]], images[f["rows"]]))
        assert record["metrics"]["approx_fid_pixel_perfect"] == pytest.approx(2 * record["metrics"]["approx_fid_pixel_mean_face"])
    assert record["family"] == "real" and record["protocol"]["real_split"] == "train" and record["model"] == "real_val_floor"
    metrics = tmp / "results/eval/synthetic/16/dcgan/0/metrics.json"
    evaluate_run(config, tmp / "results/train/synthetic/16/dcgan/0", real, metrics.parent)
    table = summarize_evaluation([metrics], tmp / "t.csv", tmp / "t.json", tmp / "f.png", tmp / "s.png", [floor.with_suffix(".json")])
    assert set(table["model"]) == {"dcgan", "real_val_floor"}
    assert table.loc[(table["model"] == "real_val_floor") & (table["metric"] == "fid"), "value"].item() == pytest.approx(record["metrics"]["fid"])


def test_quality_bench_scores_runs_beside_the_floor_and_reuses_its_work(trained):
    from facegen.quality_bench import bench_quality

    config, tmp, _ = trained
    work = tmp / "quality"
    table = bench_quality(config, "synthetic", 16, ["dcgan"], [0], 12, work, epochs=1, max_images=16)
    assert list(table["arch"]) == ["real", "dcgan"]
    dcgan = table.set_index("arch").loc["dcgan"]
    assert dcgan["train_tflop"] > 0 and 0 <= dcgan["precision"] <= 1 and dcgan["lpips_diversity_real"] > 0
    assert np.isnan(dcgan["quality_vs_vae"])  # no plain VAE in this run to compare with
    assert (work / "grid_synthetic_16_dcgan_0.png").is_file()
    model = work / "train/synthetic/16/dcgan/0/model.pt"
    stamp = model.stat().st_mtime_ns
    again = bench_quality(config, "synthetic", 16, ["dcgan"], [0], 12, work, epochs=1, max_images=16)
    assert model.stat().st_mtime_ns == stamp and again["fid"].tolist() == table["fid"].tolist()


def test_quality_gates_known_answers():
    from facegen.evaluation.gates import gates

    rows = pd.DataFrame({"arch": ["real", "vae", "vae", "vaegan"], "family": ["real", "vae", "vae", "gan"],
                         "fid_inf": [40.0, 100.0, 120.0, 90.0], "fid": [50.0, 90.0, 100.0, 130.0], "precision": [0.7, 0.3, 0.05, 0.2],
                         # the floor row has no diversity of its own (NaN) and passes by definition
                         "lpips_diversity": [float("nan"), 0.10, 0.16, 0.20], "lpips_diversity_real": [0.28] * 4})
    out = gates(rows)
    assert out["precision_ok"].tolist() == [True, True, False, True]
    assert out["diversity_ok"].tolist() == [True, False, True, True]
    # decided on FID_inf (90 against the VAEs' 110), not on FID (130 against 95)
    assert out["quality_vs_vae"].iloc[3] == -20.0 and out["quality_vs_vae"].iloc[:3].isna().all()


def test_quality_gates_over_a_study_compare_each_model_with_the_vae_of_its_own_resolution():
    from facegen.evaluation.gates import gate_table

    def run(resolution, model, arch, family, seed, fid, precision, diversity):
        return [{"dataset": "celeba", "resolution": resolution, "model": model, "arch": arch, "family": family, "seed": seed,
                 "metric": k, "value": v} for k, v in (("fid_inf", fid), ("precision", precision), ("lpips_diversity", diversity),
                                                       ("lpips_diversity_real", 0.28))]

    rows = (run(32, "vae", "vae", "vae", 0, 100.0, 0.3, 0.2) + run(32, "vae", "vae", "vae", 1, 120.0, 0.3, 0.2)
            + run(32, "dcgan", "dcgan", "gan", 0, 105.0, 0.2, 0.3) + run(64, "vae", "vae", "vae", 0, 300.0, 0.05, 0.2)
            + run(64, "dcgan", "dcgan", "gan", 0, 290.0, 0.2, 0.1)
            + [{"dataset": "celeba", "resolution": 32, "model": "real_val_floor", "arch": "real", "family": "real", "seed": 0,
                "metric": "fid", "value": 40.0}])
    out = gate_table(pd.DataFrame(rows)).set_index(["resolution", "model"])
    assert out.loc[(32, "vae"), "n_seeds"] == 2 and out.loc[(32, "vae"), "fid_inf"] == 110.0
    assert out.loc[(32, "dcgan"), "quality_vs_vae"] == -5.0 and out.loc[(32, "dcgan"), "passes"]
    assert not out.loc[(64, "vae"), "passes"] and not out.loc[(64, "vae"), "precision_ok"]  # precision 0.05
    assert out.loc[(64, "dcgan"), "quality_vs_vae"] == -10.0 and not out.loc[(64, "dcgan"), "diversity_ok"]  # 0.1 / 0.28
    assert "real_val_floor" not in out.index.get_level_values("model")


HUBCONF = """
import torch


def dinov2_vits14(pretrained=True):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 14, 14), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    if pretrained:
        url = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"
        net.load_state_dict(torch.hub.load_state_dict_from_url(url, map_location="cpu"))
    return net
"""


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch.hub's cache in a temporary folder; a download from it fails as it does offline."""
    import torch
    from torch_fidelity import feature_extractor_dinov2

    def offline(*args, **kwargs):
        raise RuntimeError("It looks like there is no internet connection and the repo could not be found in the cache")

    monkeypatch.setattr(feature_extractor_dinov2.FeatureExtractorDinoV2, "__init__", offline)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def stand_in(hub):
    """A small network behind dinov2's torch.hub entry, with its checkpoint cached as torch.hub keeps it."""
    import torch

    repo = hub / "facebookresearch_dinov2_main"
    repo.mkdir(parents=True)
    (repo / "hubconf.py").write_text(HUBCONF)
    namespace = {}
    exec(HUBCONF, namespace)
    torch.manual_seed(0)
    net = namespace["dinov2_vits14"](pretrained=False)
    (hub / "checkpoints").mkdir()
    torch.save(net.state_dict(), hub / "checkpoints" / "dinov2_vits14_pretrain.pth")
    return net


def dinov2_config(config, tmp):
    return {**config, "results_dir": str(tmp / "results"),
            "evaluation": {**config["evaluation"], "feature_spaces": ["inception", "dinov2"], "dinov2_model": "dinov2-vit-s-14"}}


def test_fd_dinov2_is_computed_from_the_cached_network(trained, hub, tmp_path):
    """The real loading and feature code (torch-fidelity's resize and normalisation) over a stand-in for the
    cached DINOv2: FD_DINOv2 of the run and of the floor is the Frechet distance of those features."""
    import torch
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from facegen.metrics import distribution

    config, tmp, _ = trained
    net = stand_in(hub)
    cfg = dinov2_config(config, tmp)
    real, floor = tmp_path / "train.npz", tmp_path / "floor_val.npz"
    real_features(cfg, "synthetic", 16, "train", real)
    info = real_features(cfg, "synthetic", 16, "val", floor, reference=real)
    images = np.load(tmp / "results/data/synthetic/images_16.npy")
    with np.load(real) as r, np.load(floor) as f:
        x = torch.from_numpy(images[r["rows"]]).permute(0, 3, 1, 2).float()
        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(224, 224), align_corners=False)
        mean, std = torch.tensor([0.485, 0.456, 0.406]) * 255, torch.tensor([0.229, 0.224, 0.225]) * 255
        with torch.no_grad():
            expected = net((x - mean[:, None, None]) / std[:, None, None]).numpy()
        assert r["features_dinov2"].shape == (len(r["rows"]), 6)
        np.testing.assert_allclose(r["features_dinov2"], expected, rtol=1e-4, atol=1e-5)
        assert info["floor"]["metrics"]["fd_dinov2"] == pytest.approx(
            distribution.fid_from_features(f["features_dinov2"], {"mu": r["mu_dinov2"], "sigma": r["sigma_dinov2"]}))
    assert info["dinov2_model"] == "dinov2-vit-s-14" and "unavailable" not in info
    result = evaluate_run(cfg, tmp / "results/train/synthetic/16/dcgan/0", real, tmp_path / "eval")
    assert result["metrics"]["fd_dinov2"] > 0 and result["protocol"]["dinov2_model"] == "dinov2-vit-s-14"
    with np.load(tmp_path / "eval/samples.npz") as s:
        assert s["features_dinov2"].shape[1] == 6 and s["features"].shape[1] == 2048


def test_fd_dinov2_without_the_weights_is_unavailable_with_the_reason(trained, hub, tmp_path):
    config, tmp, _ = trained
    cfg = dinov2_config(config, tmp)
    real = tmp_path / "train.npz"
    info = real_features(cfg, "synthetic", 16, "train", real)
    assert info["unavailable"]["dinov2"].startswith("unavailable: DINOv2 weights missing")
    with np.load(real) as r:
        assert "features_dinov2" not in r.files and "features" in r.files
    result = evaluate_run(cfg, tmp / "results/train/synthetic/16/dcgan/0", real, tmp_path / "eval")
    m = result["metrics"]
    assert m["fd_dinov2"] is None and m["fd_dinov2_note"] == info["unavailable"]["dinov2"]
    assert m["fid"] > 0  # the Inception metrics are unaffected


class MeanMatcher(GenerativeModel):
    """A family the study has never seen: a linear generator trained to match the batch mean, defined
    here and registered with one line, to show that nothing outside its class needs to know it."""

    family = "toy"
    curves = ("loss",)

    def __init__(self, image_size: int, latent_dim: int = 4):
        super().__init__(image_size)
        self.latent_dim = latent_dim
        self.net = torch.nn.Linear(latent_dim, 3 * image_size * image_size)

    def generate(self, z, y=None):
        return self.net(z).sigmoid().view(len(z), 3, self.image_size, self.image_size)

    def sample(self, n, y=None, generator=None):
        return self.generate(torch.randn(n, self.latent_dim, generator=generator))

    def train_step(self, x, y, optimizers, ctx):
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss = (self.generate(torch.randn(len(x), self.latent_dim)).mean(0) - x.mean(0)).pow(2).mean()
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}


def test_a_new_family_is_one_class_and_one_registry_line(trained, monkeypatch):
    from facegen import models
    from facegen.dvcfile import plots

    config, tmp, real = trained
    monkeypatch.setitem(models.ARCHITECTURES, "mean_matcher", f"{__name__}:MeanMatcher")
    config = {**config, "models": {**config["models"], "toy": {"arch": "mean_matcher", "params": {"latent_dim": 4}}}}
    config["experiments"] = [{**config["experiments"][0], "models": ["toy"]}]
    run_dir = tmp / "results/train/synthetic/16/toy/0"
    train_run(config, "synthetic", 16, "toy", 0, run_dir)
    result = evaluate_run(config, run_dir, real, tmp / "results/eval/synthetic/16/toy/0")
    assert result["family"] == "toy" and result["metrics"]["fid"] > 0 and result["protocol"]["n_recon"] == 0
    assert "recon_mse" not in result["metrics"]  # no encoder declared: no reconstruction metrics
    history = str(run_dir / "history.csv")
    job = {"rule": "train", "arch": "mean_matcher", "output": [history]}
    assert any(history in p.get("training_loss", {}).get("y", {}) for p in plots([job]))
