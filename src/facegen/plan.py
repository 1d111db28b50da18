"""`facegen plan`: the jobs a config will run, and each job's predicted minutes on this machine, before
any work starts.

A prediction is counted work divided by a speed measured here, plus a job's start-up:

* training: images seen (epochs x training images) / the img/s of the run's own model, timed for a few
  steps at its batch size and thread count (``facegen.training.timing.bench_model``), plus its per-epoch monitor;
* Inception (real features, evaluation, experiments): images embedded / the img/s of the arithmetic
  that ``inception_mode`` resolves to (the cached calibration of ``facegen.metrics.inception``);
* classifiers: epochs x images / the img/s of their CNN, timed the same way;
* KID: its counted kernel FLOPs / the fp32 matmul peak measured here;
* every job: the start-up (interpreter and imports) of one CLI call, measured once.

A few small costs are fixed allowances, not calibrated per machine, and are named as such below:
fetching, preparing (PREPARE_IMG_PER_S), an evaluation's non-Inception work, an experiment's or a bias
step's per-run work, the PDF build, and the slowdown of Inception beside another job. Those with
measured values come from one paper run on the 2-core reference machine; together they are about a
tenth of the paper's two hours, so a machine twice as fast or slow moves the total by a few minutes.

Speeds are cached per machine (``facegen.calibration``), so a second plan costs nothing. With a CUDA
device in the config and none at hand, training and Inception come from counted FLOPs and the
device's peak (``--device-tflops``), at an assumed efficiency, and the plan says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

from facegen.metrics.spaces import SPACES
from facegen.views import TrainingView

INCEPTION_DIM = 2048  # KID's kernels are computed on Inception's pool3 features

log = logging.getLogger(__name__)

ASSUMED_GPU_EFFICIENCY = 0.3  # share of a GPU's peak that small conv nets reach; used only without a GPU
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
# Fixed allowances (not measured): the report renders HTML and runs pdflatex twice; prepare decodes and
# resizes (CelebA about 2,000 img/s here, UTKFace's 200x200 JPEGs with the gray48 variant about 650);
# an evaluation's reconstruction, LPIPS and likelihood work; an experiment's model load and figure per run.
# The figures in seconds were measured in the paper run of 2026-12-01 (logs/benchmarks) on the paper config.
REPORT_SECONDS = 30.0
FETCH_SECONDS = 2.0
PREPARE_IMG_PER_S = 1000.0
EVALUATE_EXTRA_SECONDS = 5.0
EXPERIMENT_SECONDS_PER_RUN = {"attributes": 30.0, "restoration": 14.0, "latent_map": 10.0}  # others: DEFAULT
DEFAULT_EXPERIMENT_SECONDS_PER_RUN = 3.0
BIAS_SECONDS_PER_LABELLED_RUN = {"bias_generation": 3.6, "bias_reconstruction": 1.2}
# Inception inside a job, beside another job on the other core, ran at 0.69 of the calibration's solo
# speed (real_floor logged 3.4 img/s against 4.9): shared cache and memory bandwidth, plus the resize to
# 299 that the calibration leaves out. Every Inception term is scaled by it.
INCEPTION_IN_JOB_FACTOR = 0.69


@dataclasses.dataclass
class Job:
    rule: str
    name: str
    seconds: float
    detail: str = ""


def dataset_sizes(config: dict, name: str) -> dict[str, int]:
    """Images per split: from prepare.json when the dataset is prepared, else from its config."""
    from facegen.data import kind_module
    from facegen.data.prepared import PREPARE_RECORD, PreparedDataset

    prep = PreparedDataset.of(config, name).root / PREPARE_RECORD
    if prep.is_file():
        return json.loads(prep.read_text())["split_counts"]
    ds = config["data"]["datasets"][name]
    # before a dataset is prepared (prepare.json wins once it exists): the mirror's count, else the kind's full size
    n = ds.get("n") if ds["kind"] == "synthetic" else mirror_size(config, ds["kind"]) or getattr(kind_module(ds["kind"]), "FULL_SIZE", 1000)
    if ds.get("limit"):
        n = min(n, ds["limit"])
    split = ds.get("split") or [8, 1, 1]
    total = sum(split)
    return {s: int(n * f / total) for s, f in zip(("train", "val", "test"), split)}


def mirror_size(config: dict, kind: str) -> int | None:
    """CelebA images in a local mirror: the first line of its attribute file counts them."""
    import os

    mirror = config["data"].get("mirror") or os.environ.get("FACEGEN_DATA_MIRROR")
    attrs = Path(mirror) / "celeba" / "list_attr_celeba.txt" if mirror and kind == "celeba" else None
    if attrs is None or not attrs.is_file():
        return None
    with open(attrs) as fh:
        return int(fh.readline().split()[0])


def startup_seconds() -> float:
    """Wall time of one CLI job's interpreter start and heaviest imports: this process's own, from its
    creation to having imported them (the plan job needs them too, so a second interpreter that imports
    them again would cost another 5-7 s on a fresh machine and measure the same)."""
    import psutil

    import facegen.evaluation.run  # noqa: F401
    import facegen.experiments.common  # noqa: F401
    import facegen.training.run  # noqa: F401

    return time.time() - psutil.Process().create_time()


def cnn_img_per_s(model, channels: int, size: int, batch: int = 64, steps: int = 3) -> float:
    """Training img/s of a classifier CNN (forward, backward, AdamW step) at its input size."""
    import torch

    from facegen.training.timing import timed

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, channels, size, size)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = sum(v.float().pow(2).mean() for v in out.values()) if isinstance(out, dict) else out.pow(2).mean()
        loss.backward()
        opt.step()

    return batch / timed(step, 1, steps, rounds=1, min_seconds=0.5)


def _model_key(spec: dict, threads: int) -> str:
    from facegen.training.precision import model_key

    return json.dumps({**json.loads(model_key(spec, threads)), "precision": TrainingView(spec["training"]).precision},
                      sort_keys=True)


def measure_speeds(config: dict, device: str = "cpu", device_tflops: float | None = None, now: bool = False) -> dict:
    """The speeds a plan needs on this machine, each cached per machine (and per model spec).

    ``device_tflops``: estimate training, sampling, classifiers and Inception from counted FLOPs at
    ASSUMED_GPU_EFFICIENCY of that peak instead of timing them (a GPU profile planned without the GPU).
    ``now``: also measure the fp32 matmul peak afresh (base.matmul_gflops_now, a few seconds): the
    machine's speed when the study starts, which drifts from the cached calibration by up to 2x from day
    to day and is what the report scales the measured time by."""
    import torch

    from facegen.bench import bench_model, matmul_peak_gflops
    from facegen.bias.selection import classifier_sources
    from facegen.face_classifiers import AttributeCNN, DemographicCNN
    from facegen.calibration import cached_choice
    from facegen.experiments.selection import classifier_sets
    from facegen.metrics import inception
    from facegen.models import build_model
    from facegen.training.card import flops_per_image
    from facegen.training.matrix import training_runs
    from facegen.training.precision import resolve as resolve_precision
    from facegen.training.matrix import run_spec
    from facegen.worker import in_worker

    if config["job_threads"] != "auto":
        torch.set_num_threads(int(config["job_threads"]))
    threads = torch.get_num_threads()
    measured = []

    def calibrate_base():
        measured.append(True)
        return {"startup_seconds": startup_seconds(), "matmul_gflops": matmul_peak_gflops(rounds=1)}

    # A job the warm worker forks starts in milliseconds, a fresh process in seconds: two records.
    base = cached_choice(f"plan-base-t{threads}{'-worker' if in_worker() else ''}", device, calibrate_base,
                         speed_threads=threads)
    if now:  # a calibration measured just now is already the speed at the start
        base = {**base, "matmul_gflops_now": base["matmul_gflops"] if measured else matmul_peak_gflops(rounds=1)}
    flops_per_s = device_tflops * 1e12 * ASSUMED_GPU_EFFICIENCY if device_tflops else None
    if flops_per_s:
        gflop = SPACES["inception"].gflop(config["evaluation"])
        inc = {"mode": f"estimated from {gflop} GFLOP/image", "img_per_s": flops_per_s / (gflop * 1e9)}
    else:
        mode = inception.resolve_mode(config["evaluation"]["inception_mode"], device)
        modes = ("fp32", mode) if mode != "fp32" else ("fp32",)

        def inception_speed():
            # auto's choice timed every mode here: on as many threads, its time for the chosen mode is this speed
            if config["evaluation"]["inception_mode"] == "auto":
                choice = inception.auto_choice(device)
                if choice.get("threads") == threads:
                    return {"mode": mode, "img_per_s": 1 / choice["seconds_per_image"][mode]}
            return {"mode": mode, "img_per_s": 1 / inception.measure_modes(device, modes=modes)["seconds_per_image"][mode]}

        inc = cached_choice(f"inception-speed-{mode}-t{threads}", device, inception_speed, speed_threads=threads)
    from facegen.tuning import tuning_study

    models = {}
    studies = (config, tuning_study(config))
    for study, run in ((st, r) for st in studies for r in training_runs(st)):
        spec = run_spec(study, run["dataset"], run["resolution"], run["model"], run["seed"])
        key = _model_key(spec, threads)
        if key in models:
            continue
        params = json.loads(key)["params"]
        if flops_per_s:
            model = build_model(spec["arch"], spec["resolution"], **params)
            labels = torch.zeros(1, model.n_cond).numpy() if model.conditional else None
            flops = flops_per_image(model, spec["resolution"], spec["training"]["batch_size"], labels)
            models[key] = {"train_img_per_s": flops_per_s / flops["train_flops_per_image"],
                           "sample_img_per_s": flops_per_s / flops["sample_flops_per_image"], "estimated": True}
            continue
        # The arithmetic the run will use (for auto, resolving it times the candidates once and caches
        # the choice, which the training job then reads).
        mode = resolve_precision(spec, device)["mode"]
        tag = f"train-{spec['arch']}-{mode}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
        models[key] = cached_choice(tag, device, lambda s=spec, p=params, m=mode: bench_model(
            s["arch"], s["resolution"], s["training"]["batch_size"], m, steps=3, params=p,
            optimizer=s["training"]["optimizer"], rounds=1, min_seconds=0.5), speed_threads=threads)
    needed = {f"attribute-{c['resolution']}": (AttributeCNN(5), 3, c["resolution"]) for c in classifier_sets(config)}
    for src in classifier_sources(config):
        gray = src["source"] == "gray48"
        side = 48 if gray else int(src["source"])
        needed[f"demographic-{side}"] = (DemographicCNN(1 if gray else 3, {"age": 116, "gender": 2, "race": 5}, side),
                                         1 if gray else 3, side)
    classifiers = {}
    for name, (net, channels, side) in needed.items():
        if flops_per_s:  # a few MFLOPs per image: start-up dominates these jobs on a GPU
            classifiers[name] = {"img_per_s": flops_per_s / 1e9}
            continue
        classifiers[name] = cached_choice(f"classifier-{name}-t{threads}", device,
                                          lambda n=net, c=channels, s=side: {"img_per_s": cnn_img_per_s(n, c, s)},
                                          speed_threads=threads)
    return {"base": base, "inception": inc, "models": models, "classifiers": classifiers, "threads": threads,
            "estimated": bool(flops_per_s), "device_tflops": device_tflops}


def training_images(spec: dict, sizes: dict) -> tuple[int, int]:
    """(epochs, images per epoch) of a run spec: its max_images, at most its dataset's train split."""
    t = TrainingView(spec["training"])
    return t.epochs, min(sizes[spec["dataset"]]["train"], t.max_images or 10**12)


def _train_seconds(config: dict, run: dict, speeds: dict, sizes: dict) -> tuple[float, str]:
    from facegen.models import model_class
    from facegen.training.matrix import run_spec

    spec = run_spec(config, run["dataset"], run["resolution"], run["model"], run["seed"])
    t = TrainingView(spec["training"])
    bench = speeds["models"][_model_key(spec, speeds["threads"])]
    epochs, n = training_images(spec, sizes)
    # the prior's approximate-FID monitor runs only where training.run.approx_fid_monitor runs it
    monitored_epochs = -(-epochs // t.monitor_every) if model_class(spec["arch"]).latent_density() else 0
    monitor = monitored_epochs * t.monitor_images / bench["sample_img_per_s"]
    return epochs * n / bench["train_img_per_s"] + monitor, f"{epochs} epochs x {n:,} images at {bench['train_img_per_s']:.0f} img/s"


def jobs(config: dict, speeds: dict, dag: list[dict] | None = None) -> list[Job]:
    """Every job Snakemake runs for ``config``, read from its DAG (facegen.dvcfile.workflow_jobs, the list
    dvc.yaml is made from), each with the predicted seconds of its rule's cost model; a rule with no
    cost model costs one start-up. The tuning's jobs are the same rules under a tuning_ prefix, costed
    against the tuning study."""
    from facegen.bias.selection import labelled_runs
    from facegen.config import active_datasets
    from facegen.dvcfile import workflow_jobs
    from facegen.experiments.selection import selected_runs
    from facegen.metrics.spaces import active
    from facegen.tuning import tuning_study

    dag = workflow_jobs(config=config) if dag is None else dag
    start = speeds["base"]["startup_seconds"]
    inc_ips = speeds["inception"]["img_per_s"] * (1.0 if speeds.get("estimated") else INCEPTION_IN_JOB_FACTOR)
    gflops = speeds["base"]["matmul_gflops"]
    sizes = {d: dataset_sizes(config, d) for d in active_datasets(config)}
    ev, ex, bias = config["evaluation"], config["latent_experiments"], config["bias"]
    studies = {"": config, "tuning_": tuning_study(config)}
    # KID's three kernel matrices per subset, in the Inception space
    kid = ev["kid_subsets"] * 3 * ev["kid_subset_size"] ** 2 * INCEPTION_DIM * 2 / (gflops * 1e9)
    # Every active space's network, at Inception's measured speed scaled by its FLOPs; one that is not
    # cached here is planned as unavailable (no time), as the jobs will report it unless it downloads.
    embedded = [s for s in active(ev) if s.missing(ev) is None]
    feat_ips = inc_ips / sum(s.gflop(ev) / SPACES["inception"].gflop(ev) for s in embedded)
    n_selected, n_labelled = len(selected_runs(config)), len(labelled_runs(config))

    def real(w, n_key):
        n = min(ev[n_key], sizes[w["dataset"]][w["split"]])
        return start + n / feat_ips, f"{n:,} images at {feat_ips:.1f} img/s"

    def train(w, study):
        seconds, detail = _train_seconds(study, _run(w), speeds, sizes)
        return start + seconds, detail

    def evaluate(w, study):
        return (start + ev["n_generated"] / feat_ips + kid + EVALUATE_EXTRA_SECONDS,
                f"{ev['n_generated']:,} samples through {', '.join(s.label for s in embedded)}")

    def attribute_classifier(w, study):
        n = sizes[w["dataset"]]["train"]
        ips = speeds["classifiers"][f"attribute-{w['resolution']}"]["img_per_s"]
        return start + ex["attributes"]["classifier_epochs"] * n / ips, f"{n:,} images at {ips:.0f} img/s"

    def demographic_classifier(w, study):
        n = min(sizes[w["dataset"]]["train"], bias["classifier"]["max_images"] or 10**12)
        side = 48 if w["source"] == "gray48" else int(w["source"])
        ips = speeds["classifiers"][f"demographic-{side}"]["img_per_s"]
        return (start + bias["classifier"]["epochs"] * n / ips,
                f"{bias['classifier']['epochs']} epochs x {n:,} images at {ips:.0f} img/s")

    def experiment(name):
        images = 0
        if name == "postprocess":
            images = ex["postprocess"]["n"] * 5 * n_selected
        elif name == "variations":
            images = ex["variations"]["n_inputs"] * (1 + 2 * ex["variations"]["k"]) * n_selected
        per_run = EXPERIMENT_SECONDS_PER_RUN.get(name, DEFAULT_EXPERIMENT_SECONDS_PER_RUN)
        return start + per_run * n_selected + images / inc_ips, f"{images:,} Inception images" if images else ""

    costs = {"fetch": lambda w, study: (FETCH_SECONDS, ""),
             "real_features": lambda w, study: real(w, "n_real"), "real_floor": lambda w, study: real(w, "n_generated"),
             "train": train, "evaluate": evaluate, "attribute_classifier": attribute_classifier,
             "demographic_classifier": demographic_classifier, "report": lambda w, study: (start + REPORT_SECONDS, "")}
    out = []
    for job in dag:
        rule, w = job["rule"], job["wildcards"]
        prefix = "tuning_" if rule.startswith("tuning_") and rule != "tuning_summary" else ""
        base = rule.removeprefix(prefix)
        if base in costs:
            seconds, detail = costs[base](w, studies[prefix])
        elif base.startswith("prepare_"):  # one rule per dataset (workflow/rules/data.smk)
            w = {"dataset": base.removeprefix("prepare_")}
            n = sum(sizes[w["dataset"]].values())
            seconds, detail = start + n / PREPARE_IMG_PER_S, f"{n:,} images"
        elif base.startswith("experiment_"):
            seconds, detail = experiment(base.removeprefix("experiment_"))
        else:
            seconds, detail = start + BIAS_SECONDS_PER_LABELLED_RUN.get(base, 0.0) * n_labelled, ""
        out.append(Job(rule, "/".join(str(v) for v in w.values()), seconds, detail))
    return out


def _run(wildcards: dict) -> dict:
    return {"dataset": wildcards["dataset"], "resolution": int(wildcards["resolution"]), "model": wildcards["model"],
            "seed": int(wildcards["seed"])}


def slots(speeds: dict) -> int:
    """Jobs that run side by side: the cores over each job's threads (Snakemake caps --cores at the cores),
    or one for a planned device, which its jobs share."""
    import os

    if speeds.get("estimated"):
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, speeds["threads"]))


def wall_seconds(planned: list[Job], speeds: dict) -> float:
    """Predicted wall time: the job-seconds spread over the slots, but never less than the longest job."""
    return max(max((j.seconds for j in planned), default=0.0), sum(j.seconds for j in planned) / slots(speeds))


def format_plan(planned: list[Job], speeds: dict) -> str:
    total = wall_seconds(planned, speeds)
    how = (f"estimated from counted FLOPs at {ASSUMED_GPU_EFFICIENCY:.0%} of {speeds['device_tflops']} TFLOP/s, "
           "not measured: no such device here" if speeds.get("estimated") else "measured on this machine")
    lines = [f"{len(planned)} jobs, predicted {total / 60:.1f} min ({total / 3600:.2f} h) of wall time with {slots(speeds)} "
             f"job(s) side by side ({sum(j.seconds for j in planned) / 60:.1f} job-minutes), {how} "
             f"(start-up {speeds['base']['startup_seconds']:.1f} s per job, Inception {speeds['inception']['img_per_s']:.1f} img/s "
             f"in {speeds['inception']['mode']}, fp32 matmul {speeds['base']['matmul_gflops']:.0f} GFLOP/s, "
             f"{speeds['threads']} threads)", ""]
    by_rule: dict[str, list[Job]] = {}
    for j in planned:
        by_rule.setdefault(j.rule, []).append(j)
    lines.append(f"{'rule':<24} {'jobs':>5} {'minutes':>8}")
    for rule, js in sorted(by_rule.items(), key=lambda kv: -sum(j.seconds for j in kv[1])):
        lines.append(f"{rule:<24} {len(js):>5} {sum(j.seconds for j in js) / 60:>8.1f}")
    lines += ["", "biggest jobs:"]
    for j in sorted(planned, key=lambda j: -j.seconds)[:10]:
        lines.append(f"  {j.seconds / 60:6.1f} min  {j.rule} {j.name}  {j.detail}")
    return "\n".join(lines)


class OverBudget(RuntimeError):
    pass


def check_budget(planned: list[Job], speeds: dict, max_hours: float | None, text: str) -> None:
    total = wall_seconds(planned, speeds) / 3600
    if max_hours is not None and total > max_hours:
        raise OverBudget(f"the config's predicted time, {total:.2f} h, exceeds --max-hours {max_hours}; nothing was run. "
                         f"Lower epochs, max_images or evaluation.n_generated of the biggest jobs:\n{text}")
