"""The config views read a block as it is, fall back on the schema's defaults, and refuse writes; the
training defaults are the schema's alone."""

import dataclasses
import inspect
from pathlib import Path

import pytest

from facegen import config as cfgmod
from facegen.views import EvaluationView, ModelView, TrainingView

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "config" / "config.yaml"


def test_a_view_reads_the_block_and_the_schema_default_of_what_it_leaves_out():
    view = TrainingView({"epochs": 3, "lr": 0.01})
    assert view.epochs == view["epochs"] == 3 and view["lr"] == 0.01
    assert view.precision == "fp32" and view["balance_column"] is None and view.max_images is None
    assert dict(view) == {**TrainingView.defaults(), "epochs": 3, "lr": 0.01}
    assert "schedule" in view and len(view) == len(TrainingView.defaults())


def test_a_view_is_read_only_and_a_default_read_from_it_is_a_copy():
    view = TrainingView({})
    with pytest.raises(AttributeError, match="read-only"):
        view.epochs = 5
    with pytest.raises(TypeError):
        view["epochs"] = 5
    view.betas.append(0.1)
    assert view.betas == [0.5, 0.999]
    with pytest.raises(AttributeError, match="no key 'epoch'"):
        view.epoch


def test_every_training_key_has_one_default_in_the_schema_which_the_validator_leaves_unfilled():
    """x-default, not default: a filled default would enter a model's and an experiment's override
    block, where it would mask the study's own training block, and every run's spec and model card."""
    props = cfgmod.load_schema()["$defs"]["training"]["properties"]
    assert sorted(TrainingView.defaults()) == sorted(props)
    assert not [k for k, p in props.items() if "default" in p]
    cfg = cfgmod.load(MAIN, {"training": {"epochs": 2}, "models": {"extra": {"arch": "vae", "training": {"lr": 0.01}}}})
    assert cfg["training"] == {**cfgmod.load(MAIN)["training"], "epochs": 2}
    assert cfg["models"]["extra"]["training"] == {"lr": 0.01}


def test_train_settings_defaults_are_the_schemas():
    from facegen.training.trainer import TrainSettings

    fields = {f.name: f.default for f in dataclasses.fields(TrainSettings)}
    # max_images picks the training rows (facegen.training.run), before a trainer exists.
    expected = {k: v for k, v in TrainingView.defaults().items() if k != "max_images"}
    assert fields == {k: tuple(v) if k == "betas" else v for k, v in expected.items()}
    assert TrainSettings.from_config(dict(TrainingView({}))) == TrainSettings()


@pytest.mark.parametrize("view", [TrainingView, EvaluationView, ModelView])
def test_a_views_annotations_name_every_key_of_its_block_in_schema_order(view):
    node = cfgmod.load_schema()
    for key in view.SCHEMA:
        node = node[key]
    assert list(inspect.get_annotations(view)) == list(node["properties"])


def test_a_model_view_reads_an_entry_as_run_spec_does():
    entry = ModelView({"arch": "vae"})
    assert entry.arch == "vae" and entry.params == {} and entry.condition == []
    assert entry.get("training", {}) == {} and "training" not in entry
