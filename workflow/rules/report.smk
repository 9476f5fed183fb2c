"""Per study: tidy tables, seaborn figures and the paper's page, registered for `snakemake --report`
under one category per study (the paper's title)."""


rule table:
    input:
        table_inputs,
    output:
        csv=report(
            "results/tables/{study}/{table}.csv",
            caption="../report/table.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="Tables",
            labels={"table": "{table}", "format": "csv"},
        ),
        html=report(
            "results/tables/{study}/{table}.html",
            caption="../report/table.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="Tables",
            labels={"table": "{table}", "format": "html"},
        ),
    wildcard_constraints:
        table="|".join(TABLES),
    params:
        spec=lambda wc: report_spec(wc.study, wc.table),
    log:
        "logs/table/{study}/{table}.log",
    benchmark:
        "results/benchmarks/table/{study}/{table}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust table --inputs {input} --spec {params.spec:q} --out {output.csv}"
        " --out-html {output.html} > {log} 2>&1"


rule figure:
    input:
        figure_inputs,
    output:
        report(
            "results/figures/{study}/{figure}.png",
            caption="../report/figure.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="Figures",
            labels={"figure": "{figure}"},
        ),
    wildcard_constraints:
        figure="|".join(FIGURE_INPUTS),
    params:
        spec=lambda wc: json.dumps({"kind": wc.figure}),
    log:
        "logs/figure/{study}/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{study}/{figure}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust figure --inputs {input} --spec {params.spec:q} --out {output} > {log} 2>&1"


rule page:
    input:
        attacks=lambda wc: STUDY_FILES[wc.study]["attacks"],
        transfer=lambda wc: STUDY_FILES[wc.study]["transfer"],
        analyses=lambda wc: STUDY_FILES[wc.study]["analyses"],
        training=lambda wc: STUDY_FILES[wc.study]["training"],
    output:
        html=report(
            "results/pages/{study}.html",
            caption="../report/page.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="Paper page",
            labels={"page": "{study}"},
        ),
        csv="results/pages/{study}_claims.csv",
        coverage="results/pages/{study}_coverage.csv",
    params:
        spec=lambda wc: page_spec(wc.study),
    log:
        "logs/page/{study}.log",
    benchmark:
        "results/benchmarks/page/{study}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust page --study {wildcards.study} --attacks {input.attacks} --transfer {input.transfer}"
        " --analyses {input.analyses} --training {input.training} --spec {params.spec:q}"
        " --out {output.html} --out-csv {output.csv} --out-coverage {output.coverage} > {log} 2>&1"


rule overview:
    input:
        coverage=lambda wc: [f"results/pages/{s}_coverage.csv" for s in requested_studies()],
        claims=lambda wc: [f"results/pages/{s}_claims.csv" for s in requested_studies()],
    output:
        html=report(
            "results/pages/overview.html",
            caption="../report/overview.rst",
            category="0. Overview: what reproduces",
            labels={"page": "overview"},
        ),
        csv="results/pages/overview_claims.csv",
    params:
        scale=config["scale"],
    log:
        "logs/page/overview.log",
    benchmark:
        "results/benchmarks/page/overview.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust overview --coverage {input.coverage} --claims {input.claims} --scale {params.scale}"
        " --out {output.html} --out-csv {output.csv} > {log} 2>&1"


rule about:
    input:
        results=lambda wc: sorted({f for s in requested_studies()
                                   for kind in ("training", "attacks", "transfer", "analyses")
                                   for f in STUDY_FILES[s][kind]}),
        targets=lambda wc: sorted({t for targets in about_targets().values() for t in targets}),
    output:
        html=report(
            "results/pages/about.html",
            caption="../report/about.rst",
            category="0. About this run",
            labels={"page": "provenance"},
        ),
        csv="results/pages/about_provenance.csv",
        timing=multiext("results/pages/about_timing_", "jobs.csv", "rules.csv", "studies.csv", "critical_path.csv"),
    params:
        timing=lambda wc: timing_spec(),
        prefix=lambda wc, output: output.timing[0].removesuffix("jobs.csv"),
    log:
        "logs/page/about.log",
    benchmark:
        "results/benchmarks/page/about.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust provenance {input.results} --out-html {output.html} --out-csv {output.csv}"
        " --timing {params.timing:q} --out-timing {params.prefix} > {log} 2>&1"
