"""training.compile: the choice logic with fake timings (no compile runs here; tests/test_trainer.py
trains compiled), the quick profile staying eager, and every architecture naming its compiled parts."""

from pathlib import Path

import pytest

from facegen.config import load
from facegen.models import ARCHITECTURES, build_model
from facegen.training import compilation
from facegen.training.matrix import run_spec, training_runs
from facegen.training.trainer import TrainSettings
from facegen.tuning import tuning_study
from facegen.views import TrainingView

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"eager_seconds_per_image": 0.010, "compiled_seconds_per_image": 0.005,
          "compile_seconds_cold": 30.0, "compile_seconds_warm": 3.0}


def spec(value, arch="vae"):
    return {"arch": arch, "resolution": 16, "params": {"latent_dim": 8},
            "training": {"compile": value, "batch_size": 4, "optimizer": "adam", "epochs": 100}}


def test_explicit_values_pass_through_and_yaml_booleans_read_as_on_and_off():
    assert compilation.resolve(spec("on"), "fp32", 10) == {"mode": "on", "requested": "on"}
    assert compilation.resolve(spec(True), "fp32", 10)["mode"] == "on"  # `compile: on`, unquoted
    assert compilation.resolve(spec(False), "fp32", 10)["mode"] == "off"
    with pytest.raises(ValueError, match="unknown training.compile 'yes'; choose from auto, on, off"):
        compilation.resolve(spec("yes"), "fp32", 10)
    with pytest.raises(ValueError, match="auto is resolved"):
        TrainSettings(compile="auto")


def test_auto_does_not_time_a_run_too_short_to_repay_a_compile(monkeypatch):
    monkeypatch.setattr("facegen.training.timing.bench_model", lambda *a, **kw: pytest.fail("a short run was timed"))
    short = compilation.resolve(spec("auto"), "fp32", compilation.AUTO_MIN_TRAIN_IMAGES - 1)
    assert short["mode"] == "off" and "over before a compile could pay" in short["note"]


def test_the_quick_profile_never_compiles_nor_times_a_compile():
    """CI runs the quick profile: every run, the tuning's included, is below auto's untimed threshold."""
    config = load(ROOT / "config" / "config.yaml", ROOT / "config" / "test.yaml")
    for study in (config, tuning_study(config)):
        for run in training_runs(study):
            t = TrainingView(run_spec(study, run["dataset"], run["resolution"], run["model"], run["seed"])["training"])
            assert t.max_images and t.epochs * t.max_images < compilation.AUTO_MIN_TRAIN_IMAGES, run


def test_auto_compiles_when_the_time_saved_repays_the_compile_several_times():
    # 0.005 s saved per image: 30 s of compile is repaid three times over by 18,000 images
    assert compilation.choose(TIMING, 18_000) == ("on", pytest.approx(90.0))
    assert compilation.choose(TIMING, 17_000)[0] == "off"
    within_noise = {**TIMING, "compiled_seconds_per_image": 0.0095}  # 5% faster: within SPEED_MARGIN
    assert compilation.choose(within_noise, 10**9)[0] == "off"


def test_auto_is_timed_once_per_machine_and_model_and_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGEN_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_bench(arch, size, batch, variant, compile=False, **kw):
        calls.append(compile)
        return {"train_img_per_s": 200.0 if compile else 100.0, **({"compile_seconds": 20.0} if compile else {})}

    monkeypatch.setattr("facegen.training.timing.bench_model", fake_bench)
    first = compilation.resolve(spec("auto"), "fp32", 10**6)
    again = compilation.resolve(spec("auto"), "fp32", 10**6)
    assert calls == [False, True, True, False]  # eager, cold, warm, eager; the second resolve reads the cache
    assert first["mode"] == again["mode"] == "on" and first["requested"] == "auto"
    assert first["compiled_seconds_per_image"] == pytest.approx(0.005) and first["compile_seconds_cold"] == 20.0
    assert first["predicted_seconds_saved"] == pytest.approx(5000.0)
    # a run of another length decides from the same timings, untimed
    assert compilation.resolve(spec("auto"), "fp32", 60_000)["predicted_seconds_saved"] == pytest.approx(300.0)
    assert len(calls) == 4


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_names_its_compiled_parts(arch):
    params = {"n_cond": 2} if arch == "cvae" else {}
    model = build_model(arch, 32, **params)
    parts = model.compile_parts()
    assert parts and all(callable(getattr(owner, name)) for owner, name in parts)
