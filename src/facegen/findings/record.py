"""One finding: a source paper's claim or question, its quoted figure, ours, and the verdict with the test
that decided it and the result files it was computed from."""

from __future__ import annotations

import math

from facegen.findings.stats import VERDICTS


def finding(claim: str, quoted: str, ours: str, verdict: str, test: str, sources: list[str]) -> dict:
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; a finding's verdict is one of {', '.join(VERDICTS)}")
    return {"claim": claim, "quoted": quoted, "ours": ours, "verdict": verdict, "test": test, "sources": sorted(set(sources))}


def fmt(value, digits: int = 3) -> str:
    """A number as the findings print it; n/a for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def pvalue(p: float) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.2f}"


def with_interval(summary: dict, digits: int = 3) -> str:
    """'mean [low, high] (n seeds)', or the single seed's value marked as one seed."""
    if summary["n"] == 0:
        return "n/a"
    if summary["n"] == 1:
        return f"{fmt(summary['mean'], digits)} (single seed)"
    return f"{fmt(summary['mean'], digits)} [{fmt(summary['low'], digits)}, {fmt(summary['high'], digits)}] ({summary['n']} seeds)"
