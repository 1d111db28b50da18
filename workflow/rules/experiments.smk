# Latent-space and restoration experiments: one rule per experiment (results/experiments/<name>/),
# plus the attribute classifier each dataset/resolution with attributes needs.


rule attribute_classifier:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        model=ATTRIBUTE_CLASSIFIER,
        metrics=sibling_json(ATTRIBUTE_CLASSIFIER),
    log:
        f"{LOGS}/experiments/classifier/{{dataset}}/{{resolution}}.log",
    benchmark:
        f"{LOGS}/benchmarks/experiments/classifier/{{dataset}}/{{resolution}}.tsv"
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("attribute_classifier"),
    params:
        cfg=classifier_config(),
    shell:
        "facegen attribute-classifier {wildcards.dataset} {wildcards.resolution} --config {params.cfg:q} "
        "--out {output.model} --log {log}"


for _name in EXPERIMENT_NAMES:

    rule:
        name:
            f"experiment_{_name}"
        input:
            experiment_inputs(config, _name),
        output:
            table=strings(paths.experiment_outputs(config, _name))["table"],
            figure=report(
                strings(paths.experiment_outputs(config, _name))["figure"],
                caption=f"{CAPTIONS}/experiments.rst",
                category="Experiments",
                subcategory=_name,
            ),
        log:
            f"{LOGS}/experiments/{_name}.log",
        benchmark:
            f"{LOGS}/benchmarks/experiments/{_name}.tsv"
        conda:
            "../../environment.yml"
        threads: TRAIN_THREADS
        resources:
            **rule_resources("experiment"),
        params:
            cfg=experiment_config(),
            name=_name,
        shell:
            "facegen experiment {params.name} --config {params.cfg:q} --out-dir $(dirname {output.table}) --log {log}"
