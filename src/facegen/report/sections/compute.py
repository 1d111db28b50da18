"""The compute section: what the study cost on the machine that ran it, stage by stage, beside what
`facegen plan` predicted before the jobs ran, and the total scaled to the reference machine.

Measured times come from Snakemake's benchmark files (logs/benchmarks/**.tsv: wall seconds and CPU
seconds per job); DVC writes none, so under DVC the section says so instead of guessing. Where the jobs
ran in the facegen worker (`job_worker: true`), a benchmark saw only the client process: its wall time
holds, its CPU time does not, and the section reports CPU time as unavailable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facegen.io import read_json

NAME = "compute"
TITLE = "Compute"

# The machine the 2-hour budget is stated for: 2 cores of a Zen 3 EPYC, whose best fp32 matmul reads
# about 190 GFLOP/s on 2 threads (`facegen bench train`), 95 per thread. A run elsewhere is scaled by
# the ratio of the plan's measured matmul speed to this.
REFERENCE_GFLOPS_PER_THREAD = 95.0

# Stage of a plan rule, and of a benchmark file by its path under logs/benchmarks/.
RULE_STAGES = {"fetch": "fetch", "prepare": "prepare", "summarize": "summarize",
               "train": "train", "real_features": "real features", "real_floor": "real features", "evaluate": "evaluate",
               "attribute_classifier": "classifiers", "demographic_classifier": "classifiers", "plan": "plan"}


def rule_stage(rule: str) -> str:
    if rule in RULE_STAGES:
        return RULE_STAGES[rule]
    if rule.startswith("prepare_"):
        return "prepare"
    if rule.startswith("experiment_"):
        return "experiments"
    if rule.startswith("bias_"):
        return "bias"
    if rule.startswith("tuning"):
        return "tuning"
    return "summaries and report"


def benchmark_stage(rel: Path) -> str:
    parts = rel.parts
    first = parts[0].removesuffix(".tsv")
    if first == "eval":
        return "real features" if parts[1] == "real" else "evaluate"
    if first in ("experiments", "bias") and len(parts) > 1 and parts[1] == "classifier":
        return "classifiers"
    if first in ("experiments", "bias"):
        return first
    return rule_stage(first)


def paths(config: dict) -> dict[str, Path]:
    from facegen.paths import plan

    return {"plan": plan(config), "benchmarks": Path(config["logs_dir"]) / "benchmarks"}


def inputs(config: dict) -> list[Path]:
    """The plan, once there are runs to plan (a data-only study has nothing to predict)."""
    from facegen.training.matrix import active_runs

    return [paths(config)["plan"]] if active_runs(config) else []


def measured(benchmarks: Path) -> pd.DataFrame:
    """One row per job: stage, wall and CPU seconds, and when it ended (the file's time)."""
    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if table.empty:
            continue
        rows.append({"stage": benchmark_stage(path.relative_to(benchmarks)), "job": str(path.relative_to(benchmarks)),
                     "wall_s": float(table["s"].iloc[-1]), "cpu_s": float(table["cpu_time"].iloc[-1]),
                     "ended": path.stat().st_mtime})
    return pd.DataFrame(rows, columns=["stage", "job", "wall_s", "cpu_s", "ended"])


def context(config: dict, results: Path) -> dict:
    p = paths(config)
    plan = read_json(p["plan"]) if p["plan"].is_file() else None
    jobs = measured(p["benchmarks"])
    predicted = pd.DataFrame(plan["jobs"]) if plan else pd.DataFrame(columns=["rule", "seconds"])
    predicted["stage"] = [rule_stage(r) for r in predicted["rule"]]
    pred = predicted.groupby("stage")["seconds"].agg(["sum"])
    meas = jobs.groupby("stage").agg(jobs=("wall_s", "size"), wall=("wall_s", "sum"), cpu=("cpu_s", "sum"))
    stages = sorted(set(pred.index) | set(meas.index), key=lambda s: -max(meas["wall"].get(s, 0), pred["sum"].get(s, 0)))
    rows = [{"stage": s, "jobs": int(meas["jobs"].get(s, 0)), "wall_min": meas["wall"].get(s, 0) / 60,
             "cpu_min": meas["cpu"].get(s, 0) / 60, "predicted_min": pred["sum"].get(s, float("nan")) / 60}
            for s in stages]
    elapsed = float((jobs["ended"].max() - (jobs["ended"] - jobs["wall_s"]).min())) if len(jobs) else None
    out = {"rows": rows, "n_jobs": len(jobs), "has_benchmarks": bool(len(jobs)), "plan": None,
           "elapsed_min": elapsed / 60 if elapsed else None, "job_wall_min": float(jobs["wall_s"].sum()) / 60,
           "job_cpu_min": float(jobs["cpu_s"].sum()) / 60, "reference_gflops": REFERENCE_GFLOPS_PER_THREAD,
           "cpu_measured": not config.get("job_worker", False)}
    if plan:
        base, threads = plan["speeds"]["base"], plan["speeds"]["threads"]
        # The peak measured when the study started, where the plan job measured it, else the cached one.
        at_start = base.get("matmul_gflops_now")
        speed = (at_start or base["matmul_gflops"]) / (REFERENCE_GFLOPS_PER_THREAD * threads)
        out["plan"] = {"wall_min": plan["wall_seconds"] / 60, "job_min": plan["job_seconds"] / 60, "slots": plan["slots"],
                       "threads": threads, "matmul_gflops": base["matmul_gflops"], "speed": speed,
                       "matmul_gflops_now": at_start,
                       "inception_mode": plan["speeds"]["inception"]["mode"],
                       "inception_ips": plan["speeds"]["inception"]["img_per_s"],
                       "estimated": plan["speeds"].get("estimated", False)}
        if elapsed:
            out["scaled_min"] = elapsed / 60 * speed
            out["error_pct"] = 100 * (plan["wall_seconds"] - elapsed) / elapsed
    return out
