"""Load, merge and validate the study configuration.

Snakemake validates with ``snakemake.utils.validate`` and the CLI validates here, against the same
schema file, so both orchestrators agree on what is allowed and on every default.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from pathlib import Path

import jsonschema
import yaml

MIRROR_ENV = "FACEGEN_DATA_MIRROR"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key, the value and what is allowed."""


@functools.cache
def _parsed_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def load_schema() -> dict:
    """The schema, parsed once per process (about 0.1 s); a copy, which the caller may change."""
    return copy.deepcopy(_parsed_schema())


def _with_defaults(validator_class):
    """A validator that fills in schema defaults as it walks, as snakemake.utils.validate does."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    # The deepest, most specific cause is the useful one for if/then/allOf schemas.
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
        key = ".".join(str(p) for p in error.absolute_path) or key
    value = json.dumps(error.instance, default=str)
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"config key '{key}' has value {value}; allowed values: {allowed}"
    if error.validator == "const":
        return f"config key '{key}' has value {value}; expected {json.dumps(error.validator_value)}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"config key '{key}': {error.message}; allowed keys: {allowed}"
    return f"config key '{key}' has value {value}: {error.message}"


def validate(config: dict) -> dict:
    """Validate ``config`` in place against the schema, fill defaults, and return it.

    Raises ConfigError naming the first offending key, its value and the allowed values.
    """
    schema = load_schema()
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    validator = cls(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration: " + _describe(errors[0]) + ". Fix the config file (see workflow/schemas/config.schema.yaml).")
    _check_semantics(config)
    return config


def _check_semantics(config: dict) -> None:
    for i, exp in enumerate(config["experiments"]):
        for key, known in (("datasets", config["data"]["datasets"]), ("models", config["models"])):
            for name in exp[key]:
                if name not in known:
                    raise ConfigError(
                        f"invalid configuration: config key 'experiments.{i}.{key}' names '{name}', which is not defined; "
                        f"defined {key}: {', '.join(sorted(known)) or 'none'}"
                    )
        for res in exp["resolutions"]:
            if res not in config["data"]["resolutions"]:
                raise ConfigError(
                    f"invalid configuration: config key 'experiments.{i}.resolutions' has {res}, which data.resolutions "
                    f"({config['data']['resolutions']}) does not prepare; add it there"
                )
    ev = config["evaluation"]
    if ev["floor_split"] is not None and ev["floor_split"] == ev["real_split"]:
        raise ConfigError(
            f"invalid configuration: config key 'evaluation.floor_split' has value '{ev['floor_split']}', the same split as "
            "evaluation.real_split: the floor must score images the reference does not hold; choose another split or null"
        )
    if ev.get("decoder_variance_split", "val") == ev["recon_split"]:
        raise ConfigError(
            f"invalid configuration: config key 'evaluation.decoder_variance_split' has value '{ev['recon_split']}', the "
            "same split as evaluation.recon_split: the IWAE bound's decoder variance must be fitted on other images; "
            "choose another split"
        )
    smallest = min(ev["n_generated"], ev["n_real"])
    if ev["kid_subset_size"] > smallest:
        raise ConfigError(
            f"invalid configuration: config key 'evaluation.kid_subset_size' has value {ev['kid_subset_size']}, more than "
            f"the {smallest} images per set (n_generated {ev['n_generated']}, n_real {ev['n_real']}); lower it or evaluate more images"
        )
    for key in ("prc_k", "dc_k"):
        if ev[key] >= smallest:
            raise ConfigError(f"invalid configuration: config key 'evaluation.{key}' has value {ev[key]}; the k-NN balls "
                              f"need more than k images per set ({smallest})")
    _check_tuning(config)
    for name, ds in config["data"]["datasets"].items():
        split = ds.get("split")
        if split is not None and sum(split) <= 0:
            raise ConfigError(f"invalid configuration: config key 'data.datasets.{name}.split' has value {split}: the ratios must not all be zero")
        if ds["kind"] == "synthetic" and len(ds["group_weights"]) != len(ds["group_noise"]):
            raise ConfigError(
                f"invalid configuration: config key 'data.datasets.{name}.group_noise' has {len(ds['group_noise'])} entries "
                f"but group_weights has {len(ds['group_weights'])}; give one value per group"
            )


def _check_tuning(config: dict) -> None:
    t = config["tuning"]
    if not t["candidates"]:
        return
    names = [c["model"] for c in t["candidates"]]
    if len(set(names)) < len(names):
        raise ConfigError(f"invalid configuration: config key 'tuning.candidates' lists a model twice ({', '.join(names)}); "
                          "give each tuned model one entry with all its settings")
    bad = [m for m in names if m not in config["models"]]
    if bad:
        raise ConfigError(f"invalid configuration: config key 'tuning.candidates' names '{bad[0]}', which is not under models: "
                          f"the candidates choose a model's recipe; defined models: {', '.join(sorted(config['models']))}")
    if t["dataset"] not in config["data"]["datasets"]:
        raise ConfigError(f"invalid configuration: config key 'tuning.dataset' has value '{t['dataset']}', which is not defined; "
                          f"defined datasets: {', '.join(sorted(config['data']['datasets']))}")
    if t["resolution"] not in config["data"]["resolutions"]:
        raise ConfigError(f"invalid configuration: config key 'tuning.resolution' has value {t['resolution']}, which "
                          f"data.resolutions ({config['data']['resolutions']}) does not prepare; add it there")
    if t["real_split"] == t["floor_split"]:
        raise ConfigError(f"invalid configuration: config key 'tuning.floor_split' has value '{t['floor_split']}', the same "
                          "split as tuning.real_split: the floor must score images the reference does not hold")


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(*sources: str | Path | dict) -> dict:
    """Merge config sources left to right and validate the result.

    Each source is a YAML file path, a dict, or a JSON/YAML mapping given inline (starting with '{'),
    which is how Snakemake rules hand a rule its slice of the config.
    """
    merged: dict = {}
    for src in sources:
        if isinstance(src, dict):
            part = src
        elif isinstance(src, str) and src.lstrip().startswith("{"):
            part = yaml.safe_load(src)
        else:
            path = Path(src)
            if not path.exists():
                raise ConfigError(f"config file '{path}' does not exist")
            with open(path) as fh:
                part = yaml.safe_load(fh) or {}
        if not isinstance(part, dict):
            raise ConfigError(f"config source {src!r} is not a mapping")
        merged = deep_merge(merged, part)
    return canonical(validate(merged))


def canonical(obj):
    """Sort mapping keys recursively, so a config read from YAML or from JSON gives identical outputs."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def config_hash(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def kind_default(kind: str, key: str):
    """The schema's default of ``key`` for a dataset of ``kind`` (e.g. CelebA's crop)."""
    for branch in load_schema()["$defs"]["dataset"]["allOf"]:
        if branch["if"]["properties"]["kind"]["const"] == kind:
            return copy.deepcopy(branch["then"]["properties"][key]["default"])
    raise ConfigError(f"unknown dataset kind '{kind}'")


def dataset_config(config: dict, name: str) -> dict:
    datasets = config["data"]["datasets"]
    if name not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise ConfigError(f"unknown dataset '{name}': the config defines {known}. Add it under data.datasets or pick one of those.")
    return datasets[name]


def mirror_available(config: dict) -> bool:
    root = config["data"].get("mirror") or os.environ.get(MIRROR_ENV)
    return bool(root) and Path(root).expanduser().is_dir()


def active_datasets(config: dict) -> list[str]:
    """Configured datasets, less those marked only_with_mirror when no mirror is at hand."""
    names = sorted(config["data"]["datasets"])
    if mirror_available(config):
        return names
    return [n for n in names if n not in config["data"]["only_with_mirror"]]
