"""The report's compute section: measured stage times from benchmark files beside the plan's prediction."""

import json
import os

import pytest

from facegen.report.sections import compute


def bench(path, seconds, cpu, ended):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n")
    os.utime(path, (ended, ended))


@pytest.fixture
def config(tmp_path):
    return {"results_dir": str(tmp_path / "results"), "logs_dir": str(tmp_path / "logs")}


def test_stages_of_rules_and_benchmark_files_agree():
    from pathlib import Path

    pairs = [("train", "train/celeba/32/vae/0.tsv"), ("evaluate", "eval/celeba/32/vae/0.tsv"),
             ("real_features", "eval/real/celeba/32/train.tsv"), ("real_floor", "eval/real/celeba/32/floor_val.tsv"),
             ("experiment_postprocess", "experiments/postprocess.tsv"), ("attribute_classifier", "experiments/classifier/celeba/32.tsv"),
             ("demographic_classifier", "bias/classifier/utkface/gray48.tsv"), ("bias_generation", "bias/generation.tsv"),
             ("prepare", "prepare/celeba.tsv"), ("report", "report.tsv"), ("evaluation_summary", "evaluation_summary.tsv"),
             ("tuning_train", "tuning/train/celeba/32/vae__lr1e_3/0.tsv"), ("tuning_evaluate", "tuning/eval/celeba/32/vae__lr1e_3/0.tsv"),
             ("tuning_real_features", "tuning/eval/real/celeba/32/val.tsv"), ("tuning_summary", "tuning_summary.tsv")]
    for rule, rel in pairs:
        assert compute.rule_stage(rule) == compute.benchmark_stage(Path(rel)), rule


def test_measured_beside_predicted_and_scaled_to_the_reference(config, tmp_path):
    logs = tmp_path / "logs" / "benchmarks"
    bench(logs / "train/celeba/32/vae/0.tsv", 600, 590, 1000 + 600)   # ran 1000..1600
    bench(logs / "eval/celeba/32/vae/0.tsv", 300, 280, 1900)          # ran 1600..1900
    bench(logs / "prepare/celeba.tsv", 60, 55, 1000)                  # ran 940..1000
    plan = {"jobs": [{"rule": "train", "seconds": 500}, {"rule": "evaluate", "seconds": 400}, {"rule": "prepare", "seconds": 60}],
            "speeds": {"base": {"matmul_gflops": 47.5}, "threads": 1, "inception": {"mode": "channels_last", "img_per_s": 5.0}},
            "slots": 1, "job_seconds": 960, "wall_seconds": 960}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "plan.json").write_text(json.dumps(plan))
    ctx = compute.context(config, tmp_path / "results")
    rows = {r["stage"]: r for r in ctx["rows"]}
    assert rows["train"]["wall_min"] == 10 and rows["train"]["predicted_min"] == pytest.approx(500 / 60)
    assert rows["evaluate"]["cpu_min"] == pytest.approx(280 / 60)
    assert ctx["elapsed_min"] == pytest.approx(960 / 60) and ctx["job_wall_min"] == pytest.approx(16)
    assert ctx["plan"]["speed"] == pytest.approx(0.5)  # half the reference's 95 GFLOP/s per thread
    assert ctx["scaled_min"] == pytest.approx(8.0) and ctx["error_pct"] == pytest.approx(0.0)
    # The peak the plan job measured when the study started wins over the cached calibration.
    plan["speeds"]["base"]["matmul_gflops_now"] = 190.0
    (tmp_path / "results" / "plan.json").write_text(json.dumps(plan))
    ctx = compute.context(config, tmp_path / "results")
    assert ctx["plan"]["speed"] == pytest.approx(2.0) and ctx["scaled_min"] == pytest.approx(32.0)
    from facegen.report import _environment

    for kind in ("html", "tex"):
        text = _environment(kind).get_template(f"compute.{kind}.j2").render(section=ctx)
        assert "When the study started, the fp32 matmul peak read 190 GFLOP/s on 1 thread" in text
    # A plan above the measured time says so in words (the paper printed "against the plan's 112.4: +8%").
    plan["wall_seconds"] = 960 * 1.08
    (tmp_path / "results" / "plan.json").write_text(json.dumps(plan))
    ctx = compute.context(config, tmp_path / "results")
    for kind in ("html", "tex"):
        text = " ".join(_environment(kind).get_template(f"compute.{kind}.j2").render(section=ctx).split())
        assert "8% above the measured time" in text.replace("\\%", "%"), text


def test_without_benchmarks_or_plan_the_section_says_so(config, tmp_path):
    ctx = compute.context(config, tmp_path / "results")
    assert not ctx["has_benchmarks"] and ctx["plan"] is None and ctx["rows"] == []


def test_jobs_run_by_the_worker_report_wall_time_and_no_cpu_time(config, tmp_path):
    """Snakemake's benchmark sees only the worker's client process: its CPU time is not the job's."""
    bench(tmp_path / "logs" / "benchmarks" / "train/celeba/32/vae/0.tsv", 5, 0.1, 1000)
    ctx = compute.context({**config, "job_worker": True}, tmp_path / "results")
    assert not ctx["cpu_measured"] and ctx["job_wall_min"] == pytest.approx(5 / 60)
    from facegen.report import _environment

    for kind in ("html", "tex"):
        text = " ".join(_environment(kind).get_template(f"compute.{kind}.j2").render(section=ctx).split())
        assert "CPU time is unavailable: the jobs ran in the facegen worker" in text and "of CPU time" not in text
        assert "n/a" in text and "0.0" not in text.split("CPU min")[1]
    assert compute.context(config, tmp_path / "results")["cpu_measured"]
