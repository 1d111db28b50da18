"""The statistics of the bias analysis: bootstrap intervals, disparity ratios, permutation tests with
Holm's correction, the fairness discrepancy of Choi et al. 2020 with an unbiased estimate, a test of
uniformity and bootstrap intervals that resample the classifier's test set too, and confusion-matrix
correction."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.optimize import nnls
from statsmodels.stats.multitest import multipletests

from facegen.permutation import permutation_p

CONFIDENCE = 0.95
# Label values held at once by a vectorised bootstrap (resamples x replicates x sample size): about 160 MB.
BATCH_VALUES = 20_000_000


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                 stat=np.mean) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``values`` resampled with replacement (Efron and
    Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13)."""
    values = np.asarray(values, float)
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:  # scipy asks for two values; every resample of one value is that value
        return float(stat(values)), float(stat(values))
    ci = st.bootstrap((values,), stat, n_resamples=n_boot, confidence_level=confidence, method="percentile",
                      rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def permutation_pvalue(values: np.ndarray, in_group: np.ndarray, n_perm: int = 2000, seed: int = 0) -> float:
    """Two-sided permutation p that the group's mean differs from the pooled mean (facegen.permutation);
    NaN when the group is empty or everything."""
    values, in_group = np.asarray(values, float), np.asarray(in_group, bool)
    k = int(in_group.sum())
    if k == 0 or k == len(values):
        return float("nan")
    # mean(group) - pooled = (n - k) / n * (mean(group) - mean(rest)): the same test as group against the rest
    return permutation_p(values[in_group], values[~in_group], n_perm, seed)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, "A Simple Sequentially Rejective Multiple Test
    Procedure" (family-wise error control); NaN left as NaN and out of the family."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def group_table(values: np.ndarray, groups: np.ndarray, n_boot: int = 1000, n_perm: int = 2000, seed: int = 0,
                alpha: float = 0.05) -> pd.DataFrame:
    """Per group: n, mean, bootstrap CI, permutation p-value against the pooled mean (Holm-adjusted
    over the groups) and whether the difference is significant at ``alpha``.

    With two groups, each against the pooled mean is the one hypothesis that the two means are equal
    (see permutation_pvalue), so both rows carry its single p and Holm has a family of one: adjusting
    over two copies of it would halve the level for every binary attribute."""
    values, groups = np.asarray(values, float), np.asarray(groups)
    names = pd.unique(groups)
    rows = []
    for g in names:
        mask = groups == g
        low, high = bootstrap_ci(values[mask], n_boot, seed=seed)
        one_hypothesis = len(names) == 2 and rows
        rows.append({"group": g, "n": int(mask.sum()), "mean": float(values[mask].mean()), "ci_low": low, "ci_high": high,
                     "p_value": rows[0]["p_value"] if one_hypothesis else permutation_pvalue(values, mask, n_perm, seed)})
    table = pd.DataFrame(rows)
    pvalues = table["p_value"].to_numpy()
    table["p_holm"] = holm(pvalues[:1])[0] if len(names) == 2 else holm(pvalues)
    table["significant"] = table["p_holm"] < alpha
    table["pooled_mean"] = float(values.mean())
    return table


def disparity_ratio(means: np.ndarray, higher_is_better: bool) -> float:
    """Worst group's mean over the best group's: above 1 for error metrics, below 1 for similarities."""
    means = np.asarray(means, float)
    worst, best = (means.min(), means.max()) if higher_is_better else (means.max(), means.min())
    return float(worst / best) if best != 0 else float("nan")


def distribution(labels: np.ndarray, categories) -> np.ndarray:
    labels = np.asarray(labels)
    counts = np.array([(labels == c).sum() for c in categories], float)
    return counts / max(counts.sum(), 1)


def uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def fairness_discrepancy(p: np.ndarray, q: np.ndarray | None = None) -> float:
    """The L2 distance between group mixes p and q. With q uniform (the default) this is the fairness
    discrepancy of Choi et al. 2020, "Fair Generative Modeling via Weak Supervision" ('fd_uniform');
    with q the training mix it measures drift from the data instead ('fd_train'), a different question:
    a model that copies a skewed training mix has fd_train 0 and a large fd_uniform."""
    p = np.asarray(p, float)
    return float(np.linalg.norm(p - (uniform(len(p)) if q is None else np.asarray(q, float))))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-6):
    """KL(p || q) in nats over the last axis, with ``eps`` added to both so that an empty group stays
    finite. For a generated mix, call it as KL(reference || generated): a group the model has stopped
    generating then costs about p_g log(p_g / eps), while the other direction barely notices it."""
    p = np.asarray(p, float) + eps
    q = np.asarray(q, float) + eps
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    kl = np.sum(p * np.log(p / q), -1)
    return float(kl) if kl.ndim == 0 else kl


def row_shares(counts: np.ndarray) -> np.ndarray:
    """C[..., i, j] = P(predicted j | true i) from a count matrix (uniform for an empty row)."""
    counts = np.asarray(counts, float)
    rows = counts.sum(-1, keepdims=True)
    return np.where(rows > 0, counts / np.maximum(rows, 1), 1 / counts.shape[-1])


def confusion_matrix(true: np.ndarray, pred: np.ndarray, categories) -> np.ndarray:
    """C[i, j] = P(predicted j | true i), rows from the classifier's test split (uniform for an empty row)."""
    k = len(categories)
    c = np.zeros((k, k))
    index = {v: i for i, v in enumerate(categories)}
    for t, p in zip(true, pred):
        c[index[t], index[p]] += 1
    return row_shares(c)


def correct_for_confusion(predicted: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """The true group mix p that best explains the predicted mix q = C^T p, with p >= 0 and sum 1
    (non-negative least squares, then renormalised); leading axes of both are a batch."""
    q = np.asarray(predicted, float)
    c = np.broadcast_to(np.asarray(confusion, float), q.shape + q.shape[-1:])
    exact = _linear_correction(q, c)
    # Where C is invertible and its exact inverse already a mix, that is the NNLS optimum (zero residual,
    # feasible, unique): only the other rows need the solver, which keeps a bootstrap of a good
    # classifier vectorised.
    solve = ~(identified(c) & (exact >= 0).all(-1))
    out = exact.copy()
    for i in zip(*np.nonzero(solve)) if q.ndim > 1 else ([()] if solve else []):
        p, _ = nnls(c[i].T, q[i])
        out[i] = p
    total = out.sum(-1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1), 1 / q.shape[-1])


# Above this condition number the confusion matrix is taken as singular: the predicted mix no longer
# determines the true one (a classifier that puts every face in one group).
MAX_CONDITION = 1e10


def identified(confusion: np.ndarray) -> np.ndarray:
    """Whether the true mix is determined by the predicted one: C invertible (leading axes a batch)."""
    return np.linalg.cond(confusion) < MAX_CONDITION


def _inverse_transpose(confusion: np.ndarray) -> np.ndarray:
    """A = C^-T (the pseudo-inverse where C is singular), which maps the predicted mix to the true one."""
    return np.linalg.pinv(np.swapaxes(confusion, -1, -2))


def _linear_correction(q: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """A q: unbiased for the true mix when C is known, since E[q_hat] = C^T p, and negative where the
    classifier's errors exceed a group's share."""
    return np.einsum("...ij,...j->...i", _inverse_transpose(confusion), q)


def tally(labels: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """Counts of the classes 0..k-1 along ``axis`` (the others are a batch)."""
    labels = np.moveaxis(np.asarray(labels, np.int64), axis, -1)
    lead = labels.shape[:-1]
    rows = int(np.prod(lead))
    # one bincount over all rows at once, each row's labels offset into its own k slots
    offset = labels.reshape(rows, labels.shape[-1]) + (np.arange(rows) * k)[:, None]
    return np.bincount(offset.ravel(), minlength=rows * k).reshape(lead + (k,))


def classifier_cells(confusion_counts: np.ndarray) -> np.ndarray:
    """The classifier's test set as one (true, predicted) cell index i * k + j per image, a sample that a
    bootstrap resamples beside the labelled samples, so that the confusion matrix's own error enters
    the intervals."""
    counts = np.asarray(confusion_counts, float).round().astype(np.int64)
    if counts.sum() < 2:
        raise ValueError("the classifier's confusion counts hold fewer than 2 test images: no interval can include their error")
    return np.repeat(np.arange(counts.size), counts.ravel())


def _confusion_of(cells: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    counts = tally(cells, k * k, axis)
    return row_shares(counts.reshape(counts.shape[:-1] + (k, k)))


def squared_distance_unbiased(pred_counts: np.ndarray, confusion: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """An unbiased estimate of ||p - t||^2, the squared distance of the true group mix p from ``target``
    (uniform by default: the squared fairness discrepancy of Choi et al. 2020), from predicted counts.

    The plug-in ||p_hat - t||^2 is biased upward by the estimate's variance: for multinomial shares
    E||p_hat - u||^2 = ||p - u||^2 + (1 - sum p^2) / n. With the exact correction p_hat = A q_hat,
    A = C^-T, the bias is tr(A Sigma A^T), Sigma = (diag q - q q^T) / n, and (diag q_hat - q_hat q_hat^T)
    / (n - 1) estimates Sigma without bias; with C the identity this is ||p_hat - u||^2 - (1 - sum
    p_hat^2) / (n - 1). Unbiased given C (the confusion matrix's own error is left to the bootstrap),
    so it may be negative; NaN below 2 samples and where C is singular, which leaves the true mix
    undetermined. Leading axes are a batch."""
    counts = np.asarray(pred_counts, float)
    n = counts.sum(-1)
    q = counts / np.maximum(n, 1)[..., None]
    confusion = np.broadcast_to(np.asarray(confusion, float), q.shape + q.shape[-1:])
    a = _inverse_transpose(confusion)
    p = np.einsum("...ij,...j->...i", a, q)
    t = uniform(q.shape[-1]) if target is None else np.asarray(target, float)
    sigma = (q[..., :, None] * np.eye(q.shape[-1]) - q[..., :, None] * q[..., None, :]) / np.maximum(n - 1, 1)[..., None, None]
    bias = np.einsum("...ij,...jl,...il->...", a, sigma, a)
    return np.where((n >= 2) & identified(confusion), ((p - t) ** 2).sum(-1) - bias, np.nan)


def uniformity_test(pred_counts: np.ndarray, confusion: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test (scipy.stats.chisquare) that the true group mix is uniform: the
    predicted counts against n C^T u, what a uniform mix yields through the classifier's errors (C taken
    as known). A group the classifier never predicts drops out; one predicted where none can be gives p = 0."""
    counts = np.asarray(pred_counts, float)
    expected = counts.sum() * np.asarray(confusion, float).T @ uniform(len(counts))
    possible = expected > 0
    if (counts[~possible] > 0).any():
        return float("inf"), 0.0
    if possible.sum() < 2:
        return float("nan"), float("nan")
    result = st.chisquare(counts[possible], expected[possible])
    return float(result.statistic), float(result.pvalue)


def _percentile_bootstrap(samples: tuple, statistic, n_boot: int, seed: int, confidence: float = CONFIDENCE):
    """The percentile interval (low, high) of a vectorised ``statistic`` over scipy.stats.bootstrap's
    resamples, each sample resampled on its own (Efron and Tibshirani 1993, ch. 13); leading axes are
    independent replicates. A resample whose statistic is NaN (a resampled confusion matrix that is
    singular, so the mix is undetermined) could lie anywhere: it counts as beyond both ends, which
    widens the interval rather than dropping draws and narrowing it."""
    samples = [np.asarray(s) for s in samples]
    lead = np.broadcast_shapes(*(s.shape[:-1] for s in samples))
    samples = [np.broadcast_to(s, lead + s.shape[-1:]) for s in samples]
    batch = max(1, BATCH_VALUES // (int(np.prod(lead)) * sum(s.shape[-1] for s in samples)))
    with warnings.catch_warnings():
        # scipy warns of a degenerate distribution (every resample alike) for its own interval, not used here
        warnings.simplefilter("ignore", st.DegenerateDataWarning)
        draws = st.bootstrap(samples, statistic, vectorized=True, n_resamples=n_boot, confidence_level=confidence,
                             method="percentile", batch=batch, axis=-1, rng=np.random.default_rng(seed)).bootstrap_distribution
    alpha, undetermined = (1 - confidence) / 2, np.isnan(draws)
    # inverted_cdf: no interpolation, which an infinite neighbour would turn into NaN
    low = np.quantile(np.where(undetermined, -np.inf, draws), alpha, axis=-1, method="inverted_cdf")
    high = np.quantile(np.where(undetermined, np.inf, draws), 1 - alpha, axis=-1, method="inverted_cdf")
    return low, high


def mix_intervals(pred: np.ndarray, confusion_counts: np.ndarray, train_mix: np.ndarray, n_boot: int, seed: int = 0,
                  confidence: float = CONFIDENCE) -> dict[str, tuple]:
    """(estimate, low, high) of the corrected mix's fd2_uniform and fd2_train (unbiased squared distances to
    the uniform and the training mix, :func:`squared_distance_unbiased`) and of KL(training || corrected),
    with percentile bootstrap intervals that resample the labels ``pred`` (class indices along the last
    axis; leading axes are independent replicates) and the classifier's test set.

    The interval of the unbiased estimate holds near 0, where that of the plug-in norm cannot: the plug-in
    exceeds the truth by about its variance, so its interval missed a uniform mix in every replicate of
    n = 200 labels over 5 groups (tests/bias/test_bias_stats.py)."""
    k = len(train_mix)
    cells = classifier_cells(confusion_counts)

    def statistic(labels, test, axis=-1):
        counts, confusion = tally(labels, k, axis), _confusion_of(test, k, axis)
        mix = correct_for_confusion(counts / counts.sum(-1, keepdims=True), confusion)
        return np.stack([squared_distance_unbiased(counts, confusion), squared_distance_unbiased(counts, confusion, train_mix),
                         kl_divergence(train_mix, mix)])

    pred = np.asarray(pred)
    estimate = statistic(pred, cells)
    if pred.shape[-1] < 2:  # one sample: nothing to resample
        low = high = np.full(estimate.shape, np.nan)
    else:
        low, high = _percentile_bootstrap((pred, cells), statistic, n_boot, seed, confidence)
    return {name: (estimate[i], low[i], high[i]) for i, name in enumerate(("fd2_uniform", "fd2_train", "kl_train_gen"))}


def fd_difference(pred_a: np.ndarray, pred_b: np.ndarray, confusion_counts: np.ndarray, k: int, n_boot: int, seed: int = 0,
                  confidence: float = CONFIDENCE) -> dict:
    """fd2_uniform of samples A minus that of samples B (two twins labelled by one classifier), with a
    paired percentile bootstrap: each resample draws both sets of labels again and one draw of the
    classifier's test set that corrects both, so the error they share does not widen the interval."""
    cells = classifier_cells(confusion_counts)

    def statistic(a, b, test, axis=-1):
        confusion = _confusion_of(test, k, axis)
        return squared_distance_unbiased(tally(a, k, axis), confusion) - squared_distance_unbiased(tally(b, k, axis), confusion)

    estimate = float(statistic(np.asarray(pred_a), np.asarray(pred_b), cells))
    if min(len(pred_a), len(pred_b)) < 2:
        return {"difference": estimate, "low": np.nan, "high": np.nan}
    low, high = _percentile_bootstrap((np.asarray(pred_a), np.asarray(pred_b), cells), statistic, n_boot, seed, confidence)
    widest = 1 - 1 / k  # the largest fd2_uniform, so the largest difference either way
    return {"difference": estimate, "low": float(max(low, -widest)), "high": float(min(high, widest))}


def distance_interval(low: float, high: float, target: np.ndarray) -> tuple[float, float]:
    """An interval of a squared distance of a mix from ``target`` as one of the distance: both ends cut to
    the range the distance can take, from 0 to the farthest one-group mix, then square-rooted. The
    truth lies in that range and the map is monotone on it, so the coverage carries over."""
    target = np.asarray(target, float)
    farthest = float(((np.eye(len(target)) - target) ** 2).sum(1).max())
    return tuple(float(np.sqrt(np.clip(v, 0.0, farthest))) if v == v else float("nan") for v in (low, high))
