"""Tables and seaborn figures from the tidy results, registered for `snakemake --report`."""


rule table:
    input:
        lambda wc: {"attacks": ATTACK_RESULTS, "grad_norms": GRAD_RESULTS, "training": TRAIN_METRICS}[wc.table],
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "format": "csv"},
        ),
        html=report(
            "results/tables/{table}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "format": "html"},
        ),
    wildcard_constraints:
        table="attacks|grad_norms|training",
    params:
        spec=lambda wc: report_spec(wc.table),
    log:
        "logs/table/{table}.log",
    benchmark:
        "results/benchmarks/table/{table}.tsv"
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
        lambda wc: FIGURE_INPUTS[wc.figure],
    output:
        report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    wildcard_constraints:
        figure="|".join(FIGURE_INPUTS),
    params:
        spec=lambda wc: json.dumps({"kind": wc.figure}),
    log:
        "logs/figure/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{figure}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m snnrobust figure --inputs {input} --spec {params.spec:q} --out {output} > {log} 2>&1"


rule report_inputs:
    input:
        expand("results/tables/{table}.{ext}", table=["attacks", "grad_norms", "training"], ext=["csv", "html"]),
        expand("results/figures/{figure}.png", figure=list(FIGURE_INPUTS)),
