"""The facegen command line. Snakemake rules and DVC stages call only these commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from facegen import config as cfgmod

log = logging.getLogger("facegen")


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)


def cmd_validate(args, config):
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


def cmd_report(args, config):
    from facegen.report import build_report

    build_report(config, args.html, args.pdf)


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

    p = sub.add_parser("report", parents=[common], help="render the paper report (HTML and PDF)")
    p.add_argument("--html", required=True)
    p.add_argument("--pdf", default=None)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log)
    try:
        config = cfgmod.load(*(args.config or ["config/config.yaml"]))
        args.func(args, config)
    except (cfgmod.ConfigError, RuntimeError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        print(f"facegen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
