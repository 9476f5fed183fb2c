"""The Snakemake DAG: lint, dry runs of all three scales, config validation, and rerun scope."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PROFILE = ["--workflow-profile", "workflow/profiles/default"]
# Rules run `python -m snnrobust`: put this interpreter's bin first on PATH, as the Makefile does.
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(*args, cwd=REPO, check=True):
    proc = subprocess.run([*SNAKEMAKE, *PROFILE, *args], cwd=cwd, capture_output=True, text=True,
                          env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    counts = {}
    m = re.search(r"Job stats:\n(.*?)\n\n", output, re.S)
    if not m:
        return counts
    for line in m.group(1).splitlines()[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def copy_workflow(dest: Path) -> Path:
    for item in ("Snakefile", "workflow", "config", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    return dest


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for rule" not in proc.stdout + proc.stderr, proc.stdout


@pytest.mark.parametrize("scale", ["default", "cpu", "paper"])
def test_dry_run_resolves_without_data(scale, tmp_path):
    wf = copy_workflow(tmp_path)
    proc = snakemake("-n", "--configfile", f"config/{scale}.yaml", cwd=wf)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("train", 0) >= 3 and counts.get("attack", 0) >= 4 and counts.get("prepare_data", 0) >= 2, counts
    assert counts.get("transfer", 0) >= 2 and counts.get("analyze", 0) >= 2, counts
    assert counts.get("figure", 0) >= 4 and counts.get("table", 0) >= 3 and counts.get("page") == 3, counts


def _write_config(wf: Path, mutate, name="test.yaml") -> Path:
    cfg = yaml.safe_load((wf / "config/default.yaml").read_text())
    mutate(cfg)
    path = wf / "config" / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line_error(proc, needle, wf):
    assert proc.returncode != 0
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("snnrobust: error:")]
    assert len(lines) == 1 and needle in lines[0], proc.stdout + proc.stderr
    assert not (wf / "data").exists() and not (wf / "results").exists()


def _transfer(c):
    return next(s for s in c["studies"]["sr"]["sweeps"] if s.get("threat") == "black-box")


BAD_CONFIGS = [
    (lambda c: c.update(epochz=3), "Additional properties are not allowed ('epochz' was unexpected)"),
    (lambda c: c["studies"]["sr"]["sweeps"][0].update(eps_255=["8/255"]), "'8/255' is not of type 'number'"),
    (lambda c: c["models"]["snn_vgg_tiny"].update(arch="vgg99"), "unknown arch 'vgg99'"),
    (lambda c: c["attacks"]["pgd10"]["options"].update(stepz=3), "config attacks.pgd10.options"),
    (lambda c: c["studies"]["spiking_pgd"]["sweeps"][0].update(grid={"rho": [0.5]}),
     "config attack variant pgd10-rho0.5.options"),
    (lambda c: _transfer(c)["source"].update(model=["ann_vgg_tiny"], seed=[5]), "is not trained by any study"),
    (lambda c: c["studies"]["sr"]["report"]["slots"].update(sr_table42="attacks"), "sr_table42"),
    (lambda c: c["studies"]["sr"]["report"].update(claims=[{
        "id": "x", "text": "t", "left": {"method": "SR*", "attack": "CW", "metric": "accuracy"}, "op": ">",
        "right": {"method": "AT", "attack": "PGD", "metric": "accuracy"}}]), "'CW'"),
]


@pytest.mark.parametrize("mutate,needle", BAD_CONFIGS)
def test_bad_config_fails_in_one_line_before_any_job(tmp_path, mutate, needle):
    wf = copy_workflow(tmp_path)
    _write_config(wf, mutate)
    _one_line_error(snakemake("--configfile", "config/test.yaml", cwd=wf, check=False), needle, wf)


@pytest.mark.parametrize("text,needle", [
    ("{}\n", "is an empty mapping"),
    ("scale: default\nscale: cpu\n", "duplicate key 'scale'"),
])
def test_empty_or_duplicate_key_config_file_is_an_error(tmp_path, text, needle):
    wf = copy_workflow(tmp_path)
    (wf / "config/test.yaml").write_text(text)
    _one_line_error(snakemake("--configfile", "config/test.yaml", cwd=wf, check=False), needle, wf)


def _tiny(cfg):
    """The default config cut down to one SNN, one PGD attack at one ε and its analysis (about a minute)."""
    cfg["training"]["defaults"].update(epochs=1, train_limit=128, eval_limit=64)
    cfg["evaluation"].update(n_eval=32)
    sr = cfg["studies"]["sr"]
    sr["train"] = [{"dataset": ["digits"], "model": ["snn_vgg_tiny"], "method": ["vanilla"], "seed": [0]}]
    sr["sweeps"] = [{"dataset": ["digits"], "model": ["snn_vgg_tiny"], "method": ["vanilla"], "seed": [0],
                     "attack": ["fgsm", "pgd10"], "eps_255": [8]}]
    sr["analyses"] = [{**sr["analyses"][0], "model": ["snn_vgg_tiny"]}]
    sr["report"]["slots"] = {"sr_table1": "transfer", "sr_table3": "attacks"}
    cfg["studies"] = {"sr": sr}


@pytest.mark.slow
def test_changing_an_attack_parameter_reruns_only_its_downstream_jobs(tmp_path):
    wf = copy_workflow(tmp_path)
    _write_config(wf, _tiny)
    snakemake("--configfile", "config/test.yaml", cwd=wf)
    assert (wf / "results/figures/sr/eps_sweep.png").stat().st_size > 0
    again = snakemake("-n", "--configfile", "config/test.yaml", cwd=wf)
    assert "Nothing to be done" in again.stdout + again.stderr

    _write_config(wf, lambda c: (_tiny(c), c["attacks"]["pgd10"]["options"].update(steps=3)))
    proc = snakemake("-n", "--configfile", "config/test.yaml", cwd=wf)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("attack") == 1, counts  # only the PGD job at the one ε
    assert "train" not in counts and "prepare_data" not in counts and "analyze" not in counts, counts
    assert counts.get("table") == 1  # the attacks table, not grad_norms/training
    assert set(counts) <= {"attack", "table", "figure", "page", "overview", "about", "study_overview", "study_about",
                           "all"}, counts  # about: provenance


@pytest.mark.parametrize("content", [None, ""])
def test_make_reproduce_with_a_missing_or_empty_config_is_one_line(tmp_path, content):
    wf = copy_workflow(tmp_path)
    shutil.copy(REPO / "Makefile", wf / "Makefile")
    if content is not None:
        (wf / "config/blank.yaml").write_text(content)
    proc = subprocess.run(["make", "-s", "reproduce", "SCALE=blank", "-o", ".venv/.installed"], cwd=wf,
                          capture_output=True, text=True, env=ENV)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("make")]
    assert proc.returncode != 0 and errors == ["snnrobust: error: config/blank.yaml is missing or empty"], proc.stderr
    assert not (wf / "results").exists() and not (wf / ".snakemake").exists()
