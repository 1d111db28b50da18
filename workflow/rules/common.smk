import json
import os
import subprocess

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from facegen.config import ConfigError, active_datasets, config_hash, validate as facegen_validate
from facegen.data import prepared_files as facegen_prepared_files
from facegen.experiments import NAMES as EXPERIMENT_NAMES
from facegen.bias.selection import generation_inputs as bias_generation_inputs
from facegen.experiments.selection import experiment_inputs
from facegen.plan import dataset_sizes, training_images
from facegen.study import check_model_params
from facegen.findings import inputs as findings_inputs
from facegen.report import report_inputs as facegen_report_inputs
from facegen import paths
from facegen import worker as facegen_worker
from facegen import slices
from facegen.slices import eval_config, run_config
from facegen.training.matrix import floor_sets, run_spec, training_runs
from facegen.tuning import outputs as tuning_paths, paths_config as tuning_paths_config, tuning_study

# Validate with Snakemake (fills schema defaults), and with facegen's checker for a readable message
# naming the key, the bad value and the allowed values, before any job is planned.
try:
    facegen_validate(json.loads(json.dumps(config)))
    check_model_params(json.loads(json.dumps(config)))
except ConfigError as exc:
    raise WorkflowError(str(exc))
validate(config, schema="../schemas/config.schema.yaml")

# Report captions, relative to the rule files (workflow/rules), as Snakemake resolves them.
# Absolute: the paper rule builds its caption in a function, which Snakemake resolves against another file
CAPTIONS = os.path.join(os.path.dirname(str(workflow.current_basedir)), "report")
RESULTS = config["results_dir"]
LOGS = config["logs_dir"]
DATASETS = active_datasets(config)
if not DATASETS:
    raise WorkflowError(
        "no dataset to build: every configured dataset needs a mirror (data.only_with_mirror) and none is set"
    )

# Where the config asks (the quick profile, whose jobs are mostly start-up), one warm process runs the
# jobs' `facegen` commands; see facegen.worker. Only for jobs run on this machine: a cluster job inherits
# the environment, and on this node would otherwise run in the worker instead of its own allocation.
WORKER = {}


onstart:
    if config["job_worker"] and workflow.local_exec:
        WORKER["handle"] = facegen_worker.start(f"{LOGS}/worker.log")


onsuccess:
    facegen_worker.stop(WORKER.get("handle"))


onerror:
    facegen_worker.stop(WORKER.get("handle"))


def config_slice(dataset=None):
    """A data rule's slice (facegen.slices), as inline JSON."""
    return json.dumps(slices.data_config(config, [dataset] if dataset else DATASETS), sort_keys=True)


def full_config():
    return json.dumps(config, sort_keys=True)


def experiment_config():
    return json.dumps(slices.experiment_config(config), sort_keys=True)


def classifier_config():
    return json.dumps(slices.classifier_config(config), sort_keys=True)


def git_commit():
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def manifest(dataset):
    return str(paths.manifest(config, dataset))


def strings(files):
    """A paths.* mapping as the strings a rule's output takes."""
    return {k: str(v) for k, v in files.items()}


def report_outputs():
    root = paths.report_dir(config)
    outs = {"html": report(str(root / "paper.html"), caption=f"{CAPTIONS}/paper.rst", category="Paper")}
    if config["report"]["pdf"]:
        outs["pdf"] = str(root / "paper.pdf")
    return outs


FINDINGS = paths.findings(config)


def findings_files():
    return [str(p) for p in findings_inputs(config)]


def report_section_inputs():
    return [p for p in facegen_report_inputs(config) if p != str(paths.provenance(config))]


def prepared_files(dataset):
    root = paths.prepared(config, dataset)
    return [str(root / f) for f in facegen_prepared_files(config, dataset)]


RUNS = training_runs(config, DATASETS)
# The recipe tuning is a study of its own (facegen.tuning): its candidates are models only there.
TUNING = tuning_study(config)
TUNING_WHERE = tuning_paths_config(config)
TUNING_RUNS = training_runs(TUNING, DATASETS)
TUNING_MODELS = "|".join(TUNING["models"]) or "NO_MODELS"
TUNING_OUTPUTS = strings(tuning_paths(config))
# Output patterns: the paths.* functions with Snakemake's wildcards for values.
RUN_DIR = str(paths.run_dir(config, paths.RUN))
EVAL_DIR = str(paths.eval_dir(config, paths.RUN))
REAL_FILE = str(paths.real_path(config, paths.REAL))
FLOOR_FILE = str(paths.floor_path(config, paths.REAL))
TUNING_RUN_DIR = str(paths.run_dir(TUNING_WHERE, paths.RUN))
TUNING_EVAL_DIR = str(paths.eval_dir(TUNING_WHERE, paths.RUN))
# A run's files by role, as the rules name their inputs and outputs
TRAIN_FILES = {k: str(v) for k, v in paths.train_files(RUN_DIR).items()}
EVAL_FILES = {k: str(v) for k, v in paths.eval_files(EVAL_DIR).items()}
TUNING_TRAIN_FILES = {k: str(v) for k, v in paths.train_files(TUNING_RUN_DIR).items()}
TUNING_EVAL_FILES = {k: str(v) for k, v in paths.eval_files(TUNING_EVAL_DIR).items()}
TUNING_REAL_FILE = str(paths.real_path(TUNING_WHERE, paths.REAL))
TUNING_FLOOR_FILE = str(paths.floor_path(TUNING_WHERE, paths.REAL))
ATTRIBUTE_CLASSIFIER = str(paths.attribute_classifier(config, "{dataset}", "{resolution}"))
DEMOGRAPHIC_CLASSIFIER = str(paths.demographic_classifier(config, "{dataset}", "{source}"))
DATASET_SUMMARY = strings(paths.dataset_summary(config, "{dataset}"))
TRAINING_SUMMARY = strings(paths.training_summary(config))
EVALUATION_SUMMARY = strings(paths.evaluation_summary(config))
BIAS_RECONSTRUCTION = strings(paths.bias_reconstruction(config))
BIAS_DATASET = strings(paths.bias_dataset(config))
BIAS_GENERATION = strings(paths.bias_generation(config))


def sibling_json(path):
    """The record beside an output (features.npz -> features.json, classifier.pt -> classifier.json)."""
    return os.path.splitext(path)[0] + ".json"


# --cores beyond this machine's cores would only oversubscribe it (the paper's `--cores 8` on a 2-core
# laptop ran four 2-thread jobs at once): cap it, so that jobs x threads never exceed the cores. Only
# where jobs run here: under a cluster executor they run on the scheduler's nodes, not this one.
if workflow.local_exec and (workflow.global_resources["_cores"].value or 0) > (os.cpu_count() or 1):
    from snakemake.resources import Resource

    workflow.global_resources["_cores"] = Resource("_cores", os.cpu_count() or 1)

# Heavy jobs take job_threads (auto: every core); Snakemake caps it at --cores and sets OMP_NUM_THREADS
# to match, so jobs x threads never exceed the cores: more threads than cores only slows torch down.
TRAIN_THREADS = max(1, os.cpu_count() or 1) if config["job_threads"] == "auto" else config["job_threads"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(config["models"]) or "NO_MODELS",
    resolution=r"\d+",
    seed=r"\d+",


def run_outputs():
    return [str(f) for r in RUNS for f in paths.train_files(paths.run_dir(config, r)).values()]


def real_features_file(dataset, resolution):
    split = config["evaluation"]["real_split"]
    return str(paths.real_path(config, {"dataset": dataset, "resolution": int(resolution), "split": split}))


def tuning_real_file(dataset, resolution):
    split = TUNING["evaluation"]["real_split"]
    return str(paths.real_path(TUNING_WHERE, {"dataset": dataset, "resolution": int(resolution), "split": split}))


def tuning_eval_outputs():
    return [str(paths.eval_file(TUNING_WHERE, r, "metrics")) for r in TUNING_RUNS]


def tuning_floor_outputs():
    return [str(paths.floor_path(TUNING_WHERE, f).with_suffix(".json")) for f in floor_sets(TUNING, DATASETS)]


def floor_outputs():
    return [str(paths.floor_path(config, f).with_suffix(".json")) for f in floor_sets(config, DATASETS)]


def eval_outputs(role="metrics"):
    return [str(paths.eval_file(config, r, role)) for r in RUNS]


def train_priority(wildcards, study=None):
    """Images a run will see: longest runs first, so that the HVAE replica's 600 epochs do not start last
    and leave one core idle at the end (unprioritised, Snakemake starts ready jobs in arbitrary order)."""
    study = study or config
    spec = run_spec(study, wildcards.dataset, int(wildcards.resolution), wildcards.model, int(wildcards.seed))
    epochs, n = training_images(spec, {wildcards.dataset: dataset_sizes(study, wildcards.dataset)})
    return epochs * n


def all_outputs():
    return [str(paths.provenance(config)), *report_outputs().values()]


with open(workflow.source_path("../resources.yaml")) as _f:
    RESOURCES = yaml.safe_load(_f)


def rule_resources(name):
    """A rule's requests to a scheduler, from workflow/resources.yaml: mem_mb, runtime in minutes, and gpu
    where the rule uses one and the config asks for GPUs (cluster.gpus)."""
    spec = {**RESOURCES["default"], **RESOURCES["rules"].get(name, {})}
    gpu = spec.pop("gpu", False)
    if gpu and config["cluster"]["gpus"]:
        spec["gpu"] = config["cluster"]["gpus"]
    return spec
