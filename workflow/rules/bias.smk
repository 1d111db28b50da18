# Demographic classifiers and the bias analysis (results/bias/).


rule demographic_classifier:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        model=DEMOGRAPHIC_CLASSIFIER,
        metrics=sibling_json(DEMOGRAPHIC_CLASSIFIER),
        figure=report(
            os.path.splitext(DEMOGRAPHIC_CLASSIFIER)[0] + ".png",
            caption=f"{CAPTIONS}/demographic_classifier.rst",
            category="Bias",
        ),
    log:
        f"{LOGS}/bias/classifier/{{dataset}}/{{source}}.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/classifier/{{dataset}}/{{source}}.tsv"
    wildcard_constraints:
        source=r"gray48|\d+",
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("demographic_classifier"),
    params:
        cfg=classifier_config(),
    shell:
        "facegen demographic-classifier {wildcards.dataset} {wildcards.source} --config {params.cfg:q} "
        "--out {output.model} --log {log}"


rule bias_reconstruction:
    input:
        eval_outputs("per_image"),
    output:
        groups=BIAS_RECONSTRUCTION["groups"],
        disparity=BIAS_RECONSTRUCTION["disparity"],
        forest=report(BIAS_RECONSTRUCTION["forest"], caption=f"{CAPTIONS}/bias_forest.rst", category="Bias"),
    log:
        f"{LOGS}/bias/reconstruction.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/reconstruction.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("bias_reconstruction"),
    params:
        cfg=experiment_config(),
    shell:
        "facegen bias-reconstruction --config {params.cfg:q} --out-dir $(dirname {output.groups}) --log {log}"


rule bias_dataset:
    input:
        [f for d in DATASETS for f in prepared_files(d)],
    output:
        groups=BIAS_DATASET["groups"],
        imbalance=BIAS_DATASET["imbalance"],
        faces=report(BIAS_DATASET["faces"], caption=f"{CAPTIONS}/mean_faces.rst", category="Bias"),
    log:
        f"{LOGS}/bias/dataset.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/dataset.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("bias_dataset"),
    params:
        cfg=classifier_config(),
    shell:
        "facegen bias-dataset --config {params.cfg:q} --out-dir $(dirname {output.groups}) --log {log}"


rule bias_generation:
    input:
        bias_generation_inputs(config),
    output:
        summary=BIAS_GENERATION["summary"],
        mix=BIAS_GENERATION["mix"],
        quality=BIAS_GENERATION["quality"],
        figure=report(BIAS_GENERATION["figure"], caption=f"{CAPTIONS}/generation_mix.rst", category="Bias"),
    log:
        f"{LOGS}/bias/generation.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/generation.tsv"
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("bias_generation"),
    params:
        cfg=experiment_config(),
    shell:
        "facegen bias-generation --config {params.cfg:q} --out-dir $(dirname {output.summary}) --log {log}"


rule bias_mitigation:
    input:
        EVALUATION_SUMMARY["table"],
        BIAS_RECONSTRUCTION["disparity"],
        BIAS_GENERATION["summary"],
    output:
        str(paths.bias_mitigation(config)),
    log:
        f"{LOGS}/bias/mitigation.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/mitigation.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("bias_mitigation"),
    params:
        cfg=experiment_config(),
    shell:
        "facegen bias-mitigation --config {params.cfg:q} --out {output} --log {log}"
