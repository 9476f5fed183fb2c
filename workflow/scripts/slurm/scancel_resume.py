"""Run the default DAG through the Slurm executor, `scancel` one training job mid-way, and check the outcome.

    python workflow/scripts/slurm/scancel_resume.py --workdir W [--run digits/snn_vgg_tiny/vanilla/s0] -- SNAKEMAKE ARGS

Started by workflow/scripts/slurm/slurm_test.sh (``make slurm-test``) in a scratch copy W. While Snakemake
runs, a watcher waits for the chosen training job's first checkpoint, finds that job in ``squeue`` (by the
plugin's comment ``rule_train_wildcards_...``) and cancels it. Afterwards it checks, from Snakemake's log and
the results: the run ended with status 0; every job but the local target rule went through sbatch; the
cancelled job was submitted again under a new Slurm job id; that retry resumed from the checkpoint
(run.json ``resumed_from_epoch`` >= 1) and its provenance names the retry's job id. Prints the evidence
lines and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
TOTAL = re.compile(r"^total\s+(\d+)\s*$")
DONE = re.compile(r"(\d+) of (\d+) steps \(100%\) done")
#: Log lines worth echoing live (the rest stays in the log file).
ECHO = re.compile(r"submitted with SLURM jobid|CANCELLED|FAILED|[Rr]estart|Error in rule|steps \(100%\) done|"
                  r"Exiting because|WorkflowError")


def squeue_jobs() -> list[tuple[str, str, str]]:
    """(job id, comment, state) of the jobs Slurm still lists."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%k|%T"], capture_output=True, text=True)
    return [tuple(line.split("|", 2)) for line in out.stdout.splitlines() if line.count("|") == 2]


def checkpoint_epoch(path: Path) -> int | None:
    """Epochs done according to a training checkpoint (None while it cannot be read)."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # written atomically, but a read may still race the rename on some file systems
        return None


class Canceller(threading.Thread):
    """Cancels the training job of ``run`` once its first checkpoint exists; records what it did."""

    def __init__(self, workdir: Path, run: str, timeout: float):
        super().__init__(daemon=True)
        self.checkpoint = workdir / "results" / "checkpoints" / run / "last.pt"
        dataset, model, method, seed = run.split("/")  # the plugin names a job by its wildcards' values
        self.comment = f"rule_train_wildcards_{dataset}_{model}_{method}_{seed.removeprefix('s')}"
        self.timeout, self.stop = timeout, threading.Event()
        self.job_id: str | None = None
        self.epoch: int | None = None
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.time() + self.timeout
        while not self.stop.is_set() and time.time() < deadline:
            if self.checkpoint.exists():
                running = [j for j, c, s in squeue_jobs() if c == self.comment and s == "RUNNING"]
                epoch = checkpoint_epoch(self.checkpoint)
                if running and epoch:
                    self.job_id, self.epoch = running[0], epoch
                    subprocess.run(["scancel", self.job_id], check=True)
                    print(f"[driver] scancel {self.job_id} ({self.comment}) after its checkpoint of epoch {epoch}",
                          flush=True)
                    return
                if not running and any(c == self.comment and s == "COMPLETED" for _, c, s in squeue_jobs()):
                    self.error = "the training job completed before it could be cancelled"
                    return
            time.sleep(0.2)
        self.error = self.error or "no running training job with a checkpoint was seen"


def verify(log: str, workdir: Path, run: str, canceller: Canceller, rc: int) -> list[str]:
    """The failed checks (empty when all pass); prints the evidence lines."""
    failures = []
    if rc != 0:
        failures.append(f"snakemake exited with status {rc}")
    submitted: dict[str, list[str]] = {}
    for job, slurm_id in SUBMITTED.findall(log):
        submitted.setdefault(job, []).append(slurm_id)
    totals = [int(m.group(1)) for line in log.splitlines() if (m := TOTAL.match(line.strip()))]
    done = DONE.findall(log)
    n_jobs = totals[0] if totals else None
    print(f"[driver] {sum(map(len, submitted.values()))} sbatch submissions for {len(submitted)} jobs; "
          f"planned {n_jobs} jobs (with the local target rule 'all'); finished: "
          f"{'%s of %s steps' % done[-1] if done else 'not all'}")
    if n_jobs is None or len(submitted) != n_jobs - 1:
        failures.append(f"{len(submitted)} jobs went through sbatch, expected {n_jobs} - 1")
    if not done or done[-1][0] != done[-1][1]:
        failures.append("snakemake did not report 100% of its steps done")
    if canceller.error or canceller.job_id is None:
        failures.append(f"scancel step: {canceller.error}")
        return failures
    retried = [(job, ids) for job, ids in submitted.items() if canceller.job_id in ids]
    if not retried or len(retried[0][1]) < 2:
        failures.append(f"the cancelled Slurm job {canceller.job_id} was not submitted again")
        return failures
    job, ids = retried[0]
    retry_id = ids[ids.index(canceller.job_id) + 1]
    print(f"[driver] snakemake job {job}: Slurm job {canceller.job_id} cancelled, resubmitted as Slurm job {retry_id}")
    run_json = workdir / "results" / "models" / run / "run.json"
    record = json.loads(run_json.read_text()) if run_json.is_file() else {}
    resumed = record.get("resumed_from_epoch")
    prov = record.get("provenance", {})
    print(f"[driver] {run_json.relative_to(workdir)}: resumed from epoch {resumed} (checkpoint of epoch "
          f"{canceller.epoch} at the scancel), {record.get('train_steps_this_run')} training steps in the retry; "
          f"provenance: Slurm job {prov.get('slurm_job_id')}, commit {str(prov.get('git_commit'))[:12]}, "
          f"config {prov.get('config_hash')}, seed {prov.get('seed')}, device {prov.get('device')}")
    if not resumed or resumed < canceller.epoch:
        failures.append(f"the retry did not resume from the checkpoint (resumed_from_epoch={resumed})")
    if prov.get("slurm_job_id") != retry_id:
        failures.append(f"run.json was written by Slurm job {prov.get('slurm_job_id')}, not the retry {retry_id}")
    outside = [str(p.relative_to(workdir)) for kind in ("models", "attacks", "transfer", "analysis")
               for p in (workdir / "results" / kind).rglob("*.json")
               if not json.loads(p.read_text()).get("provenance", {}).get("slurm_job_id")]
    if outside:
        failures.append(f"result files not written inside a Slurm job: {', '.join(outside[:3])}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="scratch copy of the workflow")
    parser.add_argument("--run", default="digits/snn_vgg_tiny/vanilla/s0", help="training run to cancel")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the whole run may take")
    parser.add_argument("snakemake", nargs=argparse.REMAINDER, help="-- then the snakemake command line")
    args = parser.parse_args(argv)
    command = args.snakemake[1:] if args.snakemake[:1] == ["--"] else args.snakemake
    if not command:
        parser.error("give the snakemake command line after --")
    canceller = Canceller(args.workdir, args.run, args.timeout)
    canceller.start()
    log_path = args.workdir / "slurm-test.log"
    lines = []
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(command, cwd=args.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        for line in proc.stdout:
            log_file.write(line)
            lines.append(line)
            if ECHO.search(line):
                print(line.rstrip(), flush=True)
        rc = proc.wait(timeout=args.timeout)
    canceller.stop.set()
    canceller.join(timeout=5)
    failures = verify("".join(lines), args.workdir, args.run, canceller, rc)
    print(f"[driver] full Snakemake log: {log_path}")
    if failures:
        for failure in failures:
            print(f"slurm-test: error: {failure}", file=sys.stderr)
        return 1
    print("slurm-test: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
