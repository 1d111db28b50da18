"""The bias statistics: known answers, a known injected disparity, coverage of the bootstrap."""

import numpy as np
import pytest

from facegen.bias import stats


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
    out = mix_statistics(pred, train_mix, confusion, n_boot=200, seed=0)
    assert np.allclose(out["corrected"], generated_mix, atol=0.02)
    true_fd = stats.fairness_discrepancy(generated_mix, train_mix)
    assert out["fd"] == pytest.approx(true_fd, abs=0.02) and out["fd_ci_low"] - 0.01 <= true_fd <= out["fd_ci_high"] + 0.01
    assert abs(out["fd_raw"] - true_fd) > abs(out["fd"] - true_fd)  # the correction helps
