"""Checks of a study that need the model zoo as well as the config.

They live above both: facegen.models imports facegen.config, so the config cannot ask the models
without an import cycle.
"""

from __future__ import annotations

import json

from facegen.config import ConfigError, canonical


def check_model_params(config: dict) -> None:
    """Every model entry the experiments and the tuning train, built once per (arch, resolution, params)
    by facegen.models.check_params: a bad param fails here, naming its key, and not when its training job
    starts, possibly hours into a run. Imports torch, so the CLI's validate-config, plan and the Snakemake
    workflow call it once, not every job."""
    from facegen.models import ARCHITECTURES, check_params

    entries = {f"models.{m}": e for m, e in config["models"].items()}
    used: dict[str, set[int]] = {}
    for exp in config["experiments"]:
        for model in exp["models"]:
            used.setdefault(f"models.{model}", set()).update(exp["resolutions"])
    t = config["tuning"]
    for i, group in enumerate(t["candidates"]):
        for cand, entry in group["settings"].items():
            entries[f"tuning.candidates.{i}.settings.{cand}"] = entry
            used[f"tuning.candidates.{i}.settings.{cand}"] = {t["resolution"]}
    for key, entry in entries.items():  # the registry is the one list of architectures, not the schema
        if entry["arch"] not in ARCHITECTURES:
            raise ConfigError(f"invalid configuration: config key '{key}.arch' is '{entry['arch']}', not an architecture of "
                              f"facegen.models; known: {', '.join(ARCHITECTURES)}. Fix the arch, or register the family "
                              f"in facegen.models.ARCHITECTURES")
    checked = set()
    for key, resolutions in sorted(used.items()):
        entry = entries[key]
        for res in sorted(resolutions):
            seen = (entry["arch"], res, json.dumps(canonical(entry.get("params") or {})))
            if seen in checked:
                continue
            checked.add(seen)
            try:
                check_params(entry["arch"], res, entry.get("params") or {})
            except ValueError as exc:
                raise ConfigError(f"invalid configuration: config key '{key}.params' (arch {entry['arch']}, {res}x{res}): "
                                  f"{exc}. Fix the model's params in the config") from None
