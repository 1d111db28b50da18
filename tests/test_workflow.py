"""Integration: the test profile through Snakemake, the same stages through DVC, and a DVC push/pull."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import MIRROR, ROOT, copy_project, run_ok, tool_env, tree_hashes
from facegen.config import deep_merge

# One worker runs the tests that share the `built` project (a module fixture is per worker).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workflow")]


def test_the_workflow_tests_share_one_worker(request):
    """Under --dist loadgroup xdist appends each test's group to its node id, and schedules by it. Where
    that fails (pytest 9.2 with xdist 3.8), every worker builds the whole workflow again: CI's time
    doubled without any test failing."""
    if getattr(request.config.option, "loadgroup", False):
        assert request.node.nodeid.endswith("@workflow"), (
            f"pytest-xdist did not group {request.node.nodeid} (pytest {pytest.__version__}), so each worker builds the "
            "workflow; install the pinned test tools: bash scripts/install.sh --test")


def mirror_or_none() -> Path | None:
    return MIRROR if (MIRROR / "SHA256SUMS").exists() else None


# A guard against a hang only, not a speed test: in fresh CI here the Snakemake build took 162 s (through
# the worker) and the DVC build beside it finished 170 s later, about 5.5 minutes in all; 30 is over 5x that.
HANG_GUARD_S = 1800
PROFILE = "config/test.yaml"


def run(cmd, cwd, env, timeout=HANG_GUARD_S):
    return run_ok(cmd, cwd, env, timeout)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The test profile built twice from one commit, by Snakemake and, at the same time in a copy, by DVC:
    DVC runs its stages one at a time, so side by side the two builds keep both cores busy, where one after
    the other DVC left a core idle for minutes. Both run the test profile: Snakemake with --configfile,
    DVC from the dvc.yaml generated for it. Yields the Snakemake project and the running DVC build."""
    mirror = mirror_or_none()
    root = tmp_path_factory.mktemp("workflow")
    proj = copy_project(root / "proj")
    env = tool_env(mirror, weights=True)
    config = deep_merge(yaml.safe_load((proj / "config/config.yaml").read_text()), yaml.safe_load((proj / "config/test.yaml").read_text()))
    if mirror is None:
        for name in config["data"]["only_with_mirror"]:
            config["data"]["datasets"].pop(name)
    run(["facegen", "dvc-yaml", "--configfile", PROFILE, "--write", "dvc.yaml"], proj, env)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qam", "test profile"], proj, env)
    dvc_proj = root / "dvc"
    shutil.copytree(proj, dvc_proj, symlinks=True)  # before any build: no results, as a fresh clone
    dvc_log = (root / "dvc.log").open("w")
    dvc = subprocess.Popen(["dvc", "repro", "--quiet"], cwd=dvc_proj, env=env, stdout=dvc_log, stderr=subprocess.STDOUT, text=True)
    try:
        run(["snakemake", "--cores", "2", "--configfile", PROFILE], proj, env)
        yield proj, env, config, mirror, DvcBuild(dvc, dvc_proj, root / "dvc.log")
    finally:
        if dvc.poll() is None:  # the DVC test was not selected, or failed before waiting
            dvc.kill()
            dvc.wait()
        dvc_log.close()


class DvcBuild:
    """The DVC build started beside Snakemake's; ``wait`` is the hang guard that ``run`` applies."""

    def __init__(self, proc: subprocess.Popen, proj: Path, log: Path):
        self.proc, self.proj, self.log = proc, proj, log

    def wait(self) -> Path:
        rc = self.proc.wait(timeout=HANG_GUARD_S)
        assert rc == 0, f"dvc repro failed:\n{self.log.read_text()[-5000:]}"
        return self.proj


def test_snakemake_test_profile_builds_report(built, tmp_path):
    proj, env, config, mirror, _ = built
    results = proj / config["results_dir"]
    expected = {"synthetic"} | ({"celeba", "utkface"} if mirror else set())
    assert {p.stem for p in (results / "manifests").glob("*.json")} == expected
    for name in expected:
        prep = json.loads((results / "data" / name / "prepare.json").read_text())
        assert prep["n_images"] == sum(prep["split_counts"].values()) > 0
        assert (results / "summary" / f"{name}.png").stat().st_size > 0
    if mirror:
        utk = json.loads((results / "data" / "utkface" / "prepare.json").read_text())
        assert utk["n_images"] == 300 and (results / "data" / "utkface" / "images_gray48.npy").exists()
        celeba = json.loads((results / "data" / "celeba" / "prepare.json").read_text())
        assert celeba["n_images"] == 300
    html = (results / "report" / "paper.html").read_text()
    prov = json.loads((results / "provenance.json").read_text())
    assert prov["config_hash"] in html and prov["git"]["commit"] in html
    evaluated = json.loads((results / "eval" / "synthetic" / "32" / "vae" / "0" / "metrics.json").read_text())
    assert evaluated["protocol"]["n_generated"] == config["evaluation"]["n_generated"] and evaluated["metrics"]["fid"] > 0
    assert "unavailable" in evaluated["metrics"]["inception_score_note"]
    assert "Inception FID against training time" in html and "quoted: HVAE paper" in html
    from facegen.experiments import NAMES
    for name in NAMES:  # every experiment rule ran
        assert (results / "experiments" / name / "table.csv").stat().st_size > 0, name
        assert (results / "experiments" / name / "figure.png").stat().st_size > 0, name
    assert "Latent-space and restoration experiments" in html and "attribute classifier" in html
    disparity = (results / "bias" / "reconstruction_disparity.csv").read_text()
    assert "synthetic/32/vae/0" in disparity and "Bias analysis" in html and "disparity ratio" in html
    assert "imbalance ratio" in html and (results / "bias" / "mean_faces.png").stat().st_size > 0
    assert "vae_balanced" in (results / "bias" / "mitigation.csv").read_text() and "Mitigation ablation" in html
    assert "fairness discrepancy" in html
    assert (results / "eval" / "synthetic" / "32" / "dcgan" / "0" / "samples.npz").stat().st_size > 0
    assert (results / "bias" / "classifier" / "synthetic" / "32" / "classifier.png").stat().st_size > 0
    assert "tone_2" in html and "F1" in html  # the classifier's per-class table, by group name
    mitigation = (results / "bias" / "mitigation.csv").read_text()
    assert "reweight" in mitigation and "reweight, balanced on group" in html
    synth = json.loads((results / "data" / "synthetic" / "prepare.json").read_text())
    assert f"<strong>{synth['n_images']:,}</strong>" in html
    tuned = json.loads((results / "tuning" / "summary.json").read_text())  # the tuning rules ran, against val
    assert tuned["real_split"] == "val" and [v["config"] for v in tuned["verdicts"]] == ["lr1e_3"]
    tuned_run = json.loads((results / "tuning" / "eval" / "synthetic" / "32" / "vae__lr3e_3" / "0" / "metrics.json").read_text())
    assert tuned_run["protocol"]["real_split"] == "val" and "Appendix: recipe tuning" in html and "lr3e_3" in html
    assert (results / "report" / "paper.pdf").read_bytes().startswith(b"%PDF")
    # The findings lead the paper, every verdict marked as smoke data here
    found = json.loads((results / "findings" / "findings.json").read_text())
    assert found["smoke"] and {p["paper"] for p in found["papers"]} >= {"HVAE paper", "VAE-GAN proposal", "Bias"}
    assert html.index('id="abstract"') < html.index('id="findings"') < html.index('id="limitations"') < html.index('id="datasets"')
    assert "(smoke data)" in html and "verdict: <strong>" in html
    run(["snakemake", "--report", str(tmp_path / "snakemake.html"), "--configfile", PROFILE], proj, env)
    assert "paper.html" in (tmp_path / "snakemake.html").read_text(errors="replace")
    # Everything is up to date: a second run has nothing to do.
    again = run(["snakemake", "-n", "--configfile", PROFILE], proj, env)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize("bad, named", [
    ("data:\n  resolutions: [48]\n", ["data.resolutions", "48", "16, 32, 64, 128, 256"]),
    ("models:\n  vaegan_late:\n    params: {fusion: sideways}\n", ["models.vaegan_late.params", "fusion", "'sideways'"]),
])
def test_snakemake_rejects_invalid_config_before_any_work(tmp_path, bad, named):
    proj = copy_project(tmp_path / "proj")
    (proj / "bad.yaml").write_text(bad)
    proc = subprocess.run(["snakemake", "-n", "--configfile", "bad.yaml"], cwd=proj, env=tool_env(None), capture_output=True, text=True)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert all(word in out for word in named), out[-2000:]
    assert not (proj / "results" / "manifests").exists()


def test_dvc_repro_matches_snakemake_and_push_pull_round_trips(built, tmp_path):
    built_proj, env, config, _, dvc = built
    by_snakemake = tree_hashes(built_proj / config["results_dir"])
    # DVC built a copy of the same commit without the results (and Snakemake's records).
    proj = dvc.wait()
    results = proj / config["results_dir"]
    by_dvc = tree_hashes(results)
    assert set(by_dvc) == set(by_snakemake)
    # Files that record measured time or speed (history, model cards, evaluation timings, the plan with
    # the matmul peak measured when the run starts, the tables and report built from them) differ between
    # any two runs; everything else, weights and features included, must be byte-identical.
    timed = {p for p in by_dvc if p.endswith(("history.csv", "model_card.json")) or p == "plan.json"
             or p.startswith(("training/summary", "report/", "evaluation/metrics.csv", "evaluation/per_run.csv", "evaluation/fid_vs_time",
                              "tuning/table.csv", "findings/findings.json"))
             or (p.startswith(("eval/", "tuning/eval/", "experiments/classifier/", "bias/classifier/")) and p.endswith(".json"))}
    assert {p: h for p, h in by_dvc.items() if p not in timed} == {p: h for p, h in by_snakemake.items() if p not in timed}
    assert any(p.endswith("model.pt") for p in by_dvc) and timed
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], proj, env).stdout)
    listed = json.dumps(shown)
    assert "evaluation/metrics.json" in listed and "synthetic/32/vae/0/metrics.json" in listed and '"fid"' in listed
    # dvc plots: the training curves, FID against training time and precision against recall, with their data
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], proj, env)
    page = (tmp_path / "plots" / "index.html").read_text()
    for plot in ("training_loss", "training_kl", "training_d_loss", "fid_vs_training_time", "precision_vs_recall"):
        assert plot in page, plot
    assert '"epoch"' in page and '"fid": "' in page

    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "--default", "testremote", str(remote)], proj, env)
    run(["dvc", "push", "--quiet"], proj, env)
    shutil.rmtree(results)
    shutil.rmtree(proj / ".dvc" / "cache")
    run(["dvc", "pull", "--quiet"], proj, env)
    assert tree_hashes(results) == by_dvc


def test_dvc_exp_run_sets_a_param_and_reruns_only_what_reads_it(built):
    """dvc exp run -S on the generated dvc.yaml: the configure stage takes the config files as params, so a
    changed value reaches the stages whose config slice holds it (here report.smoke: provenance, plan, the
    tuning summary, findings and report; 74 s here), and dvc exp show lists the experiment with the study's
    metrics."""
    _, env, config, _, dvc = built
    proj = dvc.wait()
    results = proj / config["results_dir"]
    assert json.loads((results / "findings" / "findings.json").read_text())["smoke"]
    out = run(["dvc", "exp", "run", "--name", "unmarked", "-S", f"{PROFILE}:report.smoke=false"], proj, env)
    log = out.stdout + out.stderr
    assert "Running stage 'report'" in log and "Running stage 'findings'" in log, log[-3000:]
    assert "Stage 'train-synthetic-32-vae-0' didn't change" in log and "Running stage 'evaluate-" not in log
    assert not json.loads((results / "findings" / "findings.json").read_text())["smoke"]
    assert "(smoke data)" not in (results / "report" / "paper.html").read_text()
    shown = run(["dvc", "exp", "show", "--json"], proj, env).stdout
    assert "unmarked" in shown and "evaluation/metrics.json" in shown


def test_the_committed_dvc_yaml_is_the_generated_one(tmp_path):
    """dvc.yaml is the paper config's Snakemake jobs (facegen.dvcfile); a change to the matrix or the rules
    must regenerate it. Built in a copy of the project: the jobs depend on the mirror, which this test
    hides, as the paper's datasets do not."""
    proj = copy_project(tmp_path / "proj")
    generated = run(["facegen", "dvc-yaml"], proj, tool_env(None)).stdout
    assert (ROOT / "dvc.yaml").read_text() == generated, "dvc.yaml is stale: run `facegen dvc-yaml --write dvc.yaml`"
    stages = yaml.safe_load(generated)["stages"]
    assert "train-celeba-32-vae-0" in stages and "configure" in stages and not (ROOT / "config/runs.yaml").exists()
    train = stages["train-celeba-32-vae-0"]
    assert train["cmd"].startswith("facegen train celeba 32 vae 0 --config build/dvc/train-celeba-32-vae-0.json ")
    assert train["deps"][0] == "build/dvc/train-celeba-32-vae-0.json" and {"build/dvc/train-celeba-32-vae-0.json": {"cache": False}} in stages["configure"]["outs"]
