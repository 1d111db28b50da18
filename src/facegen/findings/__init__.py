"""The paper's findings: for each source paper (the short names of ../shared/papers/README.md) and for the
bias analysis, its claims or questions, the quoted figure, ours, and a verdict computed from the result
files by the test or stated tolerance named beside it (facegen.findings.stats).

``facegen findings`` writes them, with the abstract's headlines, the methods' facts, the limitations and
a figure with seed error bars, to results/findings/; the report's first sections read those files only.
Planning the workflow imports this package, so its analysis modules load only when they run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from facegen import paths

log = logging.getLogger(__name__)


def inputs(config: dict) -> list[Path]:
    """The result files the findings read: the summaries of the study's runs (the latent experiments'
    tables where runs are selected for them), the demographic classifiers' metrics, the conv VAE's
    training histories and the datasets' prepare.json."""
    from facegen.experiments.selection import selected_runs
    from facegen.findings.results import Results
    from facegen.training.matrix import active_runs

    if not active_runs(config):
        return []
    res = Results(config)
    experiments = bool(selected_runs(config))
    files = [p for role, p in res.files().items() if experiments or not role.startswith("experiment_")]
    return sorted(set(files) | set(res.classifier_files()) | set(res.vae_histories()) | set(res.prepared_files()))


def compute(config: dict, res=None) -> dict:
    from facegen.findings import (bias, conv_vae_report, hvae_paper, stats, summary, vae_gan_study, vaegan_proposal,
                                  variations_report)
    from facegen.findings.results import Results

    res = res or Results(config)
    papers = [p.findings(res) for p in (hvae_paper, vaegan_proposal, variations_report, conv_vae_report, vae_gan_study, bias)]
    methods = summary.methods(res)
    return {"smoke": bool(config["report"].get("smoke", False)), "papers": papers,
            "abstract": summary.abstract(res, papers), "methods": methods, "limitations": summary.limitations(res, papers, methods),
            "verdict_counts": {v: sum(i["verdict"] == v for p in papers for i in p["items"]) for v in stats.VERDICTS}}


def write(config: dict) -> dict:
    from facegen.findings.figures import central_figure
    from facegen.findings.results import Results
    from facegen.io import write_json

    out, res = paths.findings(config), Results(config)
    found = compute(config, res)
    central = next((p.get("central") for p in found["papers"] if p.get("central")), None)
    found["has_figure"] = central_figure(res, central, out["figure"])
    write_json(out["json"], json.loads(json.dumps(found, default=float)))
    log.info("findings: %s", ", ".join(f"{n} {v}" for v, n in found["verdict_counts"].items() if n))
    return found
