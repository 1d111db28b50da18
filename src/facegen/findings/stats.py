"""The tests behind the findings' verdicts: differences across training seeds, and agreement with a quoted
figure within a stated tolerance.

Across seeds, the interval is a percentile bootstrap of the difference of means, each model's seeds
resampled with replacement (Efron and Tibshirani 1993, ch. 13), and the p-value an exact permutation test
over every relabelling of the pooled seeds (Good 2005). With 3 seeds a side there are only 20 relabellings,
so the smallest two-sided p is 0.1: the verdict is decided by the bootstrap interval, which at so few seeds
is narrower than its nominal 95% (the Limitations say so), and the p-value is shown beside it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

CONFIDENCE = 0.95
N_BOOT = 10_000
# A quoted figure is "reproduced" when ours is within this share of it: one stated tolerance for every
# comparison with a source paper's number, wider than this study's seed-to-seed spread of FID (about 10%).
RELATIVE_TOLERANCE = 0.20

# The verdicts a finding may carry, and nothing else.
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
BETTER, WORSE, UNDECIDED = "better", "worse", "no difference shown"
UNAVAILABLE = "unavailable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, BETTER, WORSE, UNDECIDED, UNAVAILABLE)


def _finite(values) -> np.ndarray:
    v = np.asarray(list(values), float)
    return v[np.isfinite(v)]


def mean_interval(values, seed: int = 0) -> dict:
    """Mean over seeds with its percentile bootstrap interval; a single seed has no interval."""
    v = _finite(values)
    out = {"mean": float(v.mean()) if len(v) else math.nan, "n": int(len(v)), "low": math.nan, "high": math.nan,
           "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan}
    if len(v) > 1:
        boots = v[np.random.default_rng(seed).integers(0, len(v), (N_BOOT, len(v)))].mean(axis=1)
        alpha = (1 - CONFIDENCE) / 2
        out["low"], out["high"] = float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))
    return out


def permutation_p(a, b) -> float:
    """Exact two-sided p of |mean(a) - mean(b)| over every split of the pooled values into groups of
    len(a) and len(b) (the observed split included, so p >= 1 / C(n, len(a)))."""
    a, b = _finite(a), _finite(b)
    pooled, k = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    splits = list(itertools.combinations(range(len(pooled)), k))
    extreme = 0
    for idx in splits:
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        extreme += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed - 1e-12
    return extreme / len(splits)


def compare_seeds(a, b, lower_is_better: bool = True, seed: int = 0) -> dict:
    """Is model A better than model B on a metric measured once per training seed? The difference of
    means (A - B), its bootstrap interval, the exact permutation p, and the verdict: 'better' or 'worse'
    when the interval excludes 0, else 'no difference shown'; 'unavailable' below 2 seeds a side."""
    a, b = _finite(a), _finite(b)
    out = {"n_a": int(len(a)), "n_b": int(len(b)), "difference": math.nan, "low": math.nan, "high": math.nan, "p": math.nan}
    if len(a) < 2 or len(b) < 2:
        return {**out, "verdict": UNAVAILABLE, "test": f"needs 2 or more seeds a side (has {len(a)} and {len(b)})"}
    rng = np.random.default_rng(seed)
    boots = (a[rng.integers(0, len(a), (N_BOOT, len(a)))].mean(axis=1)
             - b[rng.integers(0, len(b), (N_BOOT, len(b)))].mean(axis=1))
    alpha = (1 - CONFIDENCE) / 2
    low, high = float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))
    out.update(difference=float(a.mean() - b.mean()), low=low, high=high, p=permutation_p(a, b))
    if low > 0 or high < 0:
        a_lower = high < 0
        verdict = BETTER if a_lower == lower_is_better else WORSE
    else:
        verdict = UNDECIDED
    test = (f"{CONFIDENCE:.0%} bootstrap interval of the difference over seeds ({len(a)} and {len(b)}), "
            f"[{low:.3g}, {high:.3g}]; exact permutation p = {out['p']:.2f}")
    return {**out, "verdict": verdict, "test": test}


def overall(verdicts: list[str], success: str = REPRODUCED, failure: str = NOT_REPRODUCED) -> str:
    """One verdict from several comparisons that must all go one way: ``success`` when every one is
    'better', ``failure`` when any is 'worse', 'unavailable' when any could not be made (or none was),
    else 'no difference shown'."""
    found = set(verdicts)
    if not found or UNAVAILABLE in found:
        return UNAVAILABLE
    if found == {BETTER}:
        return success
    return failure if WORSE in found else UNDECIDED


def against_quoted(ours: float | None, quoted: float, tolerance: float = RELATIVE_TOLERANCE) -> dict:
    """'reproduced' when ours is within ``tolerance`` (relative) of the quoted figure."""
    if ours is None or not math.isfinite(ours):
        return {"verdict": UNAVAILABLE, "relative": math.nan, "test": "no figure of ours to compare"}
    rel = (ours - quoted) / abs(quoted)
    verdict = REPRODUCED if abs(rel) <= tolerance else NOT_REPRODUCED
    return {"verdict": verdict, "relative": float(rel),
            "test": f"ours differs from the quoted figure by {rel:+.0%}; reproduced within ±{tolerance:.0%} (stated tolerance)"}
