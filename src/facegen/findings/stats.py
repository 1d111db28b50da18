"""The tests behind the findings' verdicts: differences across training seeds, and agreement with a quoted
figure within a stated tolerance.

Across seeds, a model is better or worse than another when the 95% confidence interval of the difference
of their mean metrics excludes 0: Welch's t interval (Welch 1947), which keeps its level at 3 seeds a side
for roughly normal spreads (3.5% false verdicts in 4,000 simulated null comparisons here, against 21% for
a percentile bootstrap, which undercovers at so few seeds). Beside it stands the exact permutation p over
every relabelling of the pooled seeds (Good 2005); with 3 seeds a side there are only 20 relabellings, so
that p cannot fall below 0.1 and cannot decide on its own.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

from facegen.permutation import permutation_p as permutation_p_of

CONFIDENCE = 0.95
# A quoted figure is "reproduced" when ours is within this share of it: one stated tolerance for every
# comparison with a source paper's number, wider than this study's seed-to-seed spread of FID (about 10%).
RELATIVE_TOLERANCE = 0.20
# Beyond this many relabellings the permutation p is estimated from a seeded random sample of them.
MAX_EXACT_SPLITS = 20_000

# The Methods' statement of the tests (what the paper shows; the docstring's simulation figures stay here).
METHOD = (f"Across training seeds, a model is better or worse than another on a metric when the {CONFIDENCE:.0%} Welch t interval "
          "of the difference of their means excludes 0 (Welch 1947); the exact permutation p over every relabelling of the "
          "pooled seeds (Good 2005) is shown beside it, but with few seeds it has a floor (0.1 at 3 seeds a side) and does not "
          "decide. A metric that varies over the seeds of neither model is not compared: no spread, no test.")

# The verdicts a finding may carry, and nothing else.
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
BETTER, WORSE, UNDECIDED = "better", "worse", "no difference shown"
UNAVAILABLE = "unavailable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, BETTER, WORSE, UNDECIDED, UNAVAILABLE)


def _finite(values) -> np.ndarray:
    v = np.asarray(list(values), float)
    return v[np.isfinite(v)]


# The range a metric's mean can take; a t interval ignores it (precision 0.003 +- 0.015 reads "[-0.011, 0.018]").
UNIT_RANGE = (0.0, 1.0)


def mean_interval(values, bounds: tuple[float, float] | None = None) -> dict:
    """Mean over seeds with its t confidence interval and the standard deviation; one seed has neither.

    ``bounds``: the metric's range (UNIT_RANGE for precision and recall). The interval is cut to it: the
    mean lies inside, so the cut interval covers it whenever the t interval does."""
    v = _finite(values)
    out = {"mean": float(v.mean()) if len(v) else math.nan, "n": int(len(v)), "low": math.nan, "high": math.nan,
           "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan}
    if len(v) > 1:
        if out["sd"] == 0:
            out["low"] = out["high"] = out["mean"]
        else:
            out["low"], out["high"] = map(float, st.t.interval(CONFIDENCE, len(v) - 1, loc=v.mean(), scale=st.sem(v)))
        if bounds is not None:
            out["low"], out["high"] = max(out["low"], bounds[0]), min(out["high"], bounds[1])
    return out


def prediction_interval(values) -> tuple[float, float]:
    """The t prediction interval of one more draw from the distribution ``values`` were drawn from:
    mean -+ t(n - 1) sd sqrt(1 + 1/n); (nan, nan) below 2 values."""
    v = _finite(values)
    if len(v) < 2:
        return math.nan, math.nan
    half = float(st.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1) * v.std(ddof=1) * math.sqrt(1 + 1 / len(v)))
    return float(v.mean()) - half, float(v.mean()) + half


def permutation_p(a, b, seed: int = 0) -> float:
    """Two-sided permutation p of |mean(a) - mean(b)| over the finite values (facegen.permutation): exact
    over every split up to MAX_EXACT_SPLITS of them, else over a seeded sample of that many."""
    return permutation_p_of(_finite(a), _finite(b), MAX_EXACT_SPLITS, seed)


def welch_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Welch's (1947) interval of mean(a) - mean(b), with the Welch-Satterthwaite degrees of freedom; a
    point when neither side varies."""
    if a.var() + b.var() == 0:  # the t statistic is 0 / 0 and scipy's interval NaN
        difference = float(a.mean() - b.mean())
        return difference, difference
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high)


def compare_seeds(a, b, lower_is_better: bool = True) -> dict:
    """Is model A better than model B on a metric measured once per training seed? The difference of
    means (A - B), its Welch 95% interval, the permutation p, and the verdict: 'better' or 'worse' when
    the interval excludes 0, else 'no difference shown'; 'unavailable' below 2 seeds a side."""
    a, b = _finite(a), _finite(b)
    out = {"n_a": int(len(a)), "n_b": int(len(b)), "difference": math.nan, "low": math.nan, "high": math.nan, "p": math.nan}
    if len(a) < 2 or len(b) < 2:
        return {**out, "verdict": UNAVAILABLE, "test": f"needs 2 or more seeds a side (has {len(a)} and {len(b)})"}
    difference = float(a.mean() - b.mean())
    if a.var() + b.var() == 0:
        # Three seeds that agree (a collapsed model's recall of 0, precision in steps of 1/n) are not a
        # population without spread; a zero-width interval would call any difference.
        return {**out, "difference": difference, "verdict": UNDECIDED,
                "test": f"no spread over seeds on either side ({len(a)} and {len(b)}): not tested"}
    low, high = welch_interval(a, b)
    out.update(difference=difference, low=low, high=high, p=permutation_p(a, b))
    if low > 0 or high < 0:
        verdict = BETTER if (high < 0) == lower_is_better else WORSE
    else:
        verdict = UNDECIDED
    test = (f"Welch {CONFIDENCE:.0%} interval of the difference over seeds ({len(a)} and {len(b)}), "
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
    if quoted == 0:
        raise ValueError("a relative tolerance needs a non-zero quoted figure")
    rel = (ours - quoted) / abs(quoted)
    verdict = REPRODUCED if abs(rel) <= tolerance else NOT_REPRODUCED
    return {"verdict": verdict, "relative": float(rel),
            "test": f"ours differs from the quoted figure by {rel:+.0%}; reproduced within ±{tolerance:.0%} (stated tolerance)"}
