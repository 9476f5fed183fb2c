"""One study's own summaries: its overview and about (provenance) pages under results/pages/<study>/.

The all-studies summaries (results/pages/overview.html, about.html; report.smk) belong to `all` alone. Each
study's target has summaries of its own instead, built from that study's files only, so a one-study run
(`make reproduce STUDY=sr`) never rewrites the all-studies pages, and a pull of one study's files
(`make pull STUDY=sr`, which brings these pages with them) leaves `snakemake -n sr` nothing to do.
The rules are report.smk's `overview` and `about` with one study's inputs and paths (helpers: common.smk).
"""


use rule overview as study_overview with:
    input:
        coverage="results/pages/{study}_coverage.csv",
        claims="results/pages/{study}_claims.csv",
    output:
        html=report(
            "results/pages/{study}/overview.html",
            caption="../report/overview.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="Overview",
            labels={"page": "overview"},
        ),
        csv="results/pages/{study}/overview_claims.csv",
    log:
        "logs/page/{study}/overview.log",
    benchmark:
        "results/benchmarks/page/{study}/overview.tsv"


use rule about as study_about with:
    input:
        results=lambda wc: study_results(wc.study),
        targets=lambda wc: study_about_targets(wc.study),
    output:
        html=report(
            "results/pages/{study}/about.html",
            caption="../report/about.rst",
            category=lambda wc: study_title(wc.study),
            subcategory="About this run",
            labels={"page": "provenance"},
        ),
        csv="results/pages/{study}/about_provenance.csv",
        timing=multiext(
            "results/pages/{study}/about_timing_", "jobs.csv", "rules.csv", "studies.csv", "critical_path.csv"
        ),
    params:
        timing=lambda wc: study_timing_spec(wc.study),
    log:
        "logs/page/{study}/about.log",
    benchmark:
        "results/benchmarks/page/{study}/about.tsv"
