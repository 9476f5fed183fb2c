"""One study per paper: `snakemake -n <study>` plans exactly that study's jobs at every scale, without data."""

import re

import pytest

from conftest import REPO
from snnrobust.config import load_yaml, validate_config
from test_workflow import copy_workflow, job_counts, snakemake

STUDIES = ("sr", "sparsity_trail", "spiking_pgd")
#: Rule → the kind of study result file its outputs are (see Plan.study_files).
RESULT_RULES = {"train": "training", "attack": "attacks", "transfer": "transfer", "analyze": "analyses"}


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    """One copy for the module, so the parse-time library check is cached after the first dry run."""
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def planned_outputs(output: str) -> dict[str, set[str]]:
    """{rule: output files} of every job a dry run lists."""
    jobs: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        out = re.search(r"^    output: (.*)$", block, re.M)
        if head and out:
            # outputs flagged update() (kept through a failed rerun) print as "path (update)"
            jobs.setdefault(head.group(1), set()).update(p.removesuffix(" (update)") for p in out.group(1).split(", "))
    return jobs


def expected(plan, study: str) -> dict[str, set[str]]:
    """The result files a study's target plans: its own, plus the training of any run its sweeps attack that another
    study trains (the trail paper's Fig. 2 attacks the SR study's RAT model; Spiking-PGD's redundancy analyses the
    SR study's ANN)."""
    files = plan.study_files(study)
    want = {rule: set(files[kind]) for rule, kind in RESULT_RULES.items() if files[kind]}
    attacked = {"/".join(f.split("/")[2:6]) for kind in ("attacks", "transfer", "analyses")
                for f in files.get(kind, ())}
    borrowed = {f"results/models/{run}/metrics.csv" for run in attacked}
    if borrowed - want.get("train", set()):
        want["train"] = want.get("train", set()) | borrowed
    return want


@pytest.mark.parametrize("scale", ["default", "cpu", "paper"])
def test_each_study_plans_only_its_own_jobs(workflow_copy, scale):
    plan = validate_config(load_yaml(REPO / f"config/{scale}.yaml"), REPO / "workflow/schemas/config.schema.yaml")
    per_study_train = 0
    for study in STUDIES:
        proc = snakemake(study, "-n", "--configfile", f"config/{scale}.yaml", cwd=workflow_copy)
        jobs = planned_outputs(proc.stdout + proc.stderr)
        want = expected(plan, study)
        # train jobs list model.pt first; compare through metrics.csv, which Plan names
        jobs["train"] = {p.replace("/model.pt", "/metrics.csv") for p in jobs.get("train", ()) if p.endswith("model.pt")}
        for rule, files in want.items():
            assert jobs.get(rule, set()) >= files, (study, rule, files - jobs.get(rule, set()))
            assert {f for f in jobs.get(rule, set()) if f.endswith((".json", ".csv"))} == files, (study, rule)
        for rule in set(RESULT_RULES) - set(want):
            assert rule not in jobs or rule == "train", (study, rule)
        others = [s for s in STUDIES if s != study]
        for rule in ("table", "figure", "page"):
            for path in jobs.get(rule, ()):
                assert not any(f"/{o}/" in path or f"/{o}." in path or f"/{o}_" in path for o in others), path
        assert jobs["page"] == {f"results/pages/{study}.html", f"results/pages/{study}_claims.csv",
                                f"results/pages/{study}_coverage.csv"}
        # the study's own summaries, not the all-studies ones (a pull of this study's files completes its target)
        assert jobs["study_overview"] == {f"results/pages/{study}/overview.html",
                                          f"results/pages/{study}/overview_claims.csv"}
        assert f"results/pages/{study}/about.html" in jobs["study_about"]
        assert "overview" not in jobs and "about" not in jobs
        per_study_train += len(jobs["train"])
    everything = job_counts(snakemake("-n", "--configfile", f"config/{scale}.yaml", cwd=workflow_copy).stdout)
    assert everything["train"] == len(plan.runs) <= per_study_train
    assert everything["page"] == len(STUDIES)


def test_a_model_two_studies_need_is_trained_once(workflow_copy):
    proc = snakemake("-n", "sr", "spiking_pgd", cwd=workflow_copy)
    models = {p for p in planned_outputs(proc.stdout)["train"] if p.endswith("model.pt")}
    assert "results/models/digits/snn_vgg_tiny/vanilla/s0/model.pt" in models
    # sr trains 14 models (digits: snn vanilla s0 (shared with spiking_pgd), s1, ann, at, rat, sr, sr_star, two
    # lambda-sweep SRs; the CIFAR10-DVS stand-in: vanilla s0/s1, at_fgsm, sr, sr_star); spiking_pgd adds its GCN and
    # its main model (the eighth-width ResNet-18) and its three adversarially trained ANNs (PGD-AT, Spiking-PGD-AT
    # constant and exponential rho), and AT and SR* with PGD or Spiking-PGD inside (a short recipe, their own model id)
    sr_only = {p for p in planned_outputs(snakemake("-n", "sr", cwd=workflow_copy).stdout)["train"] if p.endswith("model.pt")}
    spgd_own = {"results/models/karate/gcn/vanilla/s0/model.pt", "results/models/digits/resnet18_tiny/vanilla/s0/model.pt",
                *(f"results/models/digits/ann_vgg_tiny/{m}/s0/model.pt" for m in ("pgd_at", "spgd_at_rho0.02", "spgd_at_exp2")),
                *(f"results/models/digits/snn_vgg_inner/{m}/s0/model.pt" for m in ("at", "at_spgd", "sr_star", "sr_star_spgd"))}
    assert len(sr_only) == 14 and models - sr_only == spgd_own
    assert job_counts(proc.stdout)["train"] == len(models) == 23


def test_unknown_study_is_a_one_line_error(workflow_copy):
    proc = snakemake("-n", "nonesuch", cwd=workflow_copy, check=False)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("snnrobust: error:")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stdout + proc.stderr
    assert "unknown study 'nonesuch'" in lines[0] and "sparsity_trail" in lines[0]
    assert not (workflow_copy / "results").exists() and not (workflow_copy / "data").exists()
