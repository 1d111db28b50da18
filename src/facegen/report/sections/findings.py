"""The paper's first sections, read from results/findings/ (facegen.findings): the abstract, the methods,
the findings on each source paper with their verdicts, and the limitations."""

from __future__ import annotations

from pathlib import Path

from facegen.io import read_json


def _has_runs(config: dict) -> bool:
    from facegen.training.matrix import active_runs

    return bool(active_runs(config))


class Part:
    """One section drawn from findings.json: ``key`` selects what its template reads."""

    def __init__(self, name: str, title: str):
        self.NAME, self.TITLE = name, title

    def inputs(self, config: dict) -> list[Path]:
        from facegen.paths import findings

        return list(findings(config).values()) if _has_runs(config) else []

    def context(self, config: dict, results: Path) -> dict:
        from facegen.paths import findings

        if not _has_runs(config):
            return {"smoke": False, "found": None, "figure": None}
        files = findings(config)
        found = read_json(files["json"])
        return {"smoke": found["smoke"], "found": found, "figure": str(files["figure"].resolve()) if found["has_figure"] else None}


ABSTRACT = Part("abstract", "Abstract")
METHODS = Part("methods", "Methods")
FINDINGS = Part("findings", "Findings")
LIMITATIONS = Part("limitations", "Limitations")
