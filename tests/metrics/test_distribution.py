"""FID, KID, precision/recall and density/coverage: known answers against plain numpy/scipy code."""

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial

from facegen.metrics import distribution as dist


def features(n, d=16, seed=0, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix * scale + shift).astype(np.float32)


def reference_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def reference_kid(gen, real, subsets, size, seed):
    rng = np.random.RandomState(seed)
    d = gen.shape[1]
    kernel = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    values = []
    for _ in range(subsets):
        x = gen[rng.choice(len(gen), size, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), size, replace=False)].astype(np.float64)
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        m = size
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values))


def test_fid_of_a_set_against_itself_is_zero():
    f = features(300)
    assert abs(dist.fid(f, f)) < 1e-6


def test_fid_matches_scipy_reference():
    a, b = features(400, seed=1), features(500, seed=2, shift=0.3, scale=1.2)
    assert dist.fid(a, b) == pytest.approx(reference_fid(a.astype(np.float64), b.astype(np.float64)), rel=1e-6)


@pytest.mark.parametrize("n_gen", [10, 15, 400])  # fewer samples than dimensions (low-rank path), and more
def test_fid_matches_torch_fidelity_on_every_path(n_gen):
    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    gen, real = features(n_gen, seed=5, shift=0.2), features(300, seed=6, scale=1.3)
    stats = lambda f: fid_features_to_statistics(torch.from_numpy(f.astype(np.float64)))  # noqa: E731
    expected = fid_statistics_to_metric(stats(gen), stats(real), verbose=False)["frechet_inception_distance"]
    real_stats = stats(real)
    assert dist.fid_from_features(gen, real_stats) == pytest.approx(expected, rel=1e-6)
    assert dist.fid_from_statistics(stats(gen), real_stats) == pytest.approx(expected, rel=1e-6)
    assert dist.fid(gen, real) == pytest.approx(expected, rel=1e-6)


def test_fid_grows_with_the_shift():
    real = features(400, seed=3)
    values = [dist.fid(features(400, seed=4, shift=s), real) for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values)


def test_kid_matches_reference_and_has_an_interval():
    gen, real = features(120, seed=5, shift=0.2), features(150, seed=6)
    out = dist.kid(gen, real, subsets=20, subset_size=50, seed=7)
    assert out["kid"] == pytest.approx(reference_kid(gen, real, 20, 50, 7), rel=1e-6, abs=1e-9)
    assert out["kid_ci_low"] <= out["kid"] <= out["kid_ci_high"]
    same = dist.kid(real, real, subsets=20, subset_size=50, seed=7)
    assert abs(same["kid"]) < out["kid"]


def test_kid_interval_covers_the_sampling_error_of_the_images():
    """Over independent draws of the images, KID varies about as much as its image-bootstrap interval
    says; the interval over subsets of fixed images is several times narrower than that."""
    kids, widths, subset_widths = [], [], []
    for r in range(30):
        out = dist.kid(features(150, seed=100 + r, shift=0.3), features(150, seed=200 + r),
                       subsets=20, subset_size=100, seed=r, image_bootstrap=200)
        kids.append(out["kid"])
        widths.append(out["kid_ci_high"] - out["kid_ci_low"])
        subset_widths.append(out["kid_subset_ci_high"] - out["kid_subset_ci_low"])
    spread = 2 * 1.96 * np.std(kids)
    assert 0.6 < np.mean(widths) / spread < 1.6
    assert np.mean(subset_widths) < 0.5 * np.mean(widths)


def test_kid_image_bootstrap_centres_on_the_unbiased_estimate():
    from torch_fidelity.metric_kid import kernel_mmd

    gen, real = features(40, d=8, seed=1, shift=0.5), features(40, d=8, seed=2)
    kxx, kyy, kxy = dist._kid_kernel(gen, gen), dist._kid_kernel(real, real), dist._kid_kernel(gen, real)
    unbiased = (kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (40 * 39) - 2 * kxy.mean()
    full = kernel_mmd(gen, real, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                      kid_kernel_poly_coef0=1)
    assert unbiased == pytest.approx(full, rel=1e-5)
    low, high = dist.kid_image_bootstrap(gen, real, bootstrap=300)
    assert low < unbiased < high


def test_kid_subset_larger_than_the_sets_is_a_clear_error():
    with pytest.raises(ValueError, match="KID subset size 100 exceeds the number of images.*kid_subset_size"):
        dist.kid(features(50), features(200), subsets=2, subset_size=100)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10,)), "must be \\(N, D\\)"),
    (np.full((10, 16), np.nan), "NaN"),
    (np.zeros((1, 16)), "need at least 2"),
    (np.zeros((10, 8)), "feature sizes differ"),
])
def test_bad_features(bad, match):
    with pytest.raises(ValueError, match=match):
        dist.fid(bad, features(10))


def test_precision_recall_and_density_coverage_known_answers():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    gen = np.array([[0.5], [10.0]])
    pr = dist.precision_recall(gen, real, k=1)
    # Real 1-NN radii are 1: only 0.5 lies in a real ball. Both generated radii are 9.5: every real point is covered.
    assert pr == {"precision": 0.5, "recall": 1.0}
    dc = dist.density_coverage(gen, real, k=1)
    # 0.5 lies in the balls around 0 and 1: density 2 / (k * M) = 1.0; coverage 2 of 4 real balls.
    assert dc == {"density": pytest.approx(1.0), "coverage": 0.5}


def test_identical_sets_have_full_precision_recall_coverage():
    f = features(200, seed=8)
    assert dist.precision_recall(f, f, k=3) == {"precision": 1.0, "recall": 1.0}
    assert dist.density_coverage(f, f, k=5)["coverage"] == 1.0


def _dense_kid_bootstrap(gen, real, bootstrap, seed):
    """The image bootstrap with whole kernel matrices, as it was computed before it went by blocks."""
    kxx, kyy, kxy = dist._kid_kernel(gen, gen), dist._kid_kernel(real, real), dist._kid_kernel(gen, real)
    rng = np.random.default_rng(seed)
    m, n = len(gen), len(real)
    wx = np.stack([np.bincount(rng.integers(0, m, m), minlength=m) for _ in range(bootstrap)]).astype(np.float64)
    wy = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(bootstrap)]).astype(np.float64)

    def within(w, k):
        return (((w @ k) * w).sum(1) - (w ** 2) @ np.diag(k)) / (w.sum(1) ** 2 - (w ** 2).sum(1))

    mmd = within(wx, kxx) + within(wy, kyy) - 2 * ((wx @ kxy) * wy).sum(1) / (m * n)
    return float(np.quantile(mmd, 0.025)), float(np.quantile(mmd, 0.975))


def _dense_density_coverage(gen, real, k):
    d_rr = scipy.spatial.distance.cdist(real, real)
    radii = np.sort(d_rr, axis=1)[:, k]
    inside = scipy.spatial.distance.cdist(real, gen) < radii[:, None]
    return {"density": inside.sum() / (k * len(gen)), "coverage": inside.any(axis=1).mean()}


@pytest.mark.parametrize("block", [7, 64, 10 ** 9])  # blocks of less than one row, of a few rows, and one block
def test_blocked_pairwise_metrics_equal_the_dense_ones(monkeypatch, block):
    import torch
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    gen, real = features(57, seed=11, shift=0.3), features(83, seed=12)
    dense_kid = _dense_kid_bootstrap(gen, real, 50, 3)
    dense_dc = _dense_density_coverage(gen.astype(np.float64), real.astype(np.float64), 5)
    p, r = calculate_precision_recall_full(torch.from_numpy(gen), torch.from_numpy(real), 3, 10 ** 6)
    monkeypatch.setattr(dist, "BLOCK_ELEMENTS", block)
    assert dist.kid_image_bootstrap(gen, real, 50, seed=3) == pytest.approx(dense_kid, rel=1e-10, abs=1e-12)
    assert dist.density_coverage(gen, real, 5) == pytest.approx(dense_dc, rel=1e-12)
    assert dist.precision_recall(gen, real, 3) == {"precision": pytest.approx(p), "recall": pytest.approx(r)}


def test_density_and_coverage_equal_the_prdc_package():
    """prdc is Naeem et al.'s reference implementation (its 0.2 release)."""
    import prdc
    gen, real = features(150, d=32, seed=13, shift=0.2, scale=0.9), features(240, d=32, seed=14)
    expected = prdc.compute_prdc(real_features=real, fake_features=gen, nearest_k=5)
    ours = dist.density_coverage(gen, real, k=5)
    assert ours["density"] == pytest.approx(expected["density"], abs=1e-6)
    assert ours["coverage"] == pytest.approx(expected["coverage"], abs=1e-6)
    assert 0 < ours["coverage"] < 1 and ours["density"] > 0  # a case that tests something


def test_fid_inf_recovers_the_population_fid_where_fid_n_is_biased():
    """Gaussian features, N(0, 0.6 I) against N(0, I) in 32 dimensions: the population FID is
    d (1 - sqrt(0.6))^2 = 1.63; FID of 1,000 samples lies 0.27 above it, and the extrapolation over
    100 to 1,000 samples (well above d, where FID_n is linear in 1/n) lands within 0.05 of it."""
    rng = np.random.default_rng(0)
    d = 32
    real = {"mu": np.zeros(d), "sigma": np.eye(d)}
    gen = rng.standard_normal((1000, d)) * np.sqrt(0.6)
    exact = d * (1 - np.sqrt(0.6)) ** 2
    out = dist.fid_infinity(gen, real, seed=0)
    assert dist.fid_from_features(gen, real) - exact > 0.2
    assert out["fid_inf"] == pytest.approx(exact, abs=0.1) and out["fid_inf_slope"] > 0
    assert list(dist.fid_inf_sizes(200)) == [20, 32, 45, 58, 71, 84, 97, 110, 122, 135, 148, 161, 174, 187, 200]
    assert list(dist.fid_inf_sizes(50_000))[:2] == [5000, 8214] and dist.fid_inf_sizes(50_000)[-1] == 50_000


def test_fid_inf_of_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="at least two subset sizes"):
        dist.fid_infinity(features(2), {"mu": np.zeros(16), "sigma": np.eye(16)})
