# The recipe tuning (facegen.tuning): the candidates are trained, their reference features made and
# their runs evaluated by the study's own rules, re-pointed at results/tuning and at the tuning study's
# config (its candidates as models, the validation split as the FID reference).


use rule real_features as tuning_real_features with:
    output:
        features=TUNING_REAL_FILE,
        protocol=sibling_json(TUNING_REAL_FILE),
    log:
        f"{LOGS}/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.tsv"
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),


use rule real_floor as tuning_real_floor with:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
        reference=lambda wildcards: tuning_real_file(wildcards.dataset, wildcards.resolution),
    output:
        features=TUNING_FLOOR_FILE,
        protocol=sibling_json(TUNING_FLOOR_FILE),
    log:
        f"{LOGS}/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.tsv"
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),


use rule train as tuning_train with:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
    output:
        **TUNING_TRAIN_FILES,
    log:
        f"{LOGS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    wildcard_constraints:
        model=TUNING_MODELS,
    priority: lambda wildcards: train_priority(wildcards, TUNING)
    params:
        cfg=lambda wildcards: json.dumps(
            run_config(TUNING, wildcards.dataset, int(wildcards.resolution), wildcards.model, int(wildcards.seed)),
            sort_keys=True,
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),


use rule evaluate as tuning_evaluate with:
    input:
        model=TUNING_TRAIN_FILES["model"],
        card=TUNING_TRAIN_FILES["card"],
        real=lambda wildcards: tuning_real_file(wildcards.dataset, wildcards.resolution),
    output:
        **TUNING_EVAL_FILES,
    log:
        f"{LOGS}/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    wildcard_constraints:
        model=TUNING_MODELS,
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),


rule tuning_summary:
    input:
        metrics=tuning_eval_outputs(),
        floor=tuning_floor_outputs(),
    output:
        table=TUNING_OUTPUTS["table"],
        figure=report(TUNING_OUTPUTS["figure"], caption=f"{CAPTIONS}/tuning.rst", category="Tuning"),
        summary=TUNING_OUTPUTS["summary"],
    log:
        f"{LOGS}/tuning_summary.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning_summary.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("tuning_summary"),
    params:
        cfg=full_config(),
    shell:
        "facegen tuning-summary --config {params.cfg:q} --metrics {input.metrics} --floor {input.floor} "
        "--table {output.table} --figure {output.figure} --summary {output.summary} --log {log}"
