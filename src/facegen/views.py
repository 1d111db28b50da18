"""Typed, read-only views of config blocks: ``view.key`` as well as ``view["key"]``, and no writes.

A view wraps the block it is given, without copying it. A key the block leaves out reads as the
schema's default for it, so that no module keeps a default of its own: the validator has filled in
every default but the training ones (see the schema's $defs/training), which therefore matter most here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache

from facegen.config import load_schema


@cache
def schema_defaults(path: tuple[str, ...], keyword: str = "default") -> Mapping:
    """``keyword`` of each property of the schema node at ``path``, where it has one."""
    node = load_schema()
    for key in path:
        node = node[key]
    return {name: prop[keyword] for name, prop in node["properties"].items() if keyword in prop}


class View(Mapping):
    """A config block, read-only; the annotations of a subclass name its keys and their types."""

    __slots__ = ("_block",)
    SCHEMA: tuple[str, ...] = ()
    DEFAULT = "default"

    def __init__(self, block: Mapping):
        object.__setattr__(self, "_block", block)

    @classmethod
    def defaults(cls) -> Mapping:
        return schema_defaults(cls.SCHEMA, cls.DEFAULT)

    def __getitem__(self, key: str):
        if key in self._block:
            return self._block[key]
        # A copy: the cached default must not change when a caller edits what it got.
        return copy.deepcopy(self.defaults()[key])

    def __iter__(self) -> Iterator[str]:
        return iter({**self.defaults(), **self._block})

    def __len__(self) -> int:
        return len({**self.defaults(), **self._block})

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no key '{name}'") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self)!r})"


class TrainingView(View):
    """A run's training settings (a spec's ``training``, or any training block), with the schema's
    x-default for each key it leaves out."""

    SCHEMA = ("$defs", "training")
    DEFAULT = "x-default"

    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    betas: list[float]
    schedule: str
    step_every: int
    checkpoint_every: int
    max_images: int | None
    precision: str
    compile: str | bool
    device: str
    monitor_images: int
    monitor_every: int
    balance_column: str | None
    balance_mode: str


class EvaluationView(View):
    """The evaluation block: how every trained run is evaluated."""

    SCHEMA = ("properties", "evaluation")

    n_generated: int
    n_real: int
    real_split: str
    floor_split: str | None
    recon_split: str
    decoder_variance_split: str
    n_recon: int | None
    sampler: str
    batch_size: int
    inception_mode: str
    feature_spaces: list[str]
    dinov2_model: str
    kid_subsets: int
    kid_subset_size: int
    prc_k: int
    dc_k: int
    lpips_pairs: int
    save_samples: int
    iwae_samples: int
    n_iwae: int
    inception_score: bool
    seed: int
    device: str


class ModelView(View):
    """One entry under ``models`` (or a tuning candidate's settings); ``training`` is the entry's own
    override block, which it may leave out."""

    SCHEMA = ("$defs", "model")

    arch: str
    params: dict
    training: dict
    condition: list[str]
