rule provenance:
    input:
        [manifest(d) for d in DATASETS],
    output:
        str(paths.provenance(config)),
    params:
        cfg=full_config(),
        # Part of the params so that a new commit or config rewrites the record.
        commit=git_commit(),
        config_hash=config_hash(config),
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{LOGS}/benchmarks/provenance.tsv"
    resources:
        **rule_resources("provenance"),
    conda:
        "../../environment.yml"
    shell:
        "facegen provenance --config {params.cfg:q} --manifests {input} --out {output} --log {log}"


rule plan:
    input:
        [f for d in DATASETS for f in prepared_files(d)],
    output:
        str(paths.plan(config)),
    params:
        cfg=full_config(),
    log:
        f"{LOGS}/plan.log",
    benchmark:
        f"{LOGS}/benchmarks/plan.tsv"
    threads: TRAIN_THREADS
    resources:
        **rule_resources("plan"),
    conda:
        "../../environment.yml"
    shell:
        "facegen plan --config {params.cfg:q} --out {output} --log {log}"


rule findings:
    input:
        findings_files(),
    output:
        json=str(FINDINGS["json"]),
        figure=report(str(FINDINGS["figure"]), caption=f"{CAPTIONS}/findings.rst", category="Findings"),
    params:
        cfg=full_config(),
    log:
        f"{LOGS}/findings.log",
    benchmark:
        f"{LOGS}/benchmarks/findings.tsv"
    resources:
        **rule_resources("findings"),
    conda:
        "../../environment.yml"
    shell:
        "facegen findings --config {params.cfg:q} --log {log}"


rule report:
    input:
        provenance=str(paths.provenance(config)),
        sections=report_section_inputs(),
    output:
        **report_outputs(),
    params:
        cfg=full_config(),
        pdf=lambda wildcards, output: f"--pdf {output.pdf}" if "pdf" in output.keys() else "",
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{LOGS}/benchmarks/report.tsv"
    resources:
        **rule_resources("report"),
    conda:
        "../../environment.yml"
    shell:
        "facegen report --config {params.cfg:q} --html {output.html} {params.pdf} --log {log}"
