"""Feature spaces: the embeddings in which the distribution metrics compare generated with real images,
a registry in the style of torch-fidelity's feature extractors. A new space is one entry here; a metric
names its space (facegen.metrics.Metric.space), and the real reference, the floor and every run's
samples.npz store each space's features under the space's own keys.

A space whose network cannot be loaded here (its weights missing and not downloadable) raises
:class:`FeaturesUnavailable`; its metrics are then reported as unavailable with that reason, not skipped.
Networks are imported only when a space loads: importing this module costs nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping

import numpy as np

from facegen.metrics.errors import FeaturesUnavailable


@dataclasses.dataclass(frozen=True)
class FeatureSpace:
    name: str
    label: str                 # how the report names it ("Inception features")
    gflop: Callable            # ev -> forward GFLOP per image at the network's input size (the plan's cost)
    setting: str               # the evaluation key that selects its network or arithmetic, recorded in every protocol
    suffix: str                # of its keys in the .npz files: features{suffix}, mu{suffix}, sigma{suffix}
    # (ev, device, reference protocol or None, label of the reference) -> a network ``embed`` takes
    load: Callable
    # (uint8 images, network, batch size, progress label) -> (N, dim) float32
    embed: Callable
    # (network, ev) -> its setting's value as it ran, for a setting that resolves (`inception_mode: auto`
    # to the mode auto chose); None: the setting is the value
    resolved: Callable | None = None
    # ev -> why its network is not on this machine (None: it is), without trying a download
    missing: Callable = lambda ev: None

    @property
    def keys(self) -> dict[str, str]:
        return {k: f"{k}{self.suffix}" for k in ("features", "mu", "sigma")}

    def reference(self, real: Mapping) -> dict:
        """This space's features and statistics from a loaded real reference (facegen.evaluation.real.load_real)."""
        return {k: real[v] for k, v in self.keys.items() if v in real}

    def protocol(self, net, ev: Mapping) -> dict:
        return {self.setting: ev[self.setting] if self.resolved is None else self.resolved(net, ev)}

    def requested(self, ev: Mapping) -> dict:
        """What the config asked for, beside the protocol's resolved value; nothing where they cannot differ."""
        return {} if self.resolved is None else {f"{self.setting}_requested": ev[self.setting]}


def _inception_load(ev: Mapping, device: str, reference: dict | None, label: str):
    from facegen.metrics import inception

    mode = ev["inception_mode"]
    if reference is not None:
        mode = inception.reference_mode(mode, reference["inception_mode"], label)
    return inception.extractor(mode=mode, device=device)


def _inception_embed(images, net, batch_size: int, desc: str) -> np.ndarray:
    from facegen.metrics import inception

    return inception.features(images, net, batch_size, desc=desc)


def _dinov2_load(ev: Mapping, device: str, reference: dict | None, label: str):
    from facegen.metrics import dinov2

    if reference is not None and reference.get("dinov2_model") != ev["dinov2_model"]:
        raise ValueError(f"{label} were computed with dinov2_model {reference.get('dinov2_model')}, but this job asks for "
                         f"{ev['dinov2_model']}; recompute them (delete {label})")
    return dinov2.extractor(ev["dinov2_model"], device)


def _dinov2_missing(ev: Mapping) -> str | None:
    from facegen.metrics import dinov2

    return dinov2.missing(ev["dinov2_model"])


def _dinov2_embed(images, net, batch_size: int, desc: str) -> np.ndarray:
    from facegen.metrics import dinov2

    return dinov2.features(images, net, batch_size, desc=desc)


def vit_gflop(layers: int, width: int, tokens: int = 257, patch: int = 14) -> float:
    """Forward GFLOP of a ViT per image (2 FLOPs a multiply-add): per layer 12 N d^2 for the projections and
    the MLP, 2 N^2 d for the attention products, plus the patch embedding. DINOv2 at 224x224 sees 16 x 16
    patches of 14 pixels and the class token, N = 257."""
    return 2 * (layers * (12 * tokens * width ** 2 + 2 * tokens ** 2 * width) + (tokens - 1) * 3 * patch ** 2 * width) / 1e9


def _dinov2_gflop(ev: Mapping) -> float:
    from facegen.metrics.dinov2 import MODELS

    return vit_gflop(*MODELS[ev["dinov2_model"]][1:])


SPACES: dict[str, FeatureSpace] = {
    # Inception-v3 pool3 at 299x299: 5.7 GMACs.
    "inception": FeatureSpace("inception", "Inception", lambda ev: 11.5, "inception_mode", "", _inception_load,
                              _inception_embed, lambda net, ev: net.facegen_mode),
    "dinov2": FeatureSpace("dinov2", "DINOv2", _dinov2_gflop, "dinov2_model", "_dinov2", _dinov2_load, _dinov2_embed,
                           missing=_dinov2_missing),
}


def active(ev: Mapping) -> list[FeatureSpace]:
    """The spaces the evaluation config asks for, in registry order (Inception, the reference space, first)."""
    unknown = set(ev["feature_spaces"]) - set(SPACES)
    if unknown:
        raise ValueError(f"unknown feature space(s) {sorted(unknown)} in evaluation.feature_spaces; choose from {sorted(SPACES)}")
    return [s for name, s in SPACES.items() if name in ev["feature_spaces"]]


@dataclasses.dataclass
class Embedded:
    """One image set in every active space: features by space name, why a space is missing, the protocol
    entries of the spaces that ran, and each space's seconds."""
    features: dict[str, np.ndarray]
    unavailable: dict[str, str]
    protocol: dict
    seconds: dict[str, float]

    def arrays(self) -> dict[str, np.ndarray]:
        """The features under their .npz keys (only ``features{suffix}``)."""
        return {SPACES[name].keys["features"]: f for name, f in self.features.items()}


def embed(images: np.ndarray, ev: Mapping, device: str, desc: str, reference: Mapping | None = None,
          label: str = "the real features") -> Embedded:
    """``images`` in every active space. With ``reference`` (a loaded real file), each space runs as the
    reference's did, and a space the reference lacks is unavailable for the reason the reference recorded."""
    out = Embedded({}, {}, {}, {})
    ref_protocol = None if reference is None else reference["protocol"]
    for space in active(ev):
        if ref_protocol is not None and space.name in ref_protocol.get("unavailable", {}):
            out.unavailable[space.name] = ref_protocol["unavailable"][space.name]
            continue
        try:
            net = space.load(ev, device, ref_protocol, label)
        except FeaturesUnavailable as exc:
            out.unavailable[space.name] = str(exc)
            continue
        t0 = time.perf_counter()
        out.features[space.name] = space.embed(images, net, ev["batch_size"], f"{space.name} {desc}")
        out.seconds[space.name] = time.perf_counter() - t0
        out.protocol.update(space.protocol(net, ev))
    return out
