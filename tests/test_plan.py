"""`facegen plan`: which jobs a config runs and what they cost, on fake measured speeds (no timing here)."""

import json

import pytest

from facegen import calibration
from facegen import config as cfgmod
from facegen import plan
from facegen.training.matrix import run_spec, training_runs
from facegen.tuning import tuning_study

from conftest import ROOT

MAIN = ROOT / "config" / "config.yaml"


def fake_speeds(config, train_ips=100.0, inception_ips=5.0):
    models = {}
    for study in (config, tuning_study(config)):
        for r in training_runs(study):
            key = plan._model_key(run_spec(study, r["dataset"], r["resolution"], r["model"], r["seed"]), 2)
            models[key] = {"train_img_per_s": train_ips, "sample_img_per_s": 1000.0}
    classifiers = {f"{kind}-{s}": {"img_per_s": 500.0} for kind in ("attribute", "demographic") for s in (32, 48, 64)}
    return {"base": {"startup_seconds": 5.0, "matmul_gflops": 200.0}, "threads": 2, "models": models,
            "classifiers": classifiers, "inception": {"mode": "channels_last", "img_per_s": inception_ips}}


@pytest.fixture
def paper(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_DATA_MIRROR", str(tmp_path))  # every dataset is active, none prepared
    (tmp_path / "SHA256SUMS").write_text("")
    return cfgmod.load(MAIN, {"results_dir": str(tmp_path / "results")})


def test_every_run_is_trained_and_evaluated_once(paper):
    jobs = plan.jobs(paper, fake_speeds(paper))
    runs = {"{dataset}/{resolution}/{model}/{seed}".format(**r) for r in training_runs(paper)}
    assert sorted(j.name for j in jobs if j.rule == "train") == sorted(runs)
    assert sorted(j.name for j in jobs if j.rule == "evaluate") == sorted(runs)
    assert {j.rule for j in jobs} >= {"prepare_celeba", "real_features", "real_floor", "plan", "report", "experiment_postprocess",
                                      "demographic_classifier"}
    assert all(j.seconds >= 5.0 for j in jobs if j.rule != "fetch")  # every CLI job pays its start-up


def test_the_tuning_candidates_are_planned_as_their_own_jobs(paper):
    jobs = plan.jobs(paper, fake_speeds(paper))
    tuned = {"{dataset}/{resolution}/{model}/{seed}".format(**r) for r in training_runs(tuning_study(paper))}
    assert tuned and sorted(j.name for j in jobs if j.rule == "tuning_train") == sorted(tuned)
    assert sorted(j.name for j in jobs if j.rule == "tuning_evaluate") == sorted(tuned)
    assert [j.name for j in jobs if j.rule in ("tuning_real_features", "tuning_real_floor")] == ["celeba/32/val", "celeba/32/test"]
    assert sum(j.rule == "tuning_summary" for j in jobs) == 1
    # A candidate at the tuning budget costs what a study run at that budget costs.
    (cand,) = [j for j in jobs if j.rule == "tuning_train" and j.name == "celeba/32/vae__lr1e_3_b16/0"]
    (study,) = [j for j in jobs if j.rule == "train" and j.name == "celeba/32/vae/0"]
    assert cand.seconds == pytest.approx(study.seconds)


def test_training_time_is_images_seen_over_measured_speed(paper):
    cfg = cfgmod.load(MAIN, {"results_dir": paper["results_dir"], "models": {"vae": {"training": {"monitor_images": 0}}},
                             "latent_experiments": {"runs": ["synthetic/32/vae/0"]},
                             "experiments": [{"name": "one", "datasets": ["synthetic"], "resolutions": [32],
                                              "models": ["vae"], "seeds": [0], "training": {"epochs": 3}}]})
    speeds = fake_speeds(cfg, train_ips=100.0)
    (train,) = [j for j in plan.jobs(cfg, speeds) if j.rule == "train"]
    n_train = plan.dataset_sizes(cfg, "synthetic")["train"]
    assert train.seconds == pytest.approx(5.0 + 3 * n_train / 100.0)
    slower = [j for j in plan.jobs(cfg, fake_speeds(cfg, train_ips=50.0)) if j.rule == "train"][0]
    assert slower.seconds - 5.0 == pytest.approx(2 * (train.seconds - 5.0))


def test_training_images_are_capped_by_max_images_and_the_split(paper):
    sizes = {"celeba": {"train": 8000, "val": 1000, "test": 1000}}
    replica = run_spec(paper, "celeba", 32, "fc_hvae", 0)
    assert plan.training_images(replica, sizes) == (600, 5000)
    assert plan.training_images(replica, {"celeba": {"train": 300}}) == (600, 300)
    uncapped = run_spec(paper, "celeba", 32, "beta_vae_z4_b1", 0)
    assert plan.training_images(uncapped, sizes) == (uncapped["training"]["epochs"], 8000)


def test_evaluation_time_scales_with_the_sample_count(paper):
    few = cfgmod.load(MAIN, {"results_dir": paper["results_dir"], "evaluation": {"n_generated": 1000, "kid_subset_size": 500}})
    many = cfgmod.load(MAIN, {"results_dir": paper["results_dir"], "evaluation": {"n_generated": 5000, "kid_subset_size": 500}})
    ev = lambda cfg: sum(j.seconds for j in plan.jobs(cfg, fake_speeds(cfg)) if j.rule == "evaluate")  # noqa: E731
    n_runs = len(training_runs(paper))
    assert ev(many) - ev(few) == pytest.approx(n_runs * 4000 / (5.0 * plan.INCEPTION_IN_JOB_FACTOR))


def test_prepared_counts_win_over_the_config(paper, tmp_path):
    prep = tmp_path / "results" / "data" / "celeba" / "prepare.json"
    prep.parent.mkdir(parents=True)
    prep.write_text(json.dumps({"split_counts": {"train": 7999, "val": 1000, "test": 1001}}))
    assert plan.dataset_sizes(paper, "celeba")["train"] == 7999
    assert plan.dataset_sizes(paper, "synthetic") == {"train": 1600, "val": 200, "test": 200}


def test_over_budget_stops_with_the_prediction_and_the_biggest_jobs(paper):
    speeds = fake_speeds(paper)
    jobs = plan.jobs(paper, speeds)
    text = plan.format_plan(jobs, speeds)
    assert "biggest jobs:" in text and "predicted" in text
    with pytest.raises(plan.OverBudget, match=r"exceeds --max-hours 0.01; nothing was run"):
        plan.check_budget(jobs, speeds, 0.01, text)
    plan.check_budget(jobs, speeds, 1000, text)  # within budget: no error


def test_wall_time_spreads_job_time_over_the_slots_but_not_below_the_longest_job(paper, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    one_thread = {**fake_speeds(paper), "threads": 1}
    jobs = [plan.Job("train", "a", 100.0), plan.Job("train", "b", 60.0), plan.Job("train", "c", 20.0)]
    assert plan.slots(one_thread) == 2 and plan.wall_seconds(jobs, one_thread) == 100.0
    jobs.append(plan.Job("evaluate", "d", 200.0))
    assert plan.wall_seconds(jobs, one_thread) == 200.0
    assert plan.wall_seconds(jobs, {**one_thread, "threads": 2}) == 380.0
    assert plan.slots({**one_thread, "estimated": True}) == 1  # a planned GPU: its jobs share the one device


def test_plan_command_refuses_over_budget_before_any_work(paper, monkeypatch, capsys, restore_logging):
    from facegen import cli

    monkeypatch.setattr(plan, "measure_speeds", lambda config, device_tflops=None, now=False: fake_speeds(config))
    assert cli.main(["plan", "--config", str(MAIN), "--config", json.dumps({"results_dir": paper["results_dir"]}),
                     "--max-hours", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "exceeds --max-hours 0.01" in err and "biggest jobs" in err
    assert not (ROOT / paper["results_dir"] / "train").exists()


@pytest.fixture
def timings(paper, tmp_path, monkeypatch):
    """measure_speeds with every timer faked and counted, on an empty calibration cache."""
    from facegen import bench
    from facegen.metrics import inception
    from facegen.training import precision

    monkeypatch.setenv("FACEGEN_CACHE_DIR", str(tmp_path / "cache"))
    calls = {"matmul": 0, "modes": 0}

    def matmul(rounds=1):
        calls["matmul"] += 1
        return 100.0 + calls["matmul"]  # each measurement reads differently

    def modes(device="cpu", modes=()):
        calls["modes"] += 1
        return {"seconds_per_image": {"fp32": 0.4, "channels_last": 0.25}}

    auto = {"mode": "channels_last", "threads": 2, "seconds_per_image": {"fp32": 0.2, "channels_last": 0.1}}
    monkeypatch.setattr(bench, "matmul_peak_gflops", matmul)
    monkeypatch.setattr(bench, "bench_model", lambda *a, **k: {"train_img_per_s": 50.0, "sample_img_per_s": 500.0})
    monkeypatch.setattr(inception, "auto_choice", lambda device="cpu": auto)
    monkeypatch.setattr(inception, "measure_modes", modes)
    monkeypatch.setattr(inception, "resolve_mode", lambda mode, device="cpu": "channels_last" if mode == "auto" else mode)
    monkeypatch.setattr(precision, "resolve", lambda spec, device: {"mode": "fp32"})
    monkeypatch.setattr(plan, "startup_seconds", lambda: 3.0)
    monkeypatch.setattr(plan, "cnn_img_per_s", lambda *a, **k: 400.0)
    monkeypatch.setattr(calibration, "cpu_share", lambda measure, threads: (measure(), 1.0))  # an idle machine
    config = cfgmod.load(MAIN, {"results_dir": paper["results_dir"], "job_threads": 2, "evaluation": {"inception_mode": "auto"}})
    return config, calls, auto


def test_inception_speed_comes_from_autos_calibration_on_as_many_threads(timings):
    config, calls, _ = timings
    speeds = plan.measure_speeds(config)
    assert speeds["inception"] == {**speeds["inception"], "mode": "channels_last", "img_per_s": pytest.approx(10.0)}
    assert calls["modes"] == 0  # nothing timed twice


def test_inception_is_timed_again_when_auto_ran_on_other_threads(timings):
    config, calls, auto = timings
    auto["threads"] = 1
    speeds = plan.measure_speeds(config)
    assert calls["modes"] == 1 and speeds["inception"]["img_per_s"] == pytest.approx(4.0)


def test_the_matmul_peak_measured_for_the_calibration_is_the_speed_now(timings):
    config, calls, _ = timings
    first = plan.measure_speeds(config, now=True)
    assert calls["matmul"] == 1 and first["base"]["matmul_gflops_now"] == first["base"]["matmul_gflops"] == 101.0
    # With the calibration cached, "now" is measured afresh and the cached peak is kept beside it.
    again = plan.measure_speeds(config, now=True)
    assert calls["matmul"] == 2 and again["base"]["matmul_gflops"] == 101.0 and again["base"]["matmul_gflops_now"] == 102.0


def test_the_plan_lists_every_job_snakemake_runs(paper):
    """One job list: the plan's jobs are the workflow's DAG (the findings job included), not a second enumeration."""
    from facegen.dvcfile import workflow_jobs

    dag = workflow_jobs(config=paper)
    jobs = plan.jobs(paper, fake_speeds(paper), dag)
    assert [j.rule for j in jobs] == [d["rule"] for d in dag] and "findings" in {j.rule for j in jobs}
    assert len({(j.rule, j.name) for j in jobs}) == len(jobs)
