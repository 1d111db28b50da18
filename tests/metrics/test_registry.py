"""facegen.metrics.evaluate: the registry of sample metrics and the protocol it records."""

import numpy as np

from facegen import metrics
from facegen.config import load_schema


def test_every_registered_key_is_an_evaluation_setting():
    settings = load_schema()["properties"]["evaluation"]["properties"]
    for metric in metrics.REGISTRY:
        assert set(metric.keys) <= set(settings), metric.name
    assert len({m.name for m in metrics.REGISTRY}) == len(metrics.REGISTRY)


def test_evaluate_runs_each_metric_and_records_its_keys(monkeypatch):
    keep = {"fid", "kid", "precision_recall"}
    monkeypatch.setattr(metrics, "REGISTRY", tuple(m for m in metrics.REGISTRY if m.name in keep))
    feats = np.random.default_rng(0).normal(size=(40, 8))
    real = {"features": feats, "mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False)}
    images = np.zeros((40, 32, 32, 3), np.uint8)
    ev = {"kid_subsets": 5, "kid_subset_size": 20, "prc_k": 3, "seed": 0, "dc_k": 5, "feature_spaces": ["inception"]}
    scores, protocol = metrics.evaluate(metrics.SampleSet(images, {"inception": feats}, real, images), ev)
    # the samples are the reference itself: FID 0, full precision and recall, and a KID far below a shifted set's
    assert abs(scores["fid"]) < 1e-6 and scores["precision"] == scores["recall"] == 1.0
    shifted, _ = metrics.evaluate(metrics.SampleSet(images, {"inception": feats + 3}, real, images), ev)
    assert shifted["fid"] > 8 and shifted["kid"] > 10 * abs(scores["kid"])
    assert list(protocol) == ["kid_subsets", "kid_subset_size", "prc_k"] and protocol["prc_k"] == 3
    assert list(scores)[0] == "fid"


def test_the_lpips_size_is_derived_from_the_samples():
    lpips = next(m for m in metrics.REGISTRY if m.name == "lpips_diversity")
    small = metrics.SampleSet(np.zeros((2, 32, 32, 3), np.uint8), None, {}, None)
    large = metrics.SampleSet(np.zeros((2, 128, 128, 3), np.uint8), None, {}, None)
    assert lpips.derived(small, {}) == {"lpips_size": 64} and lpips.derived(large, {}) == {"lpips_size": 128}
