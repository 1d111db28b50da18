rule fetch:
    output:
        manifest("{dataset}"),
    log:
        f"{LOGS}/fetch/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/fetch/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("fetch"),
    params:
        cfg=lambda wildcards: config_slice(wildcards.dataset),
    shell:
        "facegen fetch {wildcards.dataset} --config {params.cfg:q} --out {output} --log {log}"


# One prepare rule per dataset: each declares exactly the arrays it writes (UTKFace adds a 48x48
# grayscale variant), and the DVC stage generated from it tracks the same files.
for _name in DATASETS:

    rule:
        name:
            f"prepare_{_name}"
        input:
            manifest(_name),
        output:
            prepared_files(_name),
        log:
            f"{LOGS}/prepare/{_name}.log",
        benchmark:
            f"{LOGS}/benchmarks/prepare/{_name}.tsv"
        conda:
            "../../environment.yml"
        resources:
            **rule_resources("prepare"),
        params:
            dataset=_name,
            out_dir=lambda wildcards, output: os.path.dirname(output[0]),
            cfg=config_slice(_name),
        shell:
            "facegen prepare {params.dataset} --config {params.cfg:q} --manifest {input} --out-dir {params.out_dir} --log {log}"


rule summarize:
    input:
        lambda wildcards: prepared_files(wildcards.dataset),
    output:
        table=DATASET_SUMMARY["table"],
        figure=report(
            DATASET_SUMMARY["figure"],
            caption=f"{CAPTIONS}/dataset_summary.rst",
            category="Datasets",
        ),
    log:
        f"{LOGS}/summarize/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/summarize/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("summarize"),
    params:
        cfg=lambda wildcards: config_slice(wildcards.dataset),
        data_dir=lambda wildcards, input: os.path.dirname(input[0]),
    shell:
        "facegen summarize {wildcards.dataset} --config {params.cfg:q} --data-dir {params.data_dir} "
        "--table {output.table} --figure {output.figure} --log {log}"
