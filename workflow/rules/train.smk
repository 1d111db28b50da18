rule train:
    input:
        lambda wildcards: prepared_files(wildcards.dataset),
    output:
        model=f"{RESULTS}/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model.pt",
        history=f"{RESULTS}/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/history.csv",
        card=f"{RESULTS}/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model_card.json",
    params:
        cfg=lambda wildcards: json.dumps(
            run_config(config, wildcards.dataset, int(wildcards.resolution), wildcards.model, int(wildcards.seed)),
            sort_keys=True,
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
    log:
        f"{LOGS}/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    threads: workflow.cores
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} facegen train {wildcards.dataset} {wildcards.resolution} {wildcards.model} {wildcards.seed} "
        "--config {params.cfg:q} --out-dir {params.out_dir} --log {log}"
