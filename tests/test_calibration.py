"""The per-machine choice of arithmetic: the decision rule on fake timings, and the cache that makes
every job of a study use the same choice."""

import json

import pytest

from facegen import calibration
from facegen.metrics import inception


def test_fastest_mode_within_tolerance_wins():
    seconds = {"fp32": 0.30, "channels_last": 0.18, "bf16": 0.12}
    errors = {"fp32": 0.0, "channels_last": 1e-6, "bf16": 0.01}
    assert calibration.choose(seconds, errors, tolerance=0.03) == "bf16"


def test_emulated_bf16_loses_to_channels_last():
    # This machine (Zen 3, no native bf16): bf16 at 1.1 img/s, channels_last at 5.7, fp32 at 3.6.
    seconds = {"fp32": 1 / 3.6, "channels_last": 1 / 5.7, "bf16": 1 / 1.1}
    errors = {"fp32": 0.0, "channels_last": 1e-6, "bf16": 0.017}
    assert calibration.choose(seconds, errors, tolerance=0.03) == "channels_last"


def test_a_fast_mode_outside_the_tolerance_is_never_chosen():
    seconds = {"fp32": 0.30, "channels_last": 0.29, "bf16": 0.05}
    errors = {"fp32": 0.0, "channels_last": 1e-6, "bf16": 0.2}
    assert calibration.choose(seconds, errors, tolerance=0.03) == "channels_last"


def test_native_bf16_inception_is_not_chosen_under_the_study_tolerance():
    # A Zen 4 CPU with avx512_bf16: bf16 ran 2.8x fp32 but moved a VAE's sample FID by 0.81% (over 0.5%),
    # so the study's tolerance admits channels-last's reordered fp32 and not bf16's 2% feature change.
    seconds = {"fp32": 1 / 4.2, "channels_last": 1 / 5.5, "bf16": 1 / 11.7}
    errors = {"fp32": 0.0, "channels_last": 1.7e-6, "bf16": 2.0e-2}
    assert calibration.choose(seconds, errors, inception.FEATURE_TOLERANCE) == "channels_last"


def test_a_cached_inception_choice_from_another_tolerance_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    calibration.cached_choice("inception", "cpu", lambda: {"mode": "bf16"})  # the 3% policy's record, as it was named
    monkeypatch.setattr(inception, "measure_modes", lambda device: {"mode": "channels_last"})
    assert inception.resolve_mode("auto") == "channels_last"


def test_a_mode_without_a_measured_error_is_not_chosen():
    assert calibration.choose({"fp32": 0.3, "bf16": 0.1}, {"fp32": 0.0}, tolerance=0.03) == "fp32"


def test_a_tie_keeps_the_baseline():
    assert calibration.choose({"fp32": 0.2, "channels_last": 0.2}, {"channels_last": 0.0}, tolerance=0.03) == "fp32"


def test_the_baseline_must_be_timed():
    with pytest.raises(calibration.CalibrationError, match="baseline mode 'fp32' was not timed"):
        calibration.choose({"bf16": 0.1}, {"bf16": 0.0}, tolerance=0.03)


def test_the_choice_is_measured_once_per_machine_and_then_read(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    calls = []

    def measure():
        calls.append(1)
        return {"mode": "channels_last", "seconds_per_image": {"fp32": 0.3, "channels_last": 0.2}}

    first = calibration.cached_choice("inception", "cpu", measure)
    second = calibration.cached_choice("inception", "cpu", lambda: pytest.fail("measured twice"))
    assert calls == [1] and first == second and first["mode"] == "channels_last"
    assert first["machine"] == calibration.machine_key("cpu") and first["kind"] == "inception"
    (path,) = tmp_path.glob("inception-*.json")  # one record on disk, which every later job reads
    assert json.loads(path.read_text())["mode"] == "channels_last"


def test_a_cache_from_another_machine_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    calibration.cached_choice("inception", "cpu", lambda: {"mode": "bf16"})
    (path,) = tmp_path.glob("inception-*.json")
    path.write_text(path.read_text().replace(calibration.cpu_model(), "another CPU"))
    assert calibration.cached_choice("inception", "cpu", lambda: {"mode": "fp32"})["mode"] == "fp32"


def test_auto_resolves_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(inception, "measure_modes", lambda device: {"mode": "channels_last"})
    assert inception.resolve_mode("auto") == "channels_last"
    assert inception.resolve_mode("bf16") == "bf16"
    with pytest.raises(ValueError, match="unknown Inception mode 'fp16'"):
        inception.resolve_mode("fp16")


def test_features_compared_with_a_reference_use_its_arithmetic():
    assert inception.reference_mode("auto", "bf16", "the real features x.npz") == "bf16"
    assert inception.reference_mode("channels_last", "channels_last", "the real features x.npz") == "channels_last"
    with pytest.raises(ValueError, match="x.npz were computed with inception_mode bf16, but this job asks for fp32"):
        inception.reference_mode("fp32", "bf16", "the real features x.npz")


def test_calibration_images_are_deterministic_uint8():
    a, b = inception.calibration_images(3), inception.calibration_images(3)
    assert a.dtype == "uint8" and a.shape == (3, 64, 64, 3) and (a == b).all() and a.std() > 10


def _fake_clocks(monkeypatch, wall: float, cpu: float):
    ticks = iter([(0.0, 0.0), (wall, cpu)])
    monkeypatch.setattr(calibration, "_clocks", lambda: next(ticks))


def test_a_speed_timed_beside_other_work_is_used_but_not_cached(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    _fake_clocks(monkeypatch, wall=10.0, cpu=4.0)  # 1 thread got 40% of a core: 3 other jobs ran beside it
    record = calibration.cached_choice("plan-base-t1", "cpu", lambda: {"matmul_gflops": 50.0}, speed_threads=1)
    assert record["matmul_gflops"] == 50.0 and record["cpu_share"] == 0.4
    assert not list(tmp_path.glob("plan-base-*.json")) and "not cached" in caplog.text
    _fake_clocks(monkeypatch, wall=10.0, cpu=19.0)  # 2 threads, 95% of their time: idle enough to keep
    calibration.cached_choice("plan-base-t1", "cpu", lambda: {"matmul_gflops": 190.0}, speed_threads=2)
    again = calibration.cached_choice("plan-base-t1", "cpu", lambda: pytest.fail("measured twice"), speed_threads=2)
    assert again["matmul_gflops"] == 190.0 and again["cpu_share"] == 0.95


def test_a_choice_of_arithmetic_is_cached_however_busy_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(calibration, "_clocks", lambda: pytest.fail("a choice is not checked for load"))
    calibration.cached_choice("inception", "cpu", lambda: {"mode": "bf16"})
    assert calibration.cached_choice("inception", "cpu", lambda: pytest.fail("measured twice"))["mode"] == "bf16"


def test_a_speed_read_from_another_record_in_no_time_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    _fake_clocks(monkeypatch, wall=0.001, cpu=0.0)  # e.g. Inception's speed taken from auto's cached timing
    calibration.cached_choice("inception-speed", "cpu", lambda: {"img_per_s": 6.4}, speed_threads=1)
    (path,) = tmp_path.glob("inception-speed-*.json")
    assert json.loads(path.read_text())["cpu_share"] == 1.0
