"""Evaluation metrics, one module per family, and :func:`evaluate`, the one entry point that scores a
set of images against a cached real reference.

Each metric is a registry entry. It names its feature space (facegen.metrics.spaces; None for pixel
metrics), the ``evaluation`` config keys that define its protocol (k, subset sizes, pairs: recorded
beside its values, so two results are comparable only under equal ones; the shared seed and batch size
are recorded once), the function that computes it, and its outputs: each output's label and digits for
the report, its direction, and whether the gates and the tuning read it (``headline``). The summary,
the gates, the tuning and the report all take their metric lists from here, and the real-versus-real
floor scores real images through this same :func:`evaluate`, so a new metric is one entry here (and its
module). Reconstruction metrics need a model with an encoder and the test images: their computation
stays in facegen.evaluation.run, their outputs are declared here. Families are imported when a metric
runs: importing this package costs nothing (torch-fidelity's imports alone take about 2.5 s).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

import numpy as np

from facegen.metrics.spaces import SPACES


@dataclasses.dataclass
class SampleSet:
    """What a metric may read: the uint8 images scored (a run's samples, or the floor's real images), their
    features by space name and why a space is missing (facegen.metrics.spaces.Embedded), the real
    reference (facegen.evaluation.real.load_real) and the reference's own images. ``what`` names the
    scored images in an unavailable metric's note."""
    samples: np.ndarray
    features: dict[str, np.ndarray]
    real: dict
    real_images: np.ndarray
    unavailable: dict[str, str] = dataclasses.field(default_factory=dict)
    what: str = "generated images"

    def pair(self, space: str) -> tuple[np.ndarray, dict]:
        """The scored features and the reference's (features, mu, sigma) in ``space``."""
        return self.features[space], SPACES[space].reference(self.real)

    @functools.cached_property
    def lpips(self):
        from facegen.metrics.lpips import LPIPS

        return LPIPS()


@dataclasses.dataclass(frozen=True)
class Output:
    """One number a metric writes into metrics.json. ``label``: its report column ("{space}" is the
    metric's space's label); ``table``: the report table it sits in (None: kept in the files only);
    ``better``: "lower", "higher" or None where the number ranks nothing; ``scale``: the report's factor;
    ``decides``: the one output the sample-quality verdicts (the findings, the quality gates) decide on."""
    name: str
    label: str = ""
    digits: int = 3
    table: str | None = None
    better: str | None = None
    scale: float = 1.0
    headline: bool = False
    decides: bool = False


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    keys: tuple[str, ...]
    compute: Callable[[SampleSet, dict], dict] | None
    outputs: tuple[Output, ...]
    space: str | None = None
    # protocol entries derived from the inputs (e.g. the size LPIPS scores at), after those of ``keys``
    derived: Callable[[SampleSet, dict], dict] = lambda s, ev: {}
    floor: bool = False          # the real-versus-real floor scores it too
    stage: str = "samples"       # or "reconstruction" (computed by facegen.evaluation.run)
    title: str = ""              # how a note names it ("precision/recall")

    def unavailable(self, why: str) -> dict:
        return {**{o.name: None for o in self.outputs}, **{f"{o.name}_note": why for o in self.outputs}}


def _frechet(space: str, name: str, s: SampleSet, ev: dict) -> dict:
    """The Frechet distance of FID (Heusel et al. 2017) between the scored and the real features of ``space``."""
    from facegen.metrics.distribution import fid_from_features

    gen, real = s.pair(space)
    return {name: fid_from_features(gen, real)}


def _fid_inf(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import fid_infinity

    gen, real = s.pair("inception")
    return fid_infinity(gen, real, ev["seed"])


def _fid_inf_sizes(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import fid_inf_sizes

    sizes = fid_inf_sizes(len(s.samples))
    return {"fid_inf_n_min": int(sizes[0]), "fid_inf_points": len(sizes)} if len(sizes) else {}


def _kid(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.distribution import kid

    gen, real = s.pair("inception")
    return kid(gen, real["features"], ev["kid_subsets"], ev["kid_subset_size"], ev["seed"])


def _equal_n(n_gen: int, n_real: int) -> tuple[int, int]:
    """(n, subsets): the size both sides of precision/recall and density/coverage are compared at, and
    how many disjoint subsets of the real reference of that size are averaged over."""
    n = min(n_gen, n_real)
    return n, n_real // max(n, 1)


def _at_equal_n(name: str, k: str, s: SampleSet, ev: dict) -> dict:
    """Kynkäänniemi et al. (2019) and Naeem et al. (2020) compare as many generated as real images: a
    k-NN ball's radius shrinks as its set grows, so unequal sets move recall and coverage away from the
    published scale (coverage of two identical distributions tends to 1 - (N/(N+M))^k: about 0.60 for
    N = 1,000 real against M = 200 generated at k = 5, about 0.97 at N = M). So both sides hold n =
    min(M, N) images: the generated subsampled (seeded) if the real are fewer, and the real reference
    split into floor(N / n) disjoint seeded subsets of n, each compared with the samples and the metric
    averaged over them, so that every reference image counts and each comparison is at equal n."""
    from facegen.metrics import distribution

    gen, real = s.pair("inception")
    real = real["features"]
    n, subsets = _equal_n(len(gen), len(real))
    rng = np.random.default_rng(ev["seed"])
    if len(gen) > n:
        gen = gen[np.sort(rng.choice(len(gen), n, replace=False))]
    order = rng.permutation(len(real))
    parts = [getattr(distribution, name)(gen, real[np.sort(order[i * n:(i + 1) * n])], ev[k]) for i in range(subsets)]
    return {key: float(np.mean([p[key] for p in parts])) for key in parts[0]}


def _equal_n_protocol(s: SampleSet, ev: dict) -> dict:
    real = SPACES["inception"].reference(s.real).get("features") if s.real else None
    if real is None:
        return {}
    n, subsets = _equal_n(len(s.samples), len(real))
    return {"prdc_n": n, "prdc_real_subsets": subsets}


def _approx_fid_pixel(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.pixel_fid import approx_fid

    return {"approx_fid_pixel": approx_fid(s.real_images, s.samples)}


def _inception_score(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.inception import inception_score

    return inception_score(s.samples, ev["inception_score"], ev["batch_size"], ev["seed"])


def _sharpness(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.pixel_quality import laplacian_variance

    return {"sharpness_samples": float(laplacian_variance(s.samples).mean()),
            "sharpness_real": float(laplacian_variance(s.real_images).mean())}


def _lpips_diversity(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.lpips import diversity

    return {"lpips_diversity": diversity(s.lpips, s.samples, ev["lpips_pairs"], ev["seed"]),
            "lpips_diversity_real": diversity(s.lpips, s.real_images, ev["lpips_pairs"], ev["seed"])}


def _lpips_size(s: SampleSet, ev: dict) -> dict:
    from facegen.metrics.lpips import MIN_SIZE

    return {"lpips_size": max(s.samples.shape[1], MIN_SIZE)}


DISTRIBUTION = "Samples: distribution metrics ({space} features)"
OTHER = "Samples: other metrics"
RECON = "Reconstructions (VAE-type models)"
LIKELIHOOD = "Reconstructions: KL, likelihood bound and sharpness"

REGISTRY: tuple[Metric, ...] = (
    Metric("fid", (), functools.partial(_frechet, "inception", "fid"), (Output("fid", "FID", 1, DISTRIBUTION, "lower", headline=True),), "inception", floor=True),
    # Chong & Forsyth (2020): FID extrapolated to infinitely many samples (facegen.metrics.distribution.fid_infinity).
    # The quality verdicts decide on it, not on FID: FID at a finite n carries a bias k/n whose k depends on the
    # generator, so at n = 200 it can reorder models; FID stays in the tables as a description.
    Metric("fid_inf", (), _fid_inf,
           (Output("fid_inf", "FID_inf", 1, DISTRIBUTION, "lower", headline=True, decides=True), Output("fid_inf_stderr"),
            Output("fid_inf_slope")),
           "inception", derived=_fid_inf_sizes, floor=True, title="FID_inf"),
    # Stein et al. (2023): the Frechet distance of FID, in DINOv2's feature space.
    Metric("fd_dinov2", (), functools.partial(_frechet, "dinov2", "fd_dinov2"), (Output("fd_dinov2", "FD", 1, DISTRIBUTION, "lower", headline=True),), "dinov2",
           floor=True),
    Metric("kid", ("kid_subsets", "kid_subset_size"), _kid,
           (Output("kid", "KID x1e3", 2, DISTRIBUTION, "lower", 1e3, headline=True), Output("kid_std"), Output("kid_ci_low"),
            Output("kid_ci_high"), Output("kid_subset_ci_low"), Output("kid_subset_ci_high")), "inception", floor=True),
    # Both at equal n on either side (_at_equal_n), as published; the protocol records n and the real subsets.
    Metric("precision_recall", ("prc_k",), functools.partial(_at_equal_n, "precision_recall", "prc_k"),
           (Output("precision", "precision ({space} features)", 3, DISTRIBUTION, "higher", headline=True),
            Output("recall", "recall ({space} features)", 3, DISTRIBUTION, "higher", headline=True)),
           "inception", derived=_equal_n_protocol, floor=True, title="precision/recall"),
    Metric("density_coverage", ("dc_k",), functools.partial(_at_equal_n, "density_coverage", "dc_k"),
           (Output("density", "density ({space} features)", 3, DISTRIBUTION, "higher", headline=True),
            Output("coverage", "coverage ({space} features)", 3, DISTRIBUTION, "higher", headline=True)),
           "inception", derived=_equal_n_protocol, floor=True, title="density/coverage"),
    # The HVAE paper's formula is not a distance (facegen.metrics.pixel_fid): it ranks nothing.
    Metric("approx_fid_pixel", (), _approx_fid_pixel, (Output("approx_fid_pixel", "pixel approx. FID", 1, OTHER),), floor=True),
    Metric("inception_score", (), _inception_score,
           (Output("inception_score", "Inception Score", 2, OTHER, "higher"), Output("inception_score_std"))),
    Metric("sharpness", (), _sharpness, (Output("sharpness_samples", "sharpness", 0, OTHER), Output("sharpness_real"))),
    Metric("lpips_diversity", ("lpips_pairs",), _lpips_diversity,
           (Output("lpips_diversity", "LPIPS diversity", 3, OTHER, headline=True), Output("lpips_diversity_real", headline=True)),
           derived=_lpips_size),
    Metric("reconstruction", ("recon_split", "n_recon"), None,
           (Output("recon_mse", "MSE", 4, RECON, "lower"), Output("recon_psnr", "PSNR dB", 2, RECON, "higher"),
            Output("recon_ssim", "SSIM", 3, RECON, "higher"), Output("recon_lpips", "LPIPS", 3, RECON, "lower"),
            Output("kl", "KL nats", 1, LIKELIHOOD),
            Output("iwae_bpd", "IWAE bound, dequantized, post-hoc Gaussian decoder, bits/dim", 2, LIKELIHOOD, "lower"),
            Output("sharpness_recon", "sharpness", 0, LIKELIHOOD)), stage="reconstruction"),
)


def sample_metrics(ev: Mapping, floor: bool = False) -> list[Metric]:
    """The sample metrics the evaluation config computes (those of its feature spaces and the pixel
    ones); with ``floor``, those the real-versus-real floor computes."""
    spaces = set(ev["feature_spaces"])
    return [m for m in REGISTRY if m.stage == "samples" and (m.space is None or m.space in spaces) and (m.floor or not floor)]


def outputs(stage: str | None = None) -> list[tuple[Metric, Output]]:
    return [(m, o) for m in REGISTRY if stage in (None, m.stage) for o in m.outputs]


def headline() -> tuple[str, ...]:
    """The outputs the quality gates and the tuning read."""
    return tuple(o.name for _, o in outputs() if o.headline)


def verdict_metric() -> Output:
    """The output every verdict on sample quality decides on."""
    return next(o for _, o in outputs() if o.decides)


def protocol_keys() -> tuple[str, ...]:
    """The evaluation keys that define the sample metrics' protocol: each space's setting, then the metrics' keys."""
    keys = [s.setting for s in SPACES.values()]
    keys += [k for m in REGISTRY if m.stage == "samples" for k in m.keys]
    return tuple(dict.fromkeys(keys))


def tables() -> dict[str, list[tuple[str, str, int, float]]]:
    """The report's tables: title -> [(output, label, digits, scale)], in registry order."""
    out: dict[str, list] = {}
    for metric, o in outputs():
        if o.table is not None:
            label = SPACES[metric.space].label if metric.space else ""
            out.setdefault(o.table.format(space=label), []).append((o.name, o.label.format(space=label), o.digits, o.scale))
    return out


def evaluate(samples: SampleSet, ev: dict, floor: bool = False) -> tuple[dict, dict]:
    """Every metric of ``samples`` under the evaluation config ``ev``: (metrics, protocol). A metric whose
    feature space is unavailable, or that cannot be computed on these images (a split smaller than k + 1),
    gets None and a note saying why, counted rather than fatal."""
    metrics, protocol = {}, {}
    for metric in sample_metrics(ev, floor):
        if metric.space in samples.unavailable:
            metrics.update(metric.unavailable(samples.unavailable[metric.space]))
        else:
            try:
                metrics.update(metric.compute(samples, ev))
            except ValueError as exc:
                metrics.update(metric.unavailable(f"unavailable: {metric.title or metric.name} on {len(samples.samples)} "
                                                  f"{samples.what}: {exc}"))
        protocol.update({k: ev[k] for k in metric.keys})
        protocol.update(metric.derived(samples, ev))
    return metrics, protocol
