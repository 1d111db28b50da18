# Demographic classifiers and the bias analysis (results/bias/).


rule demographic_classifier:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        model=f"{RESULTS}/bias/classifier/{{dataset}}/{{source}}/classifier.pt",
        metrics=f"{RESULTS}/bias/classifier/{{dataset}}/{{source}}/classifier.json",
        figure=report(
            f"{RESULTS}/bias/classifier/{{dataset}}/{{source}}/classifier.png",
            caption=f"{CAPTIONS}/demographic_classifier.rst",
            category="Bias",
        ),
    params:
        cfg=experiment_config(),
    log:
        f"{LOGS}/bias/classifier/{{dataset}}/{{source}}.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/classifier/{{dataset}}/{{source}}.tsv"
    threads: TRAIN_THREADS
    wildcard_constraints:
        source=r"gray48|\d+",
    conda:
        "../../environment.yml"
    shell:
        "facegen demographic-classifier {wildcards.dataset} {wildcards.source} --config {params.cfg:q} "
        "--out {output.model} --log {log}"


rule bias_reconstruction:
    input:
        [f.replace("metrics.json", "per_image.parquet") for f in eval_outputs()],
    output:
        groups=f"{RESULTS}/bias/reconstruction_groups.csv",
        disparity=f"{RESULTS}/bias/reconstruction_disparity.csv",
        forest=report(f"{RESULTS}/bias/reconstruction_forest.png", caption=f"{CAPTIONS}/bias_forest.rst", category="Bias"),
    params:
        cfg=experiment_config(),
    log:
        f"{LOGS}/bias/reconstruction.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/reconstruction.tsv"
    conda:
        "../../environment.yml"
    shell:
        "facegen bias-reconstruction --config {params.cfg:q} --out-dir $(dirname {output.groups}) --log {log}"


rule bias_dataset:
    input:
        [f for d in DATASETS for f in prepared_files(d)],
    output:
        groups=f"{RESULTS}/bias/dataset_groups.csv",
        imbalance=f"{RESULTS}/bias/dataset_imbalance.csv",
        faces=report(f"{RESULTS}/bias/mean_faces.png", caption=f"{CAPTIONS}/mean_faces.rst", category="Bias"),
    params:
        cfg=experiment_config(),
    log:
        f"{LOGS}/bias/dataset.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/dataset.tsv"
    conda:
        "../../environment.yml"
    shell:
        "facegen bias-dataset --config {params.cfg:q} --out-dir $(dirname {output.groups}) --log {log}"


rule bias_generation:
    input:
        bias_generation_inputs(config),
    output:
        summary=f"{RESULTS}/bias/generation_summary.csv",
        mix=f"{RESULTS}/bias/generation_mix.csv",
        quality=f"{RESULTS}/bias/generation_quality.csv",
        figure=report(f"{RESULTS}/bias/generation_mix.png", caption=f"{CAPTIONS}/generation_mix.rst", category="Bias"),
    params:
        cfg=experiment_config(),
    log:
        f"{LOGS}/bias/generation.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/generation.tsv"
    threads: TRAIN_THREADS
    conda:
        "../../environment.yml"
    shell:
        "facegen bias-generation --config {params.cfg:q} --out-dir $(dirname {output.summary}) --log {log}"


rule bias_mitigation:
    input:
        f"{RESULTS}/evaluation/metrics.csv",
        f"{RESULTS}/bias/reconstruction_disparity.csv",
        f"{RESULTS}/bias/generation_summary.csv",
    output:
        f"{RESULTS}/bias/mitigation.csv",
    params:
        cfg=experiment_config(),
    log:
        f"{LOGS}/bias/mitigation.log",
    benchmark:
        f"{LOGS}/benchmarks/bias/mitigation.tsv"
    conda:
        "../../environment.yml"
    shell:
        "facegen bias-mitigation --config {params.cfg:q} --out {output} --log {log}"
