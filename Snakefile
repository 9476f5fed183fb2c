"""snnrobust pipeline: data → train → attacks / transfers / analyses → per-study tables, figures, pages → report.

Run through the Makefile (`make reproduce`, `make reproduce STUDY=sr`) or directly:
    snakemake [sr|sparsity_trail|spiking_pgd] --workflow-profile workflow/profiles/default --configfile config/cpu.yaml
Without --configfile the default (laptop, offline) scale is used. Each study of the config is a target;
`all` (the default) builds every study, and a job two studies need is planned once.
"""

from snakemake.utils import min_version

from snnrobust.quiet import silence_library_warnings

silence_library_warnings()  # library deprecation notices stay off the user's screen (our own warnings show)

min_version("8.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/summaries.smk"


rule all:
    default_target: True
    input:
        all_targets(),


for _study in STUDIES:

    rule:
        name:
            _study
        input:
            study_targets(_study),


check_targets({r.name for r in workflow.rules})


# A failed job's outputs are `update()`d: Snakemake backs them up and puts them back, so a finished
# result survives a failed rerun. Mark the failed jobs incomplete so the next run plans them again
# (profile: rerun-incomplete) instead of serving the restored old file as if the rerun had succeeded.
onerror:
    for _job in workflow.dag.needrun_jobs():
        workflow.persistence.started(_job)
