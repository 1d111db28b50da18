"""The study on a cluster: the quick profile's jobs through a real single-node SLURM (profiles/slurm), and the
SLURM profile's resources on the paper and GPU configs."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, copy_project, run_ok, tool_env, tree_hashes

# Its own xdist group: the SLURM build mostly waits on the scheduler's polling, so it runs on the other
# worker beside the workflow group's builds (tests/test_workflow.py) instead of after them on theirs.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

# A guard against a hang only: the SLURM build took 143 s in fresh CI here, its local twin about 40 s.
HANG_GUARD_S = 1200
PROFILE = "config/test.yaml"


def slurm_missing() -> str | None:
    """Why the local SLURM cluster cannot start here, or None."""
    missing = [t for t in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(t) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): bash scripts/install.sh --test installs it"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd starts jobs as their user)"
    return None


@pytest.fixture
def slurm_cluster(tmp_path):
    """A single-node SLURM on localhost (scripts/slurm-local.sh), stopped afterwards."""
    reason = slurm_missing()
    if reason:
        pytest.skip(reason)
    state = tmp_path / "slurm"
    script = str(ROOT / "scripts" / "slurm-local.sh")
    out = subprocess.run(["bash", script, "start", str(state)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    try:
        yield state / "slurm.conf"
    finally:
        subprocess.run(["bash", script, "stop", str(state)], capture_output=True, timeout=60)


# One training run and its evaluation, with everything upstream (fetch, prepare, real features): every
# kind of job the study's stages are made of, through sbatch, in about 5 jobs of the quick profile.
SLURM_TARGETS = ["results/test/eval/synthetic/32/vae/0/metrics.json"]


def test_a_training_run_and_its_evaluation_through_slurm_equal_the_local_run(slurm_cluster, tmp_path):
    """profiles/slurm submits each job with sbatch to a real slurmctld; the files it makes are a local
    run's of the same targets, byte for byte (the timed records aside)."""
    env = tool_env(None, weights=True)
    local_proj, proj = copy_project(tmp_path / "local"), copy_project(tmp_path / "slurm")
    # The local twin runs on one core while the SLURM jobs mostly wait for the scheduler's polling.
    local_log = (tmp_path / "local.log").open("w")
    local = subprocess.Popen(["snakemake", *SLURM_TARGETS, "--cores", "1", "--configfile", PROFILE], cwd=local_proj, env=env,
                             stdout=local_log, stderr=subprocess.STDOUT)
    try:
        # The plugin polls squeue 5 s after a submission, then 10 s later each time, up to 180 s.
        proc = run_ok(["snakemake", "--profile", "profiles/slurm", "--configfile", PROFILE, "--slurm-init-seconds-before-status-checks", "5",
                       *SLURM_TARGETS], proj, {**env, "SLURM_CONF": str(slurm_cluster)}, HANG_GUARD_S)
        assert local.wait(timeout=HANG_GUARD_S) == 0, (tmp_path / "local.log").read_text()[-5000:]
    finally:
        if local.poll() is None:
            local.kill()
            local.wait()
        local_log.close()
    submitted = set(re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/(rule_\w+)/", proc.stdout + proc.stderr))
    assert submitted >= {"rule_fetch", "rule_prepare_synthetic", "rule_real_features", "rule_train", "rule_evaluate"}, submitted
    by_slurm = tree_hashes(proj / "results/test")
    by_local = tree_hashes(local_proj / "results/test")
    compared = {p for p in by_slurm if p.endswith((".npy", ".npz", ".pt", ".parquet"))}
    assert any(p.endswith("model.pt") for p in compared) and any(p.endswith("samples.npz") for p in compared)
    assert {p: by_slurm[p] for p in compared} == {p: by_local.get(p) for p in compared}


def test_the_slurm_profile_plans_the_paper(tmp_path):
    """snakemake --profile profiles/slurm -n: the profile and the rules' resources resolve for the paper
    config without a scheduler, and every job asks for memory and a runtime; config/gpu.yaml adds a GPU
    to training and evaluation only."""
    env, proj = tool_env(None), copy_project(tmp_path / "proj")
    out = run_ok(["snakemake", "--profile", "profiles/slurm", "-n"], proj, env, HANG_GUARD_S).stdout
    sized = yaml.safe_load((ROOT / "workflow" / "resources.yaml").read_text())["rules"]  # facegen resources wrote it
    for rule in ("train", "evaluate"):
        assert f"runtime={sized[rule]['runtime']}" in out and f"mem_mb={sized[rule]['mem_mb']}" in out, rule
    assert "gpu=" not in out
    gpu = run_ok(["snakemake", "--profile", "profiles/slurm", "-n", "--configfile", "config/gpu.yaml"], proj, env, HANG_GUARD_S).stdout
    blocks = [b for b in gpu.split("\n\n") if "resources:" in b]
    with_gpu = {b.split("rule ")[1].split(":")[0] for b in blocks if "gpu=1" in b and "rule " in b}
    assert with_gpu and with_gpu <= {"train", "evaluate", "tuning_train", "tuning_evaluate"}
