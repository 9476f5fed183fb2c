"""dvc.yaml: generated from the Snakemake DAG and kept in sync with it, one stage per set of studies (no two
stages share an output, each study selects exactly its files), every output persistent and none tracked by
git; temporary files are DVC-ignored; `make remote` validates the URL and leaves the config as it was on a
bad one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO
from snnrobust.errors import SnnRobustError
from snnrobust.sharing import stages as stages_mod
from snnrobust.sharing.dag import ALL, REPORT, Product, assign_studies

BIN = Path(sys.executable).parent
DVC = [str(BIN / "dvc")]


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _copy(dest: Path, *items: str) -> Path:
    """The named files and folders of the repository (no caches, no local DVC state) under ``dest``."""
    for item in items:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "cache", "tmp", "config.local"))
        elif src.exists():
            shutil.copy2(src, dest / item)
    return dest


def _sharing(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnrobust.sharing", *args], cwd=cwd, capture_output=True, text=True)


def test_dvc_yaml_is_in_sync_with_the_snakemake_dag(tmp_path):
    wf = _copy(tmp_path, "Snakefile", "workflow", "config", "envs", "dvc.yaml")
    proc = _sharing(wf, "stages", "--scale", "default", "--check")
    assert proc.returncode == 0, proc.stderr
    (wf / "dvc.yaml").write_text((wf / "dvc.yaml").read_text().replace("persist: true", "persist: false", 1))
    proc = _sharing(wf, "stages", "--scale", "default", "--check")
    assert proc.returncode == 2 and proc.stderr.startswith("snnrobust: error: dvc.yaml is out of date"), proc.stderr


def test_dvc_parses_the_stages_and_no_output_is_shared():
    proc = subprocess.run([*DVC, "stage", "list"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # DVC itself rejects overlapping or duplicate outputs
    stages = _stages()
    assert {line.split()[0] for line in proc.stdout.splitlines() if line.strip()} == set(stages)
    outs = [next(iter(o)) for s in stages.values() for o in s["outs"]]
    assert len(outs) == len(set(outs))
    assert all(next(iter(o.values()))["persist"] for s in stages.values() for o in s["outs"])
    tracked = subprocess.run(["git", "ls-files", *outs], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked == "", f"git tracks DVC outputs: {tracked}"


def test_stages_cover_every_kind_of_product_of_each_study():
    stages = _stages()
    config = yaml.safe_load((REPO / "config/default.yaml").read_text())
    for study in config["studies"]:
        outs = [next(iter(o)) for s in stages.values() if study in s["meta"]["studies"] for o in s["outs"]]
        for prefix in ("data/prepared/", "results/models/", "results/checkpoints/", "results/benchmarks/",
                       ".snakemake/metadata/", f"results/pages/{study}.html", f"results/pages/{study}/overview.html",
                       f"results/pages/{study}/about.html", ".dvc-mtimes/"):
            assert any(o.startswith(prefix) for o in outs), (study, prefix)
    # the summaries of all studies (report, overview and about pages) are pulled with STUDY=all only
    cross = [next(iter(o)) for s in stages.values() if s["meta"]["studies"] == [ALL] for o in s["outs"]]
    assert {REPORT, "results/pages/overview.html", "results/pages/about.html"} <= set(cross)
    assert not [o for o in cross if o.startswith(("results/attacks/", "results/models/", "data/"))]


@pytest.fixture(scope="module")
def default_workflow(tmp_path_factory):
    """One copy for the module's dry runs (the parse-time library check is cached after the first)."""
    from test_workflow import copy_workflow

    return copy_workflow(tmp_path_factory.mktemp("wf"))


@pytest.mark.parametrize("study", sorted(yaml.safe_load((REPO / "config/default.yaml").read_text())["studies"]))
def test_a_pull_of_one_study_brings_every_file_its_target_needs(default_workflow, study):
    """`make pull STUDY=<study>` fetches the stages whose set holds the study: every output of every job that
    `snakemake -n <study>` plans from nothing must be among their files, so after the pull it plans none."""
    from test_studies import planned_outputs
    from test_workflow import snakemake

    pulled = {f for stage in stages_mod.select(stages_mod.load(REPO), "default", study) for f in stage.files}
    proc = snakemake(study, "-n", "--configfile", "config/default.yaml", cwd=default_workflow)
    planned = {path for outputs in planned_outputs(proc.stdout + proc.stderr).values() for path in outputs}
    assert planned, proc.stdout[-2000:]
    assert planned <= pulled, sorted(planned - pulled)


class _Job:
    """A stand-in for a Snakemake job: rule name, input and output files, hashed by identity."""

    def __init__(self, rule: str, inputs=(), outputs=()):
        self.rule, self.input, self.output = SimpleNamespace(name=rule), list(inputs), list(outputs)


def test_jobs_belong_to_the_studies_that_reach_them_and_summaries_to_all():
    """A fake DAG: two studies share a model; the overview (in both studies' targets) and a job only it
    needs are cross-study; every other job belongs to the studies whose targets reach it."""
    model, res_a, res_b, extra = _Job("train"), _Job("attack"), _Job("attack"), _Job("x")
    page_a, page_b, overview = _Job("page", outputs=["pa"]), _Job("page", outputs=["pb"]), _Job("overview", outputs=["ov"])
    t_a, t_b = _Job("A", inputs=["pa", "ov"]), _Job("B", inputs=["pb", "ov"])
    deps = {t_a: {page_a: {"pa"}, overview: {"ov"}}, t_b: {page_b: {"pb"}, overview: {"ov"}},
            page_a: {res_a: set()}, page_b: {res_b: set()}, res_a: {model: set()}, res_b: {model: set()},
            overview: {page_a: set(), page_b: set(), extra: set()}, model: {}, extra: {}}
    owners, summaries = assign_studies(SimpleNamespace(jobs=list(deps), dependencies=deps), ["A", "B"])
    assert summaries == {overview}
    assert owners[model] == {"A", "B"} and owners[res_a] == owners[page_a] == {"A"} and owners[page_b] == {"B"}
    assert extra not in owners and overview not in owners


def test_grouping_gives_each_study_exactly_the_files_it_needs():
    products = [Product("a", frozenset({"sr", "st"})), Product("b", frozenset({"sr"})),
                Product("c", frozenset({"st", "sp"})), Product("d", frozenset({"sr", "st", "sp"})),
                Product("e", frozenset({ALL})), Product("f", frozenset({"sr"}))]
    stages = stages_mod.build("default", ["sr", "st", "sp"], products)
    assert [s.name for s in stages][-1] == "default-all"
    for study in ("sr", "st", "sp"):
        chosen = stages_mod.select(stages, "default", study)
        assert {f for s in chosen for f in s.files} == {p.path for p in products if study in p.studies}
    assert {f for s in stages_mod.select(stages, "default", "all") for f in s.files} == set("abcdef")
    with pytest.raises(SnnRobustError, match="unknown study 'nope'"):
        stages_mod.select(stages, "default", "nope")
    with pytest.raises(SnnRobustError, match="tracks scale default, not 'cpu'"):
        stages_mod.select(stages, "cpu", "all")
    with pytest.raises(SnnRobustError, match="cannot name a DVC stage"):
        stages_mod.build("default", ["a.b"], products)
    # one study: its summaries are its own files (no `-all` stage), so STUDY=<it> brings the report
    single = stages_mod.build("default", ["sr"], [Product("b", frozenset({"sr"})), Product("e", frozenset({ALL}))])
    assert [s.name for s in single] == ["default-sr"] and single[0].files == ["b", "e"]


@pytest.mark.parametrize("scale", ["paper"])
def test_another_scale_generates_stages_dvc_accepts(scale, tmp_path):
    wf = _copy(tmp_path, "Snakefile", "workflow", "config", "envs", "src", "pyproject.toml", ".dvc", ".dvcignore")
    subprocess.run(["git", "init", "-q"], cwd=wf, check=True)
    proc = _sharing(wf, "stages", "--scale", scale)
    assert proc.returncode == 0, proc.stderr
    listed = subprocess.run([*DVC, "stage", "list"], cwd=wf, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert f"{scale}-all" in names and all(n.startswith(f"{scale}-") for n in names)


def test_temporary_files_are_dvc_ignored():
    temps = ["results/models/digits/m/vanilla/s0/.model.pt.host-123.abc.tmp", "src/snnrobust/__pycache__/cli.cpython-311.pyc",
             "results/.x.dvc-ssh-partial.tmp"]
    real = "results/models/digits/m/vanilla/s0/model.pt"
    proc = subprocess.run([*DVC, "check-ignore", *temps, real], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.split() == temps


def test_bad_remote_url_is_one_line_and_keeps_the_config(tmp_path):
    wf = _copy(tmp_path, ".dvc")
    subprocess.run(["git", "init", "-q"], cwd=wf, check=True)
    before = (wf / ".dvc/config").read_bytes()
    proc = _sharing(wf, "remote", "--url", "ftp://host/store")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Unsupported URL type ftp://" in proc.stderr
    assert (wf / ".dvc/config").read_bytes() == before and not (wf / ".dvc/config.local").exists()
    proc = _sharing(wf, "remote", "--url", "../store", "--keyfile", "/k")  # a key only fits an SSH URL
    assert proc.returncode == 2 and "keyfile" in proc.stderr and (wf / ".dvc/config").read_bytes() == before
    assert _sharing(wf, "remote", "--url", "ssh://u@host:2222/srv/store", "--keyfile", "/k").returncode == 0
    assert "ssh://u@host:2222/srv/store" in (wf / ".dvc/config").read_text()
    assert "/k" in (wf / ".dvc/config.local").read_text() and "/k" not in (wf / ".dvc/config").read_text()
