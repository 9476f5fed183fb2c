"""Interruption and reruns never cost a result: byte-identical model files, a bad config after a finished
run touches nothing, a failed job gives the previous output back, and ``make reproduce`` recovers from
kill -9 by itself while refusing a second concurrent run in one line.

The pipeline tests run a tiny config (one SNN, three short epochs, one attack) in temporary copies of
the workflow; the clean run is shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SMALL_SNN_SPEC, run_cli

PY_BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PATH": f"{PY_BIN}{os.pathsep}{os.environ['PATH']}"}
STUDY = "sparsity_trail"


# ---------------------------------------------------------------- byte-reproducible model files

def _train(spec: dict, out: Path) -> bytes:
    run_cli("train", "--data", str(out.parent / "data.npz"), "--spec", json.dumps(spec),
            "--out-model", str(out / "model.pt"), "--out-metrics", str(out / "metrics.csv"),
            "--out-run", str(out / "run.json"), "--checkpoint", str(out / "ckpt" / "last.pt"), "--no-progress")
    return (out / "model.pt").read_bytes()


def test_same_spec_trained_twice_gives_identical_model_bytes(tmp_path, digits_npz):
    shutil.copy(digits_npz, tmp_path / "data.npz")
    spec = {**SMALL_SNN_SPEC, "train": {**SMALL_SNN_SPEC["train"], "epochs": 1, "train_limit": 128,
                                        "eval_limit": 64}}
    first, second = _train(spec, tmp_path / "a"), _train(spec, tmp_path / "b")
    assert first == second and len(first) > 1000


# ---------------------------------------------------------------- the pipeline in a temporary copy

def _tiny(cfg: dict) -> dict:
    """One study, one tiny SNN (3 epochs on 128 images, checkpointed per epoch), one FGSM sweep."""
    cfg["training"]["defaults"].update(epochs=3, train_limit=128, eval_limit=64)
    cfg["evaluation"].update(n_eval=32)
    study = cfg["studies"][STUDY]
    study["train"] = [{"dataset": ["digits"], "model": ["snn_vgg_tiny"], "method": ["vanilla"], "seed": [0]}]
    study["sweeps"] = [{"dataset": ["digits"], "model": ["snn_vgg_tiny"], "method": ["vanilla"], "seed": [0],
                        "attack": ["fgsm"], "eps_255": [8]}]
    study["analyses"] = []
    study.pop("recipe", None)  # the defaults above, not the study's own recipe
    cfg["studies"] = {STUDY: study}
    return cfg


def _copy_workflow(dest: Path, mutate=None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "config", "envs", "Makefile", "pyproject.toml"):
        src = REPO / item
        if src.exists():
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / item)
    (dest / ".venv").symlink_to(PY_BIN.parent)  # the Makefile's venv, already installed
    cfg = _tiny(yaml.safe_load((REPO / "config/default.yaml").read_text()))
    if mutate:
        mutate(cfg)
    (dest / "config/test.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def _make(wf: Path, **kw) -> subprocess.Popen:
    """``make reproduce`` at the test scale; the venv counts as installed (-o)."""
    return subprocess.Popen(["make", "-s", "reproduce", "SCALE=test", "CORES=2", "-o", ".venv/.installed"],
                            cwd=wf, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _snakemake(wf: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PY_BIN / "snakemake"), "--workflow-profile", "workflow/profiles/default",
                           "--configfile", "config/test.yaml", "--cores", "2", *args],
                          cwd=wf, env=ENV, capture_output=True, text=True)


def _state(wf: Path) -> dict[str, tuple[str, int]]:
    """Every finished file under results/ and data/: (sha256, mtime_ns)."""
    return {str(p.relative_to(wf)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for top in ("results", "data") for p in sorted((wf / top).rglob("*")) if p.is_file()}


def _model(wf: Path) -> Path:
    return next((wf / "results/models").rglob("model.pt"))


def _attack_rows(wf: Path) -> list[dict]:
    """Attack result rows without the fields that measure time."""
    rows = []
    for path in sorted((wf / "results/attacks").rglob("*.json")):
        for row in json.loads(path.read_text())["rows"]:
            rows.append({k: v for k, v in row.items() if "wall" not in k and "time" not in k})
    return rows


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    wf = _copy_workflow(tmp_path_factory.mktemp("clean"))
    proc = _make(wf)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return wf


def _one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "error" in line.lower() and not line.startswith("make")]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


@pytest.mark.slow
def test_out_of_range_value_after_a_finished_run_plans_nothing_and_touches_nothing(clean_run):
    before = _state(clean_run)
    bad = yaml.safe_load((clean_run / "config/test.yaml").read_text())
    bad["attacks"]["fgsm"] = {"name": "pgd", "options": {"steps": 0}}
    (clean_run / "config/bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    proc = subprocess.run([str(PY_BIN / "snakemake"), "--workflow-profile", "workflow/profiles/default",
                           "--configfile", "config/bad.yaml", "--cores", "2"],
                          cwd=clean_run, env=ENV, capture_output=True, text=True)
    assert proc.returncode != 0
    line = _one_error_line(proc.stdout + proc.stderr)
    assert line.startswith("snnrobust: error:") and "steps" in line, line
    assert "Job stats" not in proc.stdout + proc.stderr  # nothing planned
    assert _state(clean_run) == before  # no result deleted or touched


@pytest.mark.slow
def test_failed_job_gives_the_previous_output_back_and_is_planned_again(clean_run, tmp_path):
    wf = tmp_path / "wf"
    shutil.copytree(clean_run, wf, symlinks=True)
    before = _state(wf)
    bad = yaml.safe_load((wf / "config/test.yaml").read_text())
    bad["datasets"]["digits"]["options"]["n_train"] = 100000  # valid type, too many: found only in the job
    (wf / "config/test.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    proc = _snakemake(wf)
    assert proc.returncode != 0 and "n_train=100000" in (wf / "logs/prepare_data/digits.log").read_text()
    after = _state(wf)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}  # every byte back
    plan = _snakemake(wf, "-n")
    assert "prepare_data" in plan.stdout + plan.stderr  # the failed job is not mistaken for done


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_kill_9_then_make_reproduce_resumes_to_the_clean_result(clean_run, tmp_path):
    wf = _copy_workflow(tmp_path / "wf")
    first = _make(wf, start_new_session=True)
    checkpoint = lambda: any((wf / "results/checkpoints").rglob("last.pt")) if (wf / "results").exists() else False
    _wait_for(checkpoint, 600, first)  # training is under way: one epoch checkpointed

    second = _make(wf)  # a truly concurrent run is refused in one line
    out, err = second.communicate(timeout=120)
    assert second.returncode != 0
    line = _one_error_line(out + err)
    assert line.startswith("snnrobust: error:") and "another Snakemake run is active" in line, line

    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    assert any((wf / ".snakemake/locks").iterdir())  # the kill left Snakemake's lock behind

    again = _make(wf)
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:] + err[-3000:]
    assert _model(wf).read_bytes() == _model(clean_run).read_bytes()
    assert _attack_rows(wf) == _attack_rows(clean_run)
