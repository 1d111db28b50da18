"""Each job's config slice holds what the job reads and no more, and a run's slice gives its own spec."""

from pathlib import Path

from facegen import slices
from facegen.config import load
from facegen.training.matrix import run_experiment, run_spec

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "config" / "config.yaml", ROOT / "config" / "test.yaml"]


def overlapping_study():
    """A run of vae asked for by two experiments: the first one's training block is the run's."""
    cfg = load(*CONFIGS)
    first = cfg["experiments"][0]
    cfg["experiments"].append({**first, "name": "second", "training": {"epochs": 99}})
    return cfg, (first["datasets"][0], first["resolutions"][0], "vae", first["seeds"][0])


def test_the_first_experiment_that_asks_for_a_run_is_its_experiment_everywhere():
    cfg, run = overlapping_study()
    assert run_experiment(cfg, *run) is cfg["experiments"][0]
    assert run_experiment(cfg, run[0], run[1], "no_such_model", run[3]) is None
    spec = run_spec(cfg, *run)
    assert spec["training"]["epochs"] == cfg["experiments"][0]["training"]["epochs"] != 99
    part = slices.run_config(cfg, *run)
    assert [e["name"] for e in part["experiments"]] == [cfg["experiments"][0]["name"]]
    assert run_spec(load(part), *run) == spec


def test_a_data_or_evaluation_slice_holds_only_its_dataset():
    cfg = load(*CONFIGS)
    name = sorted(cfg["data"]["datasets"])[0]
    part = slices.eval_config(cfg, name)
    assert sorted(part) == sorted([*slices.SHARED, "data", "evaluation"])
    assert list(part["data"]["datasets"]) == [name] and part["evaluation"] == cfg["evaluation"]
    assert sorted(slices.data_config(cfg, sorted(cfg["data"]["datasets"]))["data"]) == sorted(cfg["data"])


def test_the_classifiers_slice_leaves_out_the_models_and_the_experiments_slice_the_report():
    cfg = load(*CONFIGS)
    assert "models" not in slices.classifier_config(cfg) and "experiments" not in slices.classifier_config(cfg)
    assert sorted(slices.experiment_config(cfg)) == sorted(set(cfg) - {"report", "tuning"})
