"""The recipe tuning: the candidates as a study of their own, the verdicts and their tolerance, the summary
and its appendix (no training here: the metrics files are written by hand)."""

import json

import numpy as np
import pandas as pd
import pytest

from facegen import config as cfgmod
from facegen import tuning
from facegen.metrics import headline
from facegen.io import write_json
from facegen.paths import eval_dir, floor_path, run_dir
from facegen.training.matrix import floor_sets

from conftest import ROOT


def frame(fids: dict, config_candidate: str = "a") -> pd.DataFrame:
    rows = [{"model": "vae", "candidate": c, "seed": s, "fid": f, "config_recipe": c == config_candidate}
            for c, per_seed in fids.items() for s, f in enumerate(per_seed)]
    return pd.DataFrame(rows)


def test_same_recipe_fills_the_defaults_and_sees_any_difference():
    assert tuning.same_recipe({"arch": "vae"}, {"arch": "vae", "params": {}, "condition": [], "training": {}})
    assert not tuning.same_recipe({"arch": "vae", "training": {"lr": 1e-3}}, {"arch": "vae", "training": {"lr": 3e-3}})
    assert not tuning.same_recipe({"arch": "vae"}, {"arch": "beta_vae"})


@pytest.mark.parametrize("fids, verdict", [
    ({"a": [100.0], "b": [110.0]}, "has the lowest validation FID"),
    ({"a": [100.0], "b": [95.0]}, "within the tolerance (13.0)"),
    ({"a": [100.0], "b": [80.0]}, "'b' beats the config's recipe by more than the tolerance (13.0): adopt it"),
])
def test_a_candidate_counts_as_better_only_beyond_the_tolerance(fids, verdict):
    (v,), tol = tuning.verdicts(frame(fids), 13.0)
    assert verdict in v["verdict"]
    assert tol["tolerance_fid"] == 13.0 and "stated" in tol["tolerance_source"]
    assert v["gap"] == pytest.approx(100.0 - min(f[0] for f in fids.values()))


def test_without_the_configs_recipe_among_the_candidates_no_gap_is_claimed():
    (v,), _ = tuning.verdicts(frame({"a": [100.0], "b": [90.0]}, config_candidate="none"), 13.0)
    assert v["config"] is None and v["gap"] is None and v["best"] == "b"
    assert "not among the candidates" in v["verdict"]


def test_the_seed_spread_widens_the_tolerance_when_larger_than_stated():
    # Pooled seed variance (50 + 18) / 2 = 34: twice its sd is 11.7, below the stated 13.
    tol, source = tuning.seed_tolerance(frame({"a": [100.0, 110.0], "b": [90.0, 96.0]}), 13.0)
    assert tol == 13.0 and "stated" in source
    # Variance 450 each: sd 21.2, so the gap that counts is 42.4.
    tol, source = tuning.seed_tolerance(frame({"a": [100.0, 130.0], "b": [90.0, 120.0]}), 13.0)
    assert tol == pytest.approx(2 * np.sqrt(450.0)) and "pooled seed sd" in source
    (v,), _ = tuning.verdicts(frame({"a": [100.0, 130.0], "b": [90.0, 120.0]}), 13.0)
    assert "within the tolerance" in v["verdict"]  # a mean gap of 10 is noise at that spread


@pytest.fixture
def test_profile(tmp_path):
    cfg = cfgmod.load(str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "test.yaml"))
    cfg["results_dir"] = str(tmp_path / "results")
    return cfg


def test_tuning_study_is_the_candidates_at_one_budget_against_validation(test_profile):
    study = tuning.tuning_study(test_profile)
    assert set(study["models"]) == {"vae__lr1e_3", "vae__lr3e_3"}
    (exp,) = study["experiments"]
    assert exp["datasets"] == ["synthetic"] and exp["training"]["max_images"] == 96
    assert study["evaluation"]["real_split"] == "val" and study["evaluation"]["floor_split"] == "test"
    assert study["tuning"]["candidates"] == [] and test_profile["tuning"]["candidates"]  # the original is untouched
    runs = tuning.tuning_runs(test_profile)
    assert [r["model"] for r in runs] == ["vae__lr1e_3", "vae__lr3e_3"]
    where = tuning.paths_config(test_profile)
    assert str(run_dir(where, runs[0])).startswith(str(tuning.outputs(test_profile)["table"].parent / "train"))


def fake_results(cfg, fids: dict) -> list:
    """metrics.json, model_card.json and samples.npz as the tuning's evaluate and train jobs write them."""
    where = tuning.paths_config(cfg)
    files = []
    for run in tuning.tuning_runs(cfg):
        metrics = {k: 0.5 for k in headline()} | {"fid": fids[run["model"]]}
        result = {"run": "{dataset}/{resolution}/{model}/{seed}".format(**run), **run, "arch": "vae", "family": "vae",
                  "train_minutes": 0.1, "metrics": metrics,
                  "protocol": {"n_generated": 40, "real_split": "val", "sampler": "prior", "inception_mode": "fp32", "seed": 0}}
        out = eval_dir(where, run)
        write_json(out / "metrics.json", result)
        np.savez(out / "samples.npz", samples=np.zeros((4, 32, 32, 3), np.uint8), features=np.zeros((4, 8), np.float32))
        write_json(run_dir(where, run) / "model_card.json", {"train_flops_per_image": 1e9, "epochs": 1, "n_train_images": 96})
        files.append(out / "metrics.json")
    (floor,) = [floor_path(where, f) for f in floor_sets(where)]
    write_json(floor.with_suffix(".json"), {"floor": {"run": "real", "metrics": {"fid": 30.0, "kid": 0.0, "lpips_diversity_real": 0.3}}})
    return files, floor.with_suffix(".json")


def test_summary_and_appendix_read_the_candidates_results(test_profile):
    from facegen.report.sections import tuning as section

    files, floor = fake_results(test_profile, {"vae__lr1e_3": 120.0, "vae__lr3e_3": 90.0})
    summary = tuning.summarize(test_profile, files, floor, tuning.outputs(test_profile))
    (v,) = summary["verdicts"]
    assert v["best"] == "lr3e_3" and v["config"] == "lr1e_3" and v["gap"] == pytest.approx(30.0)
    assert "adopt it" in v["verdict"]
    table = pd.read_csv(tuning.outputs(test_profile)["table"])
    assert table.set_index("candidate")["config_recipe"].to_dict() == {"lr1e_3": True, "lr3e_3": False}
    assert table["train_tflop"].iloc[0] == pytest.approx(1e9 * 96 / 1e12)
    assert summary["floor"]["fid"] == 30.0 and summary["real_split"] == "val"
    ctx = section.context(test_profile, None) if section.inputs(test_profile) else None
    assert ctx and ctx["enabled"] and ctx["single_seed"] and ctx["floor_fid"] == "30.0"
    assert [r["candidate"] for r in ctx["table"]] == ["lr3e_3", "lr1e_3"]  # lowest FID first


def test_summary_refuses_runs_under_different_protocols(test_profile):
    files, floor = fake_results(test_profile, {"vae__lr1e_3": 120.0, "vae__lr3e_3": 90.0})
    result = json.loads(files[1].read_text())
    result["protocol"]["real_split"] = "train"
    files[1].write_text(json.dumps(result))
    with pytest.raises(ValueError, match="real_split"):
        tuning.summarize(test_profile, files, floor, tuning.outputs(test_profile))


def test_no_candidates_means_no_tuning_jobs_and_an_appendix_that_says_so(test_profile):
    from facegen.report.sections import tuning as section

    cfg = {**test_profile, "tuning": {**test_profile["tuning"], "candidates": []}}
    assert tuning.tuning_runs(cfg) == [] and section.inputs(cfg) == []
    assert section.context(cfg, None) == {"enabled": False}
