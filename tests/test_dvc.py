"""dvc.yaml: the stage parses, its outputs are persistent and none of them is tracked by git."""

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO

DVC = [str(Path(sys.executable).parent / "dvc")]


def test_dvc_stage_parses():
    proc = subprocess.run([*DVC, "stage", "list"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "reproduce_default" in proc.stdout


def test_outputs_persist_and_are_not_in_git():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["reproduce_default"]
    outs = {name: opts for out in stage["outs"] for name, opts in out.items()}
    assert ".snakemake/metadata" in outs and all(o.get("persist") for o in outs.values())
    tracked = subprocess.run(["git", "ls-files", *outs], cwd=REPO, capture_output=True, text=True).stdout
    assert tracked == "", f"git tracks DVC outputs: {tracked}"
