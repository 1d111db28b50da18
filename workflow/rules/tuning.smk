# The recipe tuning (facegen.tuning): the candidates are trained, their reference features made and
# their runs evaluated by the study's own rules, re-pointed at results/tuning and at the tuning study's
# config (its candidates as models, the validation split as the FID reference).


use rule real_features as tuning_real_features with:
    output:
        features=f"{RESULTS}/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.npz",
        protocol=f"{RESULTS}/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.json",
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),
    log:
        f"{LOGS}/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/real/{{dataset}}/{{resolution}}/{{split}}.tsv"


use rule real_floor as tuning_real_floor with:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
        reference=lambda wildcards: tuning_real_file(wildcards.dataset, wildcards.resolution),
    output:
        features=f"{RESULTS}/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.npz",
        protocol=f"{RESULTS}/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.json",
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),
    log:
        f"{LOGS}/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/real/{{dataset}}/{{resolution}}/floor_{{split}}.tsv"


use rule train as tuning_train with:
    input:
        data=lambda wildcards: prepared_files(wildcards.dataset),
        weights=lambda wildcards: train_weights(wildcards.model, TUNING),
    output:
        model=f"{RESULTS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model.pt",
        history=f"{RESULTS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/history.csv",
        card=f"{RESULTS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model_card.json",
    params:
        cfg=lambda wildcards: json.dumps(
            run_config(TUNING, wildcards.dataset, int(wildcards.resolution), wildcards.model, int(wildcards.seed)),
            sort_keys=True,
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
    log:
        f"{LOGS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    priority: lambda wildcards: train_priority(wildcards, TUNING)
    wildcard_constraints:
        model=TUNING_MODELS,


use rule evaluate as tuning_evaluate with:
    input:
        model=f"{RESULTS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model.pt",
        card=f"{RESULTS}/tuning/train/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/model_card.json",
        real=lambda wildcards: tuning_real_file(wildcards.dataset, wildcards.resolution),
    output:
        metrics=f"{RESULTS}/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/metrics.json",
        per_image=f"{RESULTS}/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/per_image.parquet",
        samples=f"{RESULTS}/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}/samples.npz",
    params:
        cfg=lambda wildcards: json.dumps(eval_config(TUNING, wildcards.dataset), sort_keys=True),
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning/eval/{{dataset}}/{{resolution}}/{{model}}/{{seed}}.tsv"
    wildcard_constraints:
        model=TUNING_MODELS,


rule tuning_summary:
    input:
        metrics=tuning_eval_outputs(),
        floor=tuning_floor_outputs(),
    output:
        table=TUNING_OUTPUTS["table"],
        figure=report(TUNING_OUTPUTS["figure"], caption=f"{CAPTIONS}/tuning.rst", category="Tuning"),
        summary=TUNING_OUTPUTS["summary"],
    params:
        cfg=full_config(),
    log:
        f"{LOGS}/tuning_summary.log",
    benchmark:
        f"{LOGS}/benchmarks/tuning_summary.tsv"
    conda:
        "../../environment.yml"
    shell:
        "facegen tuning-summary --config {params.cfg:q} --metrics {input.metrics} --floor {input.floor} "
        "--table {output.table} --figure {output.figure} --summary {output.summary} --log {log}"
