"""The Slurm profile: it parses, its jobs take their resources from the config recipes, a partition that
does not exist stops `make reproduce PROFILE=...` in one line before anything is touched, and (only with
Slurm installed, root and SNNROBUST_SLURM=1) `make slurm-test`'s run: every job through sbatch, a scancel-ed
training job retried and resumed from its checkpoint."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

PROFILE = REPO / "workflow" / "profiles" / "slurm"
SCRIPTS = REPO / "workflow" / "scripts" / "slurm"
VENV = Path(sys.executable).parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "config", "envs", "Makefile"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    return dest


def fake_sinfo(tmp_path: Path, partitions=("debug",)) -> dict:
    """An environment whose `sinfo -h -o %R` lists ``partitions`` (no Slurm needed)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "sinfo"
    script.write_text("#!/bin/sh\n" + "".join(f"echo {p}\n" for p in partitions))
    script.chmod(0o755)
    return {**ENV, "PATH": f"{bin_dir}{os.pathsep}{ENV['PATH']}"}


def test_profile_parses_as_snakemake_reads_it():
    from snakemake.profiles import ProfileConfigFileParser

    with open(PROFILE / "config.yaml") as stream:
        args = ProfileConfigFileParser().parse(stream)
    assert args["executor"] == "slurm"
    assert int(args["retries"]) >= 1                       # a cancelled job is submitted again
    assert args["slurm-status-command"] == "squeue"        # works without slurmdbd accounting
    assert Path(args["slurm-partition-config"]) == PROFILE / "partitions.yaml"  # resolved beside the profile
    partitions = yaml.safe_load((PROFILE / "partitions.yaml").read_text())["partitions"]
    assert "debug" in partitions
    # The plugin accepts the partition file (its own reader, its own limit names).
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    assert [p.name for p in read_partition_file(PROFILE / "partitions.yaml")] == list(partitions)


def _dry_run_resources(wf: Path, scale: str) -> dict[str, list[dict]]:
    """rule → the resources of each of its jobs, from a dry run through the slurm profile."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
                           "--configfile", f"config/{scale}.yaml", "-n"], cwd=wf, capture_output=True, text=True,
                          env=ENV)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        head = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if head and res:
            pairs = dict(item.split("=", 1) for item in res.group(1).split(", "))
            out.setdefault(head.group(1), []).append(pairs)
    return out


@pytest.mark.parametrize("scale", ["default", "paper"])
def test_jobs_take_their_resources_from_the_config_recipes(tmp_path, scale):
    wf = copy_workflow(tmp_path)
    cfg = yaml.safe_load((REPO / "config" / f"{scale}.yaml").read_text())
    defaults = cfg["training"]["defaults"].get("resources", {})
    jobs = _dry_run_resources(wf, scale)
    assert jobs["train"], jobs.keys()
    recipes = {k: v.get("resources", {}) for k, v in cfg["training"].get("recipes", {}).items()}
    allowed = [{**defaults, **r} for r in [{}, *recipes.values()]]
    for job in jobs["train"]:
        got = {k: int(job[k]) for k in ("mem_mb", "runtime") if k in job}
        got["gpu"] = int(job.get("gpu", 0))
        assert any(all(got[k] == int(want.get(k, got[k])) for k in got) for want in allowed), (job, allowed)
    gpu = 1 if scale == "paper" else 0
    for rule in ("attack", "transfer", "analyze"):
        assert {int(j["gpu"]) for j in jobs[rule]} == {gpu}, rule
    if scale == "paper":   # the papers' GPU training recipes ask for one GPU each
        assert any(int(j["gpu"]) == 1 for j in jobs["train"])


def test_profile_check_passes_when_the_partitions_exist(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check_profile.py"), str(PROFILE)], capture_output=True,
                          text=True, env=fake_sinfo(tmp_path, ["debug", "gpu"]))
    assert proc.returncode == 0 and "partitions debug exist" in proc.stdout, proc.stderr


@pytest.mark.parametrize("where", ["default-resources", "set-resources", "partition-file"])
def test_a_missing_partition_is_one_line(tmp_path, where):
    profile = tmp_path / "bad"
    shutil.copytree(PROFILE, profile)
    config = yaml.safe_load((profile / "config.yaml").read_text())
    if where == "default-resources":
        config["default-resources"]["slurm_partition"] = "nosuch"
    elif where == "set-resources":
        config["set-resources"] = {"train": {"slurm_partition": "'nosuch'"}}
    else:
        (profile / "partitions.yaml").write_text("partitions:\n  debug: {}\n  nosuch: {max_gpu: 1}\n")
    (profile / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check_profile.py"), str(profile)], capture_output=True,
                          text=True, env=fake_sinfo(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("snnrobust: error: partition 'nosuch'")
    assert "sinfo lists: debug" in proc.stderr


def test_no_sinfo_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, str(SCRIPTS / "check_profile.py"), str(PROFILE)], capture_output=True,
                          text=True, env={**ENV, "PATH": str(empty)})
    assert proc.returncode == 2 and proc.stderr == (
        "snnrobust: error: sinfo not found: a Slurm profile needs Slurm's client commands on this host\n")


def test_make_reproduce_with_a_bad_partition_touches_nothing(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    bad = wf / "workflow" / "profiles" / "badpart"
    shutil.copytree(PROFILE, bad)
    config = yaml.safe_load((bad / "config.yaml").read_text())
    config["default-resources"]["slurm_partition"] = "nosuch"
    (bad / "config.yaml").write_text(yaml.safe_dump(config))
    result = wf / "results" / "attacks" / "r.json"
    result.parent.mkdir(parents=True)
    result.write_text('{"rows": []}')
    before = result.stat().st_mtime_ns
    proc = subprocess.run(["make", "-s", "reproduce", "PROFILE=badpart", f"VENV={VENV}", "-o", f"{VENV}/.installed"],
                          cwd=wf, capture_output=True, text=True, env=fake_sinfo(tmp_path))
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("make")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("snnrobust: error: partition 'nosuch' (named in workflow/profiles/badpart/config.yaml")
    assert result.read_text() == '{"rows": []}' and result.stat().st_mtime_ns == before
    assert sorted(p.name for p in (wf / "results").rglob("*")) == ["attacks", "r.json"]
    assert not (wf / ".snakemake").exists() and not (wf / "logs").exists()


def _fake_log(jobs: dict[str, list[str]], total: int) -> str:
    lines = [f"Job {j} has been submitted with SLURM jobid {s} (log: x)." for j, ids in jobs.items() for s in ids]
    return "\n".join(["Job stats:", "job count", "------- -----", f"total {total}", *lines,
                      f"{total} of {total} steps (100%) done"])


def test_the_drivers_checks_see_a_missing_retry_and_a_fresh_start(tmp_path):
    """The scancel driver's verdict, on made-up logs and results (no Slurm needed)."""
    driver = _script("scancel_resume")
    run = "digits/snn/vanilla/s0"
    canceller = driver.Canceller(tmp_path, run, timeout=1)
    canceller.job_id, canceller.epoch = "7", 2
    run_json = tmp_path / "results" / "models" / run / "run.json"
    run_json.parent.mkdir(parents=True)

    def write(resumed, job):
        run_json.write_text(json.dumps({"resumed_from_epoch": resumed, "provenance": {"slurm_job_id": job}}))

    write(2, "9")
    assert driver.verify(_fake_log({"1": ["3"], "2": ["7", "9"]}, 3), tmp_path, run, canceller, 0) == []
    assert any("not submitted again" in f for f in
               driver.verify(_fake_log({"1": ["3"], "2": ["7"]}, 3), tmp_path, run, canceller, 0))
    write(0, "9")
    assert any("did not resume" in f for f in
               driver.verify(_fake_log({"1": ["3"], "2": ["7", "9"]}, 3), tmp_path, run, canceller, 0))
    write(2, "9")
    assert any("expected 3 - 1" in f for f in
               driver.verify(_fake_log({"2": ["7", "9"]}, 3), tmp_path, run, canceller, 0))
    assert canceller.comment == "rule_train_wildcards_digits_snn_vanilla_0"


@pytest.mark.skipif(not (shutil.which("sbatch") and os.environ.get("SNNROBUST_SLURM") == "1" and os.geteuid() == 0),
                    reason="needs Slurm (apt slurm-wlm munge), root and SNNROBUST_SLURM=1: starts real daemons")
def test_slurm_test_runs_the_default_dag_and_resumes_a_cancelled_job():
    proc = subprocess.run(["bash", str(SCRIPTS / "slurm_test.sh")], cwd=REPO, capture_output=True, text=True,
                          env=ENV, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "slurm-test: ok" in proc.stdout
    assert re.search(r"\[driver\] scancel \d+ \(rule_train_wildcards_", proc.stdout)
    assert re.search(r"resumed from epoch [1-9]", proc.stdout)
    assert "slurm-stop: stopped slurmctld" in proc.stdout
