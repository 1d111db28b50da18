"""Every enum of the config schema equals the registry the code dispatches on: the schema is what a
config is checked against, the registry is what a job does with the value, and a name added to one
alone is either refused by the schema or unknown to the code only once a job runs."""

import pytest

from facegen.config import load_schema

SPLIT_KEYS = ("real_split", "recon_split", "decoder_variance_split")
ALIGN = "$defs/dataset/allOf/2/then/properties/align/oneOf/1/properties"


def splits():
    from facegen.data.split import SPLITS

    return list(SPLITS)


def architectures():
    from facegen.models import ARCHITECTURES

    return list(ARCHITECTURES)


def samplers():
    from facegen.samplers import SAMPLERS

    return list(SAMPLERS)


def training_precisions():
    from facegen.training.settings import PRECISION_CHOICES

    return list(PRECISION_CHOICES)


def inception_modes():
    from facegen.metrics.inception import MODES

    return ["auto", *MODES]  # resolve_mode's own value beside the modes


def optimizers():
    from facegen.training.settings import OPTIMIZERS

    return list(OPTIMIZERS)


def schedules():
    from facegen.training.settings import SCHEDULES

    return list(SCHEDULES)


def dataset_kinds():
    from facegen.data import KINDS

    return list(KINDS)


def face_detectors():
    from facegen.data.align import DETECTORS

    return list(DETECTORS)


REGISTRIES = {
    **{f"properties/evaluation/properties/{key}": splits for key in SPLIT_KEYS},
    "properties/evaluation/properties/floor_split": lambda: [*splits(), None],  # null: no floor
    "properties/tuning/properties/floor_split": splits,
    # The tuning chooses a recipe, so its reference is never the held-out test split.
    "properties/tuning/properties/real_split": lambda: [s for s in splits() if s != "test"],
    "properties/evaluation/properties/sampler": samplers,
    "properties/evaluation/properties/inception_mode": inception_modes,
    "$defs/model/properties/arch": architectures,
    "$defs/training/properties/optimizer": optimizers,
    "$defs/training/properties/schedule": schedules,
    "$defs/training/properties/precision": training_precisions,
    "$defs/dataset/properties/kind": dataset_kinds,
    f"{ALIGN}/method": face_detectors,
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
    # facegen.classifier.make_schedule reads onecycle and inverse by name and runs anything else constant.
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
    assert branches == dataset_kinds()
