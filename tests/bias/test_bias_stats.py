"""The bias statistics: known answers, a known injected disparity, coverage of the bootstrap."""

import numpy as np
import pytest
from scipy import stats as st

from facegen.bias import stats

# The simulation: n = 200 labelled samples over 5 groups, a perfect classifier, and true mixes at
# these distances from uniform, along one direction of the simplex.
N, K, FD_VALUES = 200, 5, (0.0, 0.05, 0.12, 0.26)
DIRECTION = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) / np.sqrt(10)


def coverage(fd: float, reps: int = 300, n_boot: int = 300, seed: int = 0) -> dict[str, float]:
    """Share of replicates whose 95% interval holds the true fd_uniform: the interval of the unbiased square
    (mix_intervals, square-rooted) against the percentile bootstrap of the plug-in norm it replaced."""
    rng = np.random.default_rng(seed)
    u = stats.uniform(K)
    pred = rng.choice(K, (reps, N), p=u + fd * DIRECTION)
    _, low, high = stats.mix_intervals(pred, np.eye(K) * 40, u, n_boot, seed)["fd2_uniform"]
    after = [stats.distance_interval(lo, hi, u) for lo, hi in zip(low, high)]

    def plug_in(x, axis=-1):
        return np.linalg.norm(stats.tally(x, K, axis) / x.shape[axis] - u, axis=-1)

    before = st.bootstrap((pred,), plug_in, vectorized=True, n_resamples=n_boot, method="percentile", axis=-1,
                          rng=np.random.default_rng(seed)).confidence_interval
    return {"after": float(np.mean([lo <= fd <= hi for lo, hi in after])),
            "before": float(np.mean((before.low <= fd) & (fd <= before.high)))}


@pytest.mark.parametrize("fd", FD_VALUES[:2])
def test_the_fd_uniform_interval_covers_the_truth_near_uniform(fd):
    """A balanced twin sits near 0, where the plug-in's interval cannot reach: it lies above the truth."""
    found = coverage(fd)
    assert found["after"] >= 0.9
    if fd == 0:
        assert found["before"] < 0.1  # the plug-in norm's interval never holds an exact 0


def test_the_unbiased_squared_discrepancy_has_its_known_value_and_no_bias():
    counts = np.array([50, 30, 20])
    p = counts / 100
    plug_in = ((p - 1 / 3) ** 2).sum()
    assert stats.squared_distance_unbiased(counts, np.eye(3)) == pytest.approx(plug_in - (1 - (p ** 2).sum()) / 99)
    # Unbiased through an imperfect classifier too, where the plug-in is not: the mean over many draws is the truth.
    confusion = np.array([[0.8, 0.15, 0.05], [0.1, 0.85, 0.05], [0.2, 0.1, 0.7]])
    rng = np.random.default_rng(0)
    for true in (stats.uniform(3), np.array([0.5, 0.3, 0.2])):
        draws = rng.multinomial(100, confusion.T @ true, size=40000)
        estimates = stats.squared_distance_unbiased(draws, confusion)
        truth = ((true - 1 / 3) ** 2).sum()
        assert abs(estimates.mean() - truth) < 4 * estimates.std() / np.sqrt(len(estimates))
        plug_in = ((stats.correct_for_confusion(draws / 100, confusion) - 1 / 3) ** 2).sum(-1).mean()
        assert plug_in > truth + 2e-3
    # a classifier that puts every face in one group leaves the mix undetermined
    assert np.isnan(stats.squared_distance_unbiased(counts, np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], float)))


def test_the_chi_square_test_of_uniformity():
    assert stats.uniformity_test(np.array([40, 42, 38, 41, 39]), np.eye(5))[1] > 0.9
    assert stats.uniformity_test(np.array([80, 50, 30, 25, 15]), np.eye(5))[1] < 1e-6
    # Through a classifier that errs, a uniform true mix predicts C^T u: those counts are no evidence against it.
    confusion = np.array([[0.7, 0.3], [0.1, 0.9]])
    assert stats.uniformity_test(np.array([40, 60]), confusion) == pytest.approx((0.0, 1.0))
    assert stats.uniformity_test(np.array([50, 50]), confusion)[1] < 0.05


def test_the_paired_difference_follows_the_twins_mixes():
    rng = np.random.default_rng(1)
    confusion = np.array([[90, 10], [10, 90]])
    balanced, skewed = rng.choice(2, 300, p=[0.5, 0.5]), rng.choice(2, 300, p=[0.8, 0.2])
    fairer = stats.fd_difference(balanced, skewed, confusion, 2, 400, 0)
    assert fairer["high"] < 0 and fairer["low"] <= fairer["difference"] <= fairer["high"]
    assert stats.fd_difference(skewed, balanced, confusion, 2, 400, 0)["low"] > 0
    alike = stats.fd_difference(skewed, rng.choice(2, 300, p=[0.8, 0.2]), confusion, 2, 400, 0)
    assert alike["low"] < 0 < alike["high"]


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    reps = 300
    for r in range(reps):
        sample = rng.exponential(2.0, 80)  # skewed on purpose; true mean 2
        low, high = stats.bootstrap_ci(sample, n_boot=400, seed=r)
        hits += low <= 2.0 <= high
    assert 0.89 <= hits / reps <= 0.99


def test_injected_disparity_is_recovered_and_called_significant():
    rng = np.random.default_rng(1)
    groups = np.array(["a"] * 300 + ["b"] * 100 + ["c"] * 40)  # imbalanced, as in the synthetic data
    values = rng.normal(0.02, 0.004, len(groups))
    values[groups == "c"] += 0.01  # the hard group: 50% more error
    table = stats.group_table(values, groups, n_boot=500, n_perm=500, seed=0).set_index("group")
    assert table.loc["c", "significant"] and table.loc["c", "ci_low"] > table.loc["a", "ci_high"]
    assert table.loc["c", "mean"] == pytest.approx(0.03, abs=0.002)
    ratio = stats.disparity_ratio(table["mean"].to_numpy(), higher_is_better=False)
    assert ratio == pytest.approx(1.5, abs=0.1)


def test_no_disparity_is_not_called_significant():
    rng = np.random.default_rng(2)
    groups = np.repeat(["a", "b", "c", "d"], 100)
    table = stats.group_table(rng.normal(0, 1, 400), groups, n_boot=200, n_perm=500, seed=0)
    assert not table["significant"].any()


def test_holm_counts_a_binary_attribute_once():
    """Two groups, each against the pooled mean, are one hypothesis: its p is not adjusted, while three
    groups are three hypotheses and are."""
    rng = np.random.default_rng(5)
    groups = np.repeat(["a", "b"], 60)
    values = rng.normal(0, 1, 120) + np.where(groups == "b", 0.4, 0.0)
    table = stats.group_table(values, groups, n_boot=200, n_perm=500, seed=0)
    assert table["p_value"].nunique() == 1 and (table["p_holm"] == table["p_value"]).all()
    three = stats.group_table(values, np.repeat(["a", "b", "c"], 40), n_boot=200, n_perm=500, seed=0)
    assert (three["p_holm"] >= three["p_value"]).all() and (three["p_holm"] > three["p_value"]).any()


def test_permutation_pvalue_and_holm():
    values = np.r_[np.zeros(50), np.ones(50)]
    assert stats.permutation_pvalue(values, np.arange(100) < 50, n_perm=200) == pytest.approx(1 / 201)
    assert np.isnan(stats.permutation_pvalue(values, np.ones(100, bool)))
    adjusted = stats.holm(np.array([0.01, 0.04, 0.03, np.nan]))
    assert np.allclose(adjusted[:3], [0.03, 0.06, 0.06]) and np.isnan(adjusted[3])


def test_disparity_ratio_direction():
    assert stats.disparity_ratio(np.array([0.02, 0.04]), higher_is_better=False) == 2.0
    assert stats.disparity_ratio(np.array([0.6, 0.9]), higher_is_better=True) == pytest.approx(2 / 3)


def test_fairness_discrepancy_and_kl():
    p, q = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    assert stats.fairness_discrepancy(p, q) == pytest.approx(np.sqrt(0.18))
    assert stats.fairness_discrepancy(p, p) == 0
    assert stats.kl_divergence(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.8) + 0.5 * np.log(0.5 / 0.2), rel=1e-4)
    assert np.isfinite(stats.kl_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_fd_uniform_is_choi_et_al_distance_to_the_uniform_mix():
    assert stats.fairness_discrepancy(stats.uniform(4)) == 0
    assert stats.fairness_discrepancy([1.0, 0.0]) == pytest.approx(np.sqrt(0.5))
    closer, farther = [0.4, 0.35, 0.25], [0.6, 0.3, 0.1]
    assert stats.fairness_discrepancy(closer) < stats.fairness_discrepancy(farther)
    # a model that copies a skewed training mix has no drift but is far from fair
    train = np.array([0.7, 0.2, 0.1])
    assert stats.fairness_discrepancy(train, train) == 0 < stats.fairness_discrepancy(train)


def test_kl_from_the_reference_sees_a_vanished_group():
    generated, reference = np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])
    assert stats.kl_divergence(generated, reference) == pytest.approx(0.22, abs=0.01)
    assert stats.kl_divergence(reference, generated) == pytest.approx(2.26, abs=0.02)


def test_the_classifier_cells_are_its_test_set():
    """A bootstrap resamples the classifier's test set as one (true, predicted) cell per image."""
    counts = np.array([[40, 10], [5, 45]])
    cells = stats.classifier_cells(counts)
    assert len(cells) == 100 and stats.tally(cells, 4).reshape(2, 2).tolist() == counts.tolist()
    assert stats.tally(np.array([[0, 2, 2], [1, 1, 1]]), 3).tolist() == [[1, 0, 2], [0, 3, 0]]


def test_confusion_matrix_correction_inverts_a_known_mixing():
    confusion = np.array([[0.8, 0.15, 0.05], [0.1, 0.85, 0.05], [0.2, 0.1, 0.7]])
    true = np.array([0.6, 0.3, 0.1])
    observed = confusion.T @ true
    assert np.allclose(stats.correct_for_confusion(observed, confusion), true, atol=1e-9)
    rng = np.random.default_rng(3)
    t = rng.choice(3, 20000, p=[0.5, 0.3, 0.2])
    pred = np.array([rng.choice(3, p=confusion[i]) for i in t])
    estimated = stats.confusion_matrix(t, pred, [0, 1, 2])
    assert np.allclose(estimated, confusion, atol=0.02)
    assert np.allclose(stats.distribution(pred, [0, 1, 2]), confusion.T @ stats.distribution(t, [0, 1, 2]), atol=0.02)


def test_generation_mix_statistics_recover_a_known_mix():
    from facegen.bias.generation import mix_statistics

    confusion = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    train_mix = np.array([0.6, 0.3, 0.1])
    generated_mix = np.array([0.75, 0.2, 0.05])  # the model under-generates the minorities
    rng = np.random.default_rng(4)
    true = rng.choice(3, 20000, p=generated_mix)
    pred = np.array([rng.choice(3, p=confusion[t]) for t in true])
    out = mix_statistics(pred, train_mix, confusion * 10000, n_boot=200, seed=0)
    assert np.allclose(out["corrected"], generated_mix, atol=0.02)
    for name, truth in (("fd_train", stats.fairness_discrepancy(generated_mix, train_mix)),
                        ("fd_uniform", stats.fairness_discrepancy(generated_mix)),
                        ("kl_train_gen", stats.kl_divergence(train_mix, generated_mix))):
        assert out[name] == pytest.approx(truth, abs=0.03)
        assert out[f"{name}_ci_low"] - 0.01 <= truth <= out[f"{name}_ci_high"] + 0.01
    truth = stats.fairness_discrepancy(generated_mix)
    assert abs(out["fd_uniform_uncorrected"] - truth) > abs(out["fd_uniform"] - truth)  # the correction helps


def test_mix_interval_includes_the_classifier_test_sets_uncertainty():
    from facegen.bias.generation import mix_statistics

    confusion = np.array([[0.8, 0.2], [0.2, 0.8]])
    pred = np.random.default_rng(0).choice(2, 2000, p=[0.7, 0.3])
    width = {}
    for n_test in (50, 50000):
        out = mix_statistics(pred, np.array([0.5, 0.5]), confusion * n_test / 2, n_boot=300, seed=0)
        width[n_test] = out["fd_uniform_ci_high"] - out["fd_uniform_ci_low"]
    assert width[50] > 1.5 * width[50000]


def test_a_group_without_samples_is_counted_as_zero():
    from facegen.bias.generation import mix_statistics

    out = mix_statistics(np.array([0, 1] * 50), np.array([0.4, 0.4, 0.2]), np.eye(3) * 100, n_boot=50, seed=0)
    assert len(out["predicted"]) == 3 and out["predicted"][2] == 0
    assert out["fd_uniform"] == pytest.approx(stats.fairness_discrepancy([0.5, 0.5, 0.0]))
    assert out["kl_train_gen"] > 2  # the vanished group dominates


def test_balanced_reference_draws_the_smallest_groups_count_from_each():
    from facegen.bias.generation import balanced_reference

    groups = np.array([0] * 50 + [1] * 20 + [2] * 8)
    idx = balanced_reference(groups, 3, seed=0)
    assert np.bincount(groups[idx]).tolist() == [8, 8, 8]
    assert balanced_reference(groups, 4, seed=0) is None  # group 3 has no image
    assert balanced_reference(groups, 3, seed=0, min_per_group=10) is None


def test_a_seeds_reading_follows_the_paired_interval_of_the_difference():
    from facegen.bias.mitigation import fairer

    def row(low, high):
        return {"fd2_difference_ci_low": low, "fd2_difference_ci_high": high}

    assert fairer(row(-0.2, -0.05)) == "balanced"
    assert fairer(row(0.05, 0.2)) == "baseline"
    assert fairer(row(-0.05, 0.1)) == "no clear difference"
    assert fairer(row(float("nan"), 0.3)) == "no interval"


def test_per_group_kid_splits_both_sides_by_the_same_classifier():
    """Generated features identical to the real ones, and a classifier that puts 30% of group 0 in group 1:
    split by the same predictions, every group compares a set with itself, the KID of no generation gap
    (at most 0: the unbiased MMD^2 leaves the within-set diagonal out); split real by the true labels,
    the classifier's errors read as a large gap in group 1."""
    from facegen.bias.generation import group_kid
    from facegen.metrics.distribution import kid

    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1], 300)
    features = rng.normal(0, 0.3, (600, 8)) + 2 * truth[:, None]  # two groups apart in feature space
    pred = np.where((truth == 0) & (rng.random(600) < 0.3), 1, truth)

    def per_group(real_groups):
        return [r["kid"] for r in group_kid(features, pred, features, real_groups, ["a", "b"], 50, 0)]

    same, by_truth = per_group(pred), per_group(truth)
    for g in (0, 1):
        own = features[pred == g]
        assert same[g] == kid(own, own, 50, len(own), 0)["kid"] <= 0
    assert by_truth[1] > 20 * abs(same[1])
