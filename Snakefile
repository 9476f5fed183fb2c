"""snnrobust pipeline: data → train → attacks / analyses → tables and figures → report.

Run through the Makefile (`make reproduce`) or directly:
    snakemake --workflow-profile workflow/profiles/default --configfile config/cpu.yaml
Without --configfile the default (laptop, offline) scale is used.
"""

from snakemake.utils import min_version

min_version("8.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report_inputs.input,
