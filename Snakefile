# `snakemake --cores 8` from the repository root: the workflow itself is workflow/Snakefile (the layout of
# the Snakemake workflow catalog), which Snakemake also finds on its own where this file is absent.
include: "workflow/Snakefile"


# An included file's rules do not set the default target (Snakemake restores the including file's, here
# none), so without this `snakemake` with no target would build nothing; `rule all` is the one there.
workflow.default_target = "all"
