"""facegen.metrics.evaluate: the registry of sample metrics and the protocol it records."""

import numpy as np
import pytest

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
    assert list(protocol) == ["kid_subsets", "kid_subset_size", "prc_k", "prdc_n", "prdc_real_subsets"] and protocol["prc_k"] == 3
    assert (protocol["prdc_n"], protocol["prdc_real_subsets"]) == (40, 1)
    assert list(scores)[0] == "fid"


def test_precision_recall_and_density_coverage_compare_equal_sizes(monkeypatch):
    """200 samples of the reference's own distribution against 1,000 reference images: at equal n (five
    disjoint real subsets of 200) coverage is near its published value for identical distributions,
    1 - 2^-k = 0.97 at k = 5; 200 against all 1,000 would cap it near 1 - (5/6)^5 = 0.60."""
    from facegen.metrics import distribution

    monkeypatch.setattr(metrics, "REGISTRY", tuple(m for m in metrics.REGISTRY if m.name in ("precision_recall", "density_coverage")))
    rng = np.random.default_rng(0)
    real_feats, gen = rng.normal(size=(1000, 8)), rng.normal(size=(200, 8))
    real = {"features": real_feats, "mu": real_feats.mean(0), "sigma": np.cov(real_feats, rowvar=False)}
    images = np.zeros((200, 8, 8, 3), np.uint8)
    ev = {"prc_k": 3, "dc_k": 5, "seed": 0, "feature_spaces": ["inception"]}
    scores, protocol = metrics.evaluate(metrics.SampleSet(images, {"inception": gen}, real, images), ev)
    assert (protocol["prdc_n"], protocol["prdc_real_subsets"]) == (200, 5)
    assert scores["coverage"] > 0.9 and distribution.density_coverage(gen, real_feats, 5)["coverage"] < 0.7
    assert 0.8 < scores["density"] < 1.2 and scores["precision"] > 0.6 and scores["recall"] > 0.6
    # fewer real images than samples: the samples are subsampled to the reference's size
    few = {**real, "features": real_feats[:50]}
    _, protocol = metrics.evaluate(metrics.SampleSet(images, {"inception": gen}, few, images), ev)
    assert (protocol["prdc_n"], protocol["prdc_real_subsets"]) == (50, 1)


def test_the_lpips_size_is_derived_from_the_samples():
    lpips = next(m for m in metrics.REGISTRY if m.name == "lpips_diversity")
    small = metrics.SampleSet(np.zeros((2, 32, 32, 3), np.uint8), None, {}, None)
    large = metrics.SampleSet(np.zeros((2, 128, 128, 3), np.uint8), None, {}, None)
    assert lpips.derived(small, {}) == {"lpips_size": 64} and lpips.derived(large, {}) == {"lpips_size": 128}


def test_every_metric_declares_a_known_space_and_every_shown_output_a_direction_field():
    from facegen.metrics.spaces import SPACES

    for metric in metrics.REGISTRY:
        assert metric.space is None or metric.space in SPACES, metric.name
        assert metric.stage in ("samples", "reconstruction") and (metric.compute is None) == (metric.stage != "samples")
        for o in metric.outputs:
            assert o.better in (None, "lower", "higher"), o.name
            assert (o.table is None) == (o.label == ""), o.name  # a column needs a label
    names = [o.name for _, o in metrics.outputs()]
    assert len(names) == len(set(names))
    shown = {name for spec in metrics.tables().values() for name, *_ in spec}
    assert {"fid", "fd_dinov2", "kid", "recon_mse"} <= shown and set(metrics.headline()) <= set(names)


def test_a_space_without_its_network_makes_its_metrics_unavailable_and_leaves_the_rest():
    feats = np.random.default_rng(0).normal(size=(20, 4))
    real = {"features": feats, "mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False), "rows": np.arange(20)}
    images = np.zeros((20, 8, 8, 3), np.uint8)
    ev = {"kid_subsets": 2, "kid_subset_size": 5, "prc_k": 3, "dc_k": 5, "seed": 0,
          "feature_spaces": ["inception", "dinov2"]}
    scored = metrics.SampleSet(images, {"inception": feats}, real, images, {"dinov2": "unavailable: DINOv2 weights missing"})
    scores, _ = metrics.evaluate(scored, ev, floor=True)
    assert scores["fd_dinov2"] is None and scores["fd_dinov2_note"] == "unavailable: DINOv2 weights missing"
    assert abs(scores["fid"]) < 1e-6 and "lpips_diversity" not in scores  # the floor's metrics only
    # a split smaller than k + 1 images: that metric is unavailable, with its reason, not fatal
    few = metrics.SampleSet(images[:4], {"inception": feats[:4]}, real, images, {}, "val images")
    scores, _ = metrics.evaluate(few, {**ev, "kid_subset_size": 4, "feature_spaces": ["inception"]}, floor=True)
    assert scores["density"] is None and scores["density_note"].startswith("unavailable: density/coverage on 4 val images")
    assert "fd_dinov2" not in scores


def test_the_vit_flop_count_matches_the_published_vit_b16():
    """ViT-B/16 at 224x224 (197 tokens) is 17.6 GMACs (Dosovitskiy et al. 2021, as timm counts it): 35 GFLOP."""
    from facegen.metrics.spaces import SPACES, vit_gflop

    assert vit_gflop(12, 768, tokens=197, patch=16) / 2 == pytest.approx(17.6, rel=0.01)
    from facegen.metrics.dinov2 import MODELS

    costs = [SPACES["dinov2"].gflop({"dinov2_model": m}) for m in MODELS]
    assert costs == sorted(costs) and costs[2] == pytest.approx(162.0, abs=0.1)  # ViT-L/14, the default
