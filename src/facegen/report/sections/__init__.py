"""Report sections, in the order they appear in the paper: the generated abstract, methods, findings and
limitations first (facegen.findings), then the detailed sections behind them."""

from facegen.report.sections import bias, compute, datasets, evaluation, experiments, training, tuning
from facegen.report.sections.findings import ABSTRACT, FINDINGS, LIMITATIONS, METHODS

SECTIONS = [ABSTRACT, METHODS, FINDINGS, LIMITATIONS, datasets, training, evaluation, experiments, bias, compute, tuning]
