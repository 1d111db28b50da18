"""Report sections, in the order they appear in the paper."""

from facegen.report.sections import bias, compute, datasets, evaluation, experiments, training, tuning

SECTIONS = [datasets, training, evaluation, experiments, bias, compute, tuning]
