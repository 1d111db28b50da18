"""Evaluation metrics, one module per family, and :func:`evaluate`, the one entry point that scores a
set of generated samples against the cached real reference.

Each sample metric is a registry entry: its name, the ``evaluation`` config keys that define its
protocol (k, subset sizes, pairs: recorded beside its values, so two results are comparable only under
equal ones; the shared seed and batch size are recorded once) and the function that computes it. A new metric is one entry here. Reconstruction metrics need a VAE and the test
images, and stay in facegen.evaluation.run. Families are imported when a metric runs: importing this
package costs nothing (torch-fidelity's imports alone take about 2.5 s).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np


@dataclasses.dataclass
class SampleSet:
    """What a sample metric may read: the generated uint8 samples and their Inception features, the
    real reference (facegen.evaluation.real.load_real) and the reference's own images."""
    samples: np.ndarray
    features: np.ndarray
    real: dict
    real_images: np.ndarray

    @functools.cached_property
    def lpips(self):
        from facegen.metrics.lpips import LPIPS

        return LPIPS()


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    keys: tuple[str, ...]
    compute: Callable[[SampleSet, dict], dict]
    # protocol entries derived from the inputs (e.g. the size LPIPS scores at), after those of ``keys``
    derived: Callable[[SampleSet, dict], dict] = lambda s, ev: {}


def _fid(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import fid_from_features

    return {"fid": fid_from_features(s.features, s.real)}


def _kid(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import kid

    return kid(s.features, s.real["features"], ev["kid_subsets"], ev["kid_subset_size"], ev["seed"])


def _precision_recall(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import precision_recall

    return precision_recall(s.features, s.real["features"], ev["prc_k"])


def _density_coverage(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import density_coverage

    return density_coverage(s.features, s.real["features"], ev["dc_k"])


def _approx_fid_pixel(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.pixel_fid import approx_fid

    return {"approx_fid_pixel": approx_fid(s.real_images, s.samples)}


def _inception_score(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.inception import inception_score

    return inception_score(s.samples, ev["inception_score"], ev["batch_size"], ev["seed"])


def _sharpness(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.quality import laplacian_variance

    return {"sharpness_samples": float(laplacian_variance(s.samples).mean()),
            "sharpness_real": float(laplacian_variance(s.real_images).mean())}


def _lpips_diversity(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.lpips import diversity

    return {"lpips_diversity": diversity(s.lpips, s.samples, ev["lpips_pairs"], ev["seed"]),
            "lpips_diversity_real": diversity(s.lpips, s.real_images, ev["lpips_pairs"], ev["seed"])}


def _lpips_size(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.lpips import MIN_SIZE

    return {"lpips_size": max(s.samples.shape[1], MIN_SIZE)}


REGISTRY: tuple[Metric, ...] = (
    Metric("fid", (), _fid),
    Metric("kid", ("kid_subsets", "kid_subset_size"), _kid),
    Metric("precision_recall", ("prc_k",), _precision_recall),
    Metric("density_coverage", ("dc_k",), _density_coverage),
    Metric("approx_fid_pixel", (), _approx_fid_pixel),
    Metric("inception_score", (), _inception_score),
    Metric("sharpness", (), _sharpness),
    Metric("lpips_diversity", ("lpips_pairs",), _lpips_diversity, _lpips_size),
)


def evaluate(samples: SampleSet, ev: dict) -> tuple[dict, dict]:
    """Every registered metric of ``samples`` under the evaluation config ``ev``: (metrics, protocol)."""
    metrics, protocol = {}, {}
    for metric in REGISTRY:
        metrics.update(metric.compute(samples, ev))
        protocol.update({k: ev[k] for k in metric.keys})
        protocol.update(metric.derived(samples, ev))
    return metrics, protocol
