# Pretrained weights (the FID Inception, the LPIPS AlexNet) are fetched, verified and cached by the
# CLI itself under resources/weights, with a lock, so both orchestrators need no rule for them.


rule real_features:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        features=REAL_FILE,
        protocol=sibling_json(REAL_FILE),
    log:
        f"{LOGS}/eval/real/{{dataset}}/{{resolution}}/{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/eval/real/{{dataset}}/{{resolution}}/{{split}}.tsv"
    wildcard_constraints:
        split="train|val|test",
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("real_features"),
    params:
        cfg=lambda wildcards: json.dumps(eval_config(config, wildcards.dataset), sort_keys=True),
    shell:
        "facegen real-features {wildcards.dataset} {wildcards.resolution} {wildcards.split} "
        "--config {params.cfg:q} --out {output.features} --log {log}"


rule real_floor:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
        reference=lambda wildcards: real_features_file(wildcards.dataset, wildcards.resolution),
    output:
        features=FLOOR_FILE,
        protocol=sibling_json(FLOOR_FILE),
    log:
        f"{LOGS}/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.tsv"
    wildcard_constraints:
        split="train|val|test",
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("real_floor"),
    params:
        cfg=lambda wildcards: json.dumps(eval_config(config, wildcards.dataset), sort_keys=True),
    shell:
        "facegen real-features {wildcards.dataset} {wildcards.resolution} {wildcards.split} "
        "--config {params.cfg:q} --reference {input.reference} --out {output.features} --log {log}"


rule evaluate:
    input:
        model=TRAIN_FILES["model"],
        card=TRAIN_FILES["card"],
        real=lambda wildcards: real_features_file(wildcards.dataset, wildcards.resolution),
    output:
        **EVAL_FILES,
    log:
        f"{LOGS}/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("evaluate"),
    params:
        cfg=lambda wildcards: json.dumps(eval_config(config, wildcards.dataset), sort_keys=True),
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "facegen evaluate --config {params.cfg:q} --run-dir {params.run_dir} --real {input.real} "
        "--out-dir {params.out_dir} --log {log}"


rule evaluation_summary:
    input:
        metrics=eval_outputs(),
        samples=eval_outputs("samples"),
        floors=floor_outputs(),
    output:
        table=EVALUATION_SUMMARY["table"],
        json=EVALUATION_SUMMARY["json"],
        fid_time=report(EVALUATION_SUMMARY["fid_time"], caption=f"{CAPTIONS}/fid_vs_time.rst", category="Evaluation"),
        scatter=report(EVALUATION_SUMMARY["scatter"], caption=f"{CAPTIONS}/precision_recall.rst", category="Evaluation"),
        per_run=EVALUATION_SUMMARY["per_run"],
        grids=report(EVALUATION_SUMMARY["grids"], caption=f"{CAPTIONS}/sample_grids.rst", category="Evaluation"),
        gates=EVALUATION_SUMMARY["gates"],
    log:
        f"{LOGS}/evaluation_summary.log",
    benchmark:
        f"{LOGS}/benchmarks/evaluation_summary.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("evaluation_summary"),
    shell:
        "facegen eval-summary --metrics {input.metrics} --floors {input.floors} --table {output.table} --json {output.json} "
        "--fid-time {output.fid_time} --scatter {output.scatter} --per-run {output.per_run} --grids {output.grids} "
        "--gates {output.gates} --log {log}"
