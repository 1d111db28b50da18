"""Every enum of the config schema equals the registry the code dispatches on: the schema is what a
config is checked against, the registry is what a job does with the value, and a name added to one
alone is either refused by the schema or unknown to the code only once a job runs."""

import importlib

import pytest

from facegen.config import load_schema

SPLIT_KEYS = ("real_split", "recon_split", "decoder_variance_split")
ALIGN = "$defs/dataset/allOf/2/then/properties/align/oneOf/1/properties"


def registry(module: str, name: str, before=(), after=()):
    """The names in ``module.name`` (a tuple, or a dict's keys), imported when the test runs."""
    return lambda: [*before, *getattr(importlib.import_module(module), name), *after]


splits = registry("facegen.data.split", "SPLITS")

REGISTRIES = {
    **{f"properties/evaluation/properties/{key}": splits for key in SPLIT_KEYS},
    "properties/evaluation/properties/floor_split": registry("facegen.data.split", "SPLITS", after=[None]),  # null: no floor
    "properties/tuning/properties/floor_split": splits,
    # The tuning chooses a recipe, so its reference is never the held-out test split.
    "properties/tuning/properties/real_split": lambda: [s for s in splits() if s != "test"],
    "properties/evaluation/properties/sampler": registry("facegen.samplers", "SAMPLERS"),
    # auto: facegen.metrics.inception.resolve_mode measures the modes and picks one
    "properties/evaluation/properties/inception_mode": registry("facegen.metrics.inception", "MODES", before=["auto"]),
    "properties/evaluation/properties/feature_spaces/items": registry("facegen.metrics.spaces", "SPACES"),
    "properties/evaluation/properties/dinov2_model": registry("facegen.metrics.dinov2", "MODELS"),
    "$defs/training/properties/optimizer": registry("facegen.training.settings", "OPTIMIZERS"),
    "$defs/training/properties/schedule": registry("facegen.training.settings", "SCHEDULES"),
    "$defs/training/properties/precision": registry("facegen.training.settings", "PRECISION_CHOICES"),
    # the other branch of compile's anyOf is YAML's boolean reading of an unquoted on / off
    "$defs/training/properties/compile/anyOf/0": registry("facegen.training.settings", "COMPILE_CHOICES"),
    "$defs/dataset/properties/kind": registry("facegen.data", "KINDS"),
    f"{ALIGN}/method": registry("facegen.data.align", "DETECTORS"),
}

# Enums with no list in the code to hold them to, and why.
EXEMPT = {
    # A sentinel beside an integer thread count, not a choice among names.
    "properties/job_threads/anyOf/1": "sentinel",
    # Image sizes, not names; whether a model builds at a size is its own check (facegen.study).
    "properties/data/properties/resolutions/items": "sizes",
    # The synthetic faces are drawn at any size; these are the sizes offered.
    "$defs/dataset/allOf/3/then/properties/size": "sizes",
    # Two-way switches the code reads by one name (== "class", == "dldl", == "all", == "reweight"):
    # every other value takes the other branch, so there is no list in the code to drift.
    "properties/bias/properties/datasets/additionalProperties/properties/targets/additionalProperties": "switch",
    "properties/bias/properties/classifier/properties/regression_head": "switch",
    f"{ALIGN}/faces": "switch",
    "$defs/training/properties/balance_mode": "switch",
    # facegen.face_classifiers.make_schedule reads onecycle and inverse by name and runs anything else constant.
    "properties/bias/properties/classifier/properties/schedule": "switch",
    # One value, named so that a config states the behaviour; the aligner has no other.
    f"{ALIGN}/on_no_face": "single value",
}


def schema_enums() -> dict[str, list]:
    return enums_in(load_schema())


def enums_in(node, path=()) -> dict[str, list]:
    """Every ``enum`` under ``node``, by the slash-joined path of the schema node holding it."""
    found = {}
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        if key == "enum":
            found["/".join(path)] = child
        else:
            found.update(enums_in(child, (*path, str(key))))
    return found


def test_the_walk_finds_enums_at_every_depth():
    assert enums_in({"a": {"enum": [1]}, "b": [{"c": {"enum": ["x"]}}]}) == {"a": [1], "b/0/c": ["x"]}


@pytest.mark.parametrize("path", sorted(REGISTRIES))
def test_schema_enum_equals_its_registry(path):
    assert schema_enums()[path] == REGISTRIES[path]()


def test_every_schema_enum_has_a_registry_or_a_stated_exemption():
    enums = set(schema_enums())
    assert not set(REGISTRIES) & set(EXEMPT)
    assert sorted(enums - set(REGISTRIES) - set(EXEMPT)) == [], "map each new enum to its registry above, or exempt it"
    assert sorted((set(REGISTRIES) | set(EXEMPT)) - enums) == [], "a mapped enum is gone from the schema"


def test_each_dataset_kind_has_its_own_branch_of_the_schema():
    branches = [b["if"]["properties"]["kind"]["const"] for b in load_schema()["$defs"]["dataset"]["allOf"]]
    assert branches == REGISTRIES["$defs/dataset/properties/kind"]()
