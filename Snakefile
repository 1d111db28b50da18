# facegen: low-resolution face generation study. Rules only call the `facegen` CLI; logic lives in src/facegen.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/bias.smk"
include: "workflow/rules/tuning.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_outputs(),
    default_target: True
