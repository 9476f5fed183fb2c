"""`make gpu-check`: the default DAG on CUDA in a scratch copy, clean accuracies compared with the CPU run.

CPU and GPU kernels differ, so the check is a tolerance (default 2 points of test accuracy per trained
model), not equality. Without a GPU it stops at once with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from snnrobust.errors import SnnRobustError

COPIED = ("Snakefile", "workflow", "config", "envs")


def clean_accuracies(results: Path) -> dict[str, float]:
    """Final test accuracy of every trained model under ``results/models`` (key: its relative folder)."""
    out = {}
    for run in sorted((results / "models").rglob("run.json")):
        final = json.loads(run.read_text())["final"]
        out[str(run.parent.relative_to(results / "models"))] = float(final["test_acc"])
    return out


def compare(cpu: dict[str, float], gpu: dict[str, float], tolerance: float) -> list[str]:
    """Lines of the comparison; raises if a model is missing on either side or differs beyond ``tolerance``."""
    if set(cpu) != set(gpu):
        raise SnnRobustError(f"CPU and GPU runs trained different models: {sorted(set(cpu) ^ set(gpu))}")
    lines, bad = [], []
    for key in sorted(cpu):
        diff = gpu[key] - cpu[key]
        lines.append(f"{key}: cpu {cpu[key]:.2f} %  gpu {gpu[key]:.2f} %  diff {diff:+.2f}")
        if abs(diff) > tolerance:
            bad.append(key)
    if bad:
        raise SnnRobustError(f"GPU clean accuracy differs from CPU by more than {tolerance} points for {', '.join(bad)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snnrobust-gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-results", default="results", help="results/ of a finished CPU default run")
    parser.add_argument("--tolerance", type=float, default=2.0, help="allowed |GPU − CPU| test accuracy (points)")
    parser.add_argument("--cores", default="2")
    args = parser.parse_args(argv)
    try:
        import torch

        if not torch.cuda.is_available():
            raise SnnRobustError("gpu-check needs a CUDA GPU and none is present")
        cpu = clean_accuracies(Path(args.cpu_results))
        if not cpu:
            raise SnnRobustError(f"no CPU run under {args.cpu_results}/models: run `make reproduce` first")
        with tempfile.TemporaryDirectory(prefix="snnrobust-gpu-") as tmp:
            for item in COPIED:
                src = Path(item)
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, Path(tmp) / item)
            cmd = [str(Path(sys.executable).parent / "snakemake"), "--workflow-profile", "workflow/profiles/default",
                   "--configfile", "config/default.yaml", "--cores", args.cores, "--config", "device=cuda"]
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            if subprocess.run(cmd, cwd=tmp, env=env).returncode != 0:
                raise SnnRobustError(f"the default DAG failed on CUDA (logs in {tmp}/logs)")
            print("\n".join(compare(cpu, clean_accuracies(Path(tmp) / "results"), args.tolerance)))
    except SnnRobustError as exc:
        print(f"snnrobust: error: {exc}", file=sys.stderr)
        return 2
    print("gpu-check: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
