"""training.precision: the choice logic with fake timings, and the tolerance that makes channels_last a
safe candidate (it is fp32 arithmetic in another memory layout)."""

import contextlib
import copy

import pytest
import torch

from facegen.models import build_model
from facegen.models.base import StepContext
from facegen.training import precision
from facegen.training.trainer import TrainSettings, make_optimizer


def test_auto_takes_the_faster_of_fp32_and_channels_last():
    assert precision.choose_mode("vae", {"fp32": 0.010, "channels_last": 0.007}) == "channels_last"
    assert precision.choose_mode("vae", {"fp32": 0.007, "channels_last": 0.010}) == "fp32"
    assert precision.choose_mode("fc_hvae", {"fp32": 0.010, "channels_last": 0.010}) == "fp32"  # a tie keeps fp32


def test_auto_leaves_fp32_only_for_a_gain_above_the_margin():
    """A few percent is within the timing noise of a shared machine: fp32 stays, so the choice does not
    flip between two fresh caches."""
    assert precision.SPEED_MARGIN == 0.10
    assert precision.choose_mode("vae", {"fp32": 0.010, "channels_last": 0.0095}) == "fp32"
    assert precision.choose_mode("vae", {"fp32": 0.010, "channels_last": 0.0089}) == "channels_last"


def test_auto_never_takes_unvalidated_bf16_however_fast(monkeypatch):
    assert precision.choose_mode("vae", {"fp32": 0.010, "channels_last": 0.008, "bf16": 0.001}) == "channels_last"
    monkeypatch.setattr(precision, "BF16_VALIDATED", frozenset({"vae"}))
    assert precision.choose_mode("vae", {"fp32": 0.010, "channels_last": 0.008, "bf16": 0.001}) == "bf16"
    assert precision.candidates("dcgan") == ("fp32", "channels_last")


def spec(value, arch="vae", epochs=2, max_images=None):
    return {"arch": arch, "resolution": 16, "params": {"latent_dim": 8},
            "training": {"precision": value, "batch_size": 4, "optimizer": "adam", "epochs": epochs, "max_images": max_images}}


def test_auto_does_not_time_a_run_shorter_than_its_timing(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("facegen.training.timing.bench_model", lambda *a, **kw: pytest.fail("a short run was timed"))
    short = precision.resolve(spec("auto", epochs=2, max_images=96))
    assert short["mode"] == "fp32" and "192 images is shorter than timing" in short["note"]
    assert precision.resolve(spec("channels_last", epochs=2, max_images=96))["mode"] == "channels_last"


def test_explicit_modes_pass_through_and_bad_values_are_named():
    assert precision.resolve(spec("channels_last")) == {"mode": "channels_last", "requested": "channels_last"}
    with pytest.raises(ValueError, match="unknown training.precision 'fp16'; choose from auto, fp32"):
        precision.resolve(spec("fp16"))
    with pytest.raises(ValueError, match="auto is resolved"):
        TrainSettings(precision="auto")


def test_auto_is_timed_once_per_machine_and_model_and_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGEN_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_bench(arch, size, batch, variant, **kw):
        calls.append(variant)
        return {"train_img_per_s": {"fp32": 100.0, "channels_last": 150.0, "bf16": 1000.0}[variant]}

    monkeypatch.setattr("facegen.training.timing.bench_model", fake_bench)
    first = precision.resolve(spec("auto"))
    again = precision.resolve(spec("auto"))
    assert first["mode"] == again["mode"] == "channels_last" and first["requested"] == "auto"
    # Rounds alternate between the candidates (bf16 is none, so it is not timed); the second call is cached.
    assert calls == ["fp32", "channels_last"] * precision.TIMING_ROUNDS
    assert first["seconds_per_image"] == {"fp32": pytest.approx(0.01), "channels_last": pytest.approx(1 / 150)}
    # The record names its policy, so a choice cached under an older one is timed again.
    assert [p.name for p in tmp_path.glob("precision-m0.1-vae-*.json")]


def test_each_mode_keeps_its_best_round(monkeypatch, tmp_path):
    """A burst of load in one round slows whichever mode it hits; the best round is the model's speed."""
    monkeypatch.setenv("FACEGEN_CACHE_DIR", str(tmp_path))
    speeds = iter([100.0, 60.0, 40.0, 105.0, 100.0, 104.0])  # fp32, channels_last, fp32, ... as timed

    monkeypatch.setattr("facegen.training.timing.bench_model", lambda *a, **kw: {"train_img_per_s": next(speeds)})
    record = precision.measure(spec("auto"), threads=1)
    assert record["seconds_per_image"] == {"fp32": pytest.approx(1 / 100), "channels_last": pytest.approx(1 / 105)}
    assert record["mode"] == "fp32"  # 5% faster at best: within the margin


def two_steps(model, memory_format):
    """The loss terms of a second step: they see the first step's update through the optimiser."""
    model = model.to(memory_format=memory_format)
    opts = {k: make_optimizer(TrainSettings(), p) for k, p in model.param_groups().items() if p}
    torch.manual_seed(5)
    x = torch.rand(8, 3, 32, 32).contiguous(memory_format=memory_format)
    for step in range(2):
        ctx = StepContext(0, 1, step, 2, autocast=contextlib.nullcontext, extra={"generator": torch.Generator().manual_seed(3 + step)})
        parts = model.train_step(x, None, opts, ctx)
    return parts


# Weights after an Adam step are no test: a gradient element near 0 may change sign under another
# summation order, and Adam's first step moves it by the full learning rate either way.
@pytest.mark.parametrize("arch", ["vae", "dcgan", "vaegan"])
def test_channels_last_trains_like_fp32(arch):
    torch.manual_seed(0)
    model = build_model(arch, 32)
    a = two_steps(copy.deepcopy(model), torch.contiguous_format)
    b = two_steps(copy.deepcopy(model), torch.channels_last)
    changes = {k: abs(b[k] - v) / abs(v) for k, v in a.items() if isinstance(v, float) and v != 0}
    assert changes and max(changes.values()) < precision.CHANNELS_LAST_TOLERANCE, changes
