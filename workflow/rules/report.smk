rule provenance:
    input:
        [manifest(d) for d in DATASETS],
    output:
        str(paths.provenance(config)),
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{LOGS}/benchmarks/provenance.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("provenance"),
    params:
        cfg=full_config(),
        # Part of the params so that a new commit or config rewrites the record.
        commit=git_commit(),
        config_hash=config_hash(config),
    shell:
        "facegen provenance --config {params.cfg:q} --manifests {input} --out {output} --log {log}"


rule plan:
    input:
        [f for d in DATASETS for f in prepared_files(d)],
    output:
        str(paths.plan(config)),
    log:
        f"{LOGS}/plan.log",
    benchmark:
        f"{LOGS}/benchmarks/plan.tsv"
    conda:
        "../../environment.yml"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("plan"),
    params:
        cfg=full_config(),
    shell:
        "facegen plan --config {params.cfg:q} --out {output} --log {log}"


rule findings:
    input:
        findings_files(),
    output:
        json=str(FINDINGS["json"]),
        figure=report(str(FINDINGS["figure"]), caption=f"{CAPTIONS}/findings.rst", category="Findings"),
    log:
        f"{LOGS}/findings.log",
    benchmark:
        f"{LOGS}/benchmarks/findings.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("findings"),
    params:
        cfg=full_config(),
    shell:
        "facegen findings --config {params.cfg:q} --log {log}"


rule report:
    input:
        provenance=str(paths.provenance(config)),
        sections=report_section_inputs(),
    output:
        **report_outputs(),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{LOGS}/benchmarks/report.tsv"
    conda:
        "../../environment.yml"
    resources:
        **rule_resources("report"),
    params:
        cfg=full_config(),
        pdf=lambda wildcards, output: f"--pdf {output.pdf}" if "pdf" in output.keys() else "",
    shell:
        "facegen report --config {params.cfg:q} --html {output.html} {params.pdf} --log {log}"
