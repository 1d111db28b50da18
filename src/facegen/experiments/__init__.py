"""Latent-space and restoration experiments on trained runs; one module per experiment, each a
workflow rule writing results/experiments/<name>/{table.csv, figure.png}."""

from __future__ import annotations

import importlib

NAMES = ("grids", "variations", "interpolation", "attributes", "latent_map", "restoration", "postprocess")


def run_experiment(name: str, config: dict, out_dir):
    if name not in NAMES:
        raise ValueError(f"unknown experiment '{name}'; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"facegen.experiments.{name}").run(config, out_dir)
