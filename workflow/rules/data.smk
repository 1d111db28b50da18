wildcard_constraints:
    dataset="|".join(DATASETS),


rule fetch:
    output:
        manifest("{dataset}"),
    params:
        cfg=lambda wildcards: config_slice(wildcards.dataset),
    log:
        f"{LOGS}/fetch/{{dataset}}.log",
    conda:
        "../../environment.yml"
    shell:
        "facegen fetch {wildcards.dataset} --config {params.cfg:q} --out {output} --log {log}"


rule prepare:
    input:
        manifest("{dataset}"),
    output:
        directory(f"{RESULTS}/data/{{dataset}}"),
    params:
        cfg=lambda wildcards: config_slice(wildcards.dataset),
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/prepare/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "facegen prepare {wildcards.dataset} --config {params.cfg:q} --manifest {input} --out-dir {output} --log {log}"


rule summarize:
    input:
        f"{RESULTS}/data/{{dataset}}",
    output:
        table=f"{RESULTS}/summary/{{dataset}}.csv",
        figure=report(
            f"{RESULTS}/summary/{{dataset}}.png",
            caption=f"{CAPTIONS}/dataset_summary.rst",
            category="Datasets",
        ),
    params:
        cfg=lambda wildcards: config_slice(wildcards.dataset),
    log:
        f"{LOGS}/summarize/{{dataset}}.log",
    conda:
        "../../environment.yml"
    shell:
        "facegen summarize {wildcards.dataset} --config {params.cfg:q} --data-dir {input} "
        "--table {output.table} --figure {output.figure} --log {log}"
