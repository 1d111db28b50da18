rule train:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        **TRAIN_FILES,
    log:
        f"{LOGS}/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    priority: train_priority
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("train"),
    params:
        cfg=lambda wildcards: json.dumps(
            run_config(config, wildcards.dataset, int(wildcards.resolution), wildcards.model, int(wildcards.seed)),
            sort_keys=True,
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
    shell:
        "facegen train {wildcards.dataset} {wildcards.resolution} {wildcards.model} {wildcards.seed} "
        "--config {params.cfg:q} --out-dir {params.out_dir} --log {log}"


rule training_summary:
    input:
        run_outputs(),
    output:
        table=TRAINING_SUMMARY["table"],
        figure=report(TRAINING_SUMMARY["figure"], caption=f"{CAPTIONS}/training_curves.rst", category="Training"),
        replication=TRAINING_SUMMARY["replication"],
    log:
        f"{LOGS}/training_summary.log",
    benchmark:
        f"{LOGS}/benchmarks/training_summary.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("training_summary"),
    params:
        runs=lambda wildcards, input: sorted({os.path.dirname(f) for f in input}),
    shell:
        "facegen train-summary --runs {params.runs} --table {output.table} --figure {output.figure} "
        "--replication {output.replication} --log {log}"
