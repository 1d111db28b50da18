"""The statistics of the bias analysis: bootstrap intervals, disparity ratios, permutation tests with
Holm's correction, the fairness discrepancy of Choi et al. 2020, and confusion-matrix correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.optimize import nnls
from statsmodels.stats.multitest import multipletests

from facegen.permutation import permutation_p


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


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> float:
    """KL(p || q) in nats, with ``eps`` added to both so that an empty group stays finite. For a generated
    mix, call it as KL(reference || generated): a group the model has stopped generating then costs
    about p_g log(p_g / eps), while the other direction barely notices it."""
    p = np.asarray(p, float) + eps
    q = np.asarray(q, float) + eps
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def row_shares(counts: np.ndarray) -> np.ndarray:
    """C[i, j] = P(predicted j | true i) from a count matrix (uniform for an empty row)."""
    counts = np.asarray(counts, float)
    rows = counts.sum(1, keepdims=True)
    return np.where(rows > 0, counts / np.maximum(rows, 1), 1 / counts.shape[1])


def resample_confusion(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The row-normalised confusion matrix of the classifier's test set drawn again with replacement: its
    (true, predicted) pairs are the cells of ``counts``, so a resample is one multinomial draw over them."""
    counts = np.asarray(counts, float)
    total = int(round(counts.sum()))
    if total == 0:
        return row_shares(counts)
    return row_shares(rng.multinomial(total, counts.ravel() / counts.sum()).reshape(counts.shape))


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
    (non-negative least squares, then renormalised)."""
    q = np.asarray(predicted, float)
    p, _ = nnls(np.asarray(confusion, float).T, q)
    return p / p.sum() if p.sum() > 0 else np.full(len(q), 1 / len(q))
