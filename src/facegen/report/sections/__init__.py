"""Report sections, in the order they appear in the paper."""

from facegen.report.sections import datasets, evaluation, training

SECTIONS = [datasets, training, evaluation]
