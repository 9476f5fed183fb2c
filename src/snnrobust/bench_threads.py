"""Thread-policy benchmark: seconds per training step (forward, backward, SGD step) of the default SNN, alone and
beside one CPU-bound process, under each OpenMP thread policy, each in a fresh subprocess (OpenMP reads its
environment once, at start).

Policies: ``old`` (OMP_NUM_THREADS=2, default wait policy: what jobs used until now), ``new`` (OMP_NUM_THREADS=1,
one thread per job; Snakemake runs two jobs at once on 2 cores) and ``passive`` (OMP_NUM_THREADS=2,
OMP_WAIT_POLICY=PASSIVE). The figure per policy is the median step time idle and shared and the ratio
shared / idle; the throughput view compares two 1-thread processes stepping at once with one 2-thread process
(steps per second of the whole machine). The model, its options, the image size and the batch are read from
config/default.yaml at run time. All runs happen in one call, so their ratios are comparable. A policy's
processes warm up once, then are timed idle, then beside the CPU-bound process (started after the idle steps,
killed after the shared ones); steps start on a ready / go handshake, so processes timed together start together.

Usage: ``python -m snnrobust.bench_threads [--quick] [--out PATH.json]``. Timings belong here, never in tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The default config, read at run time for the model, its options, the image size and the batch.
CONFIG = Path(__file__).resolve().parents[2] / "config" / "default.yaml"
ARCH, DATASET = "snn_vgg_tiny", "digits"
#: Used only where the config does not say (the digits' image size, the training batch).
FALLBACK_IMAGE_SIZE, FALLBACK_BATCH, CHANNELS, CLASSES = 16, 64, 3, 10
#: Environment of each policy; every other OpenMP variable is removed from the child's environment.
POLICIES: dict[str, dict[str, str]] = {
    "old": {"OMP_NUM_THREADS": "2"},
    "new": {"OMP_NUM_THREADS": "1"},
    "passive": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}
#: Labels in the table.
LABELS = {"old": "old: OMP 2 threads, default wait",
          "new": "new: OMP 1 thread per job",
          "passive": "passive: OMP 2 threads, PASSIVE wait"}
#: The chosen policy (run twice at once for the throughput view) and the one-process 2-thread case it is compared to.
CHOSEN, TWO_THREADS = "new", "old"
#: A child stops timing after this many seconds even if it has not done all its repeats (it does at least 3).
MAX_SECONDS_PER_RUN = 15.0
#: Test hook: values that replace the ones read from the config (e.g. a tiny batch for the smoke test).
OVERRIDES: dict = {}
_CLEAR = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND", "OMP_PLACES",
          "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "KMP_BLOCKTIME")
HOG = "while True: pass"

# The child: build the model, warm up, say "ready"; on each "go" time the steps and print one JSON line; stop at EOF.
CHILD = r"""
import json, sys, time
setup = json.loads(sys.argv[1])
import torch
import torch.nn.functional as F
from snnrobust.models import build_model
torch.manual_seed(0)
model = build_model(setup["arch"], setup["classes"], tuple(setup["shape"]), **setup["options"]).train()
opt = torch.optim.SGD(model.parameters(), lr=setup["lr"], momentum=setup["momentum"],
                      weight_decay=setup["weight_decay"])
x = torch.rand(setup["batch"], *setup["shape"])
y = torch.randint(0, setup["classes"], (setup["batch"],))
def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(setup["warmup"]):
    step()
print("ready", flush=True)
while sys.stdin.readline().strip() == "go":
    times, begin = [], time.perf_counter()
    while len(times) < setup["repeats"]:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
        if len(times) >= min(3, setup["repeats"]) and time.perf_counter() - begin > setup["max_seconds"]:
            break
    print(json.dumps({"times": times, "wall": time.perf_counter() - begin, "threads": torch.get_num_threads()}),
          flush=True)
"""


def setup_from_config(path: Path = CONFIG) -> dict:
    """Model, options, input shape and batch of the default config's SNN training step."""
    from snnrobust.yamlio import load_yaml_strict

    cfg = load_yaml_strict(path)
    options = dict(cfg["models"][ARCH].get("options") or {})
    size = (cfg.get("datasets", {}).get(DATASET, {}).get("options") or {}).get("image_size", FALLBACK_IMAGE_SIZE)
    defaults = cfg.get("training", {}).get("defaults", {})
    setup = {"arch": cfg["models"][ARCH].get("arch", ARCH), "options": options, "shape": [CHANNELS, size, size],
             "classes": CLASSES, "batch": defaults.get("batch_size", FALLBACK_BATCH), "lr": defaults.get("lr", 0.05),
             "momentum": defaults.get("momentum", 0.0), "weight_decay": defaults.get("weight_decay", 0.0)}
    return {**setup, **OVERRIDES}


def _env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    return {**env, **POLICIES[policy]}


def _summary(results: list[dict], policy: str, procs: int, shared: bool, load_before: float) -> dict:
    medians = [statistics.median(r["times"]) for r in results]
    return {"policy": policy, "env": POLICIES[policy], "processes": procs, "shared": shared,
            "threads": [r["threads"] for r in results], "steps": [len(r["times"]) for r in results],
            "median_s": statistics.median(medians), "per_process_median_s": medians,
            "min_s": min(min(r["times"]) for r in results),
            "machine_steps_per_s": sum(1 / m for m in medians), "loadavg_1min_before": load_before}


#: The timed phases of one set of children: (name, how many of the children step, beside a CPU-bound process).
ALONE = (("idle", 1, False), ("shared", 1, True))
PAIR = (("pair_idle", 2, False), ("pair_shared", 2, True))


def _go(children: list, policy: str, shared: bool) -> dict:
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if shared else None
    try:
        if hog is not None:
            time.sleep(0.3)  # the competitor is running before the first timed step
        load_before = os.getloadavg()[0]
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.stdout.readline()) for child in children]
    finally:
        if hog is not None:  # killed after the timed steps
            hog.kill()
            hog.wait()
    return _summary(results, policy, len(children), shared, load_before)


def _run(policy: str, phases: tuple, setup: dict) -> dict[str, dict]:
    """Children under ``policy`` (as many as the largest phase needs), warmed up once, then each phase timed:
    its children step together while the others wait idle on their stdin."""
    procs = max(n for _, n, _ in phases)
    children = [subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(setup)], env=_env(policy), text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(procs)]
    try:
        for child in children:
            line = child.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"bench child failed before its timed steps (policy {policy}): {line!r}")
        return {name: _go(children[:n], policy, shared) for name, n, shared in phases}
    finally:
        for child in children:
            if child.poll() is None:
                child.stdin.close()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            child.wait()


def measure(warmup: int, repeats: int) -> dict:
    """Every policy idle and shared (one process), and the chosen policy also as two processes stepping at once."""
    setup = {**setup_from_config(), "warmup": warmup, "repeats": repeats, "max_seconds": MAX_SECONDS_PER_RUN}
    start = time.perf_counter()
    policies, pair = {}, {}
    for policy in POLICIES:
        runs = _run(policy, ALONE + PAIR if policy == CHOSEN else ALONE, setup)
        pair.update({name.split("_", 1)[1]: runs.pop(name) for name, _, _ in PAIR if name in runs})
        policies[policy] = {**runs, "ratio_shared_to_idle": runs["shared"]["median_s"] / runs["idle"]["median_s"]}
    throughput = {}
    if pair:
        throughput = {"two_1thread_processes_steps_per_s": pair["idle"]["machine_steps_per_s"],
                      "two_1thread_processes_shared_steps_per_s": pair["shared"]["machine_steps_per_s"],
                      "ratio_pair_shared_to_idle": pair["idle"]["machine_steps_per_s"]
                      / pair["shared"]["machine_steps_per_s"]}
    if pair and TWO_THREADS in policies:
        one = policies[TWO_THREADS]["idle"]["machine_steps_per_s"]
        throughput.update({"one_2thread_process_steps_per_s": one,
                           "ratio_two_1thread_to_one_2thread": throughput["two_1thread_processes_steps_per_s"] / one})
    return {
        "config": {**{k: v for k, v in setup.items() if k != "max_seconds"}, "config_file": str(CONFIG),
                   "max_seconds_per_run": MAX_SECONDS_PER_RUN, "chosen": CHOSEN},
        "policies": policies,
        "pair": pair,
        "throughput": throughput,
        "wall_s": time.perf_counter() - start,
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "loadavg_after": list(os.getloadavg())},
    }


def table(result: dict) -> str:
    c = result["config"]
    lines = [f"one training step of {c['arch']} {c['options']}, input {tuple(c['shape'])}, batch {c['batch']}",
             f"{'policy':38s} {'idle ms':>9s} {'shared ms':>10s} {'shared/idle':>12s}"]
    for name, p in result["policies"].items():
        lines.append(f"{LABELS.get(name, name):38s} {1000 * p['idle']['median_s']:9.1f} "
                     f"{1000 * p['shared']['median_s']:10.1f} {p['ratio_shared_to_idle']:12.2f}")
    t = result["throughput"]
    if t:
        lines.append("\nsteps/s of the machine: two 1-thread processes at once "
                     f"{t['two_1thread_processes_steps_per_s']:.2f}"
                     f" (beside a CPU-bound process: {t['two_1thread_processes_shared_steps_per_s']:.2f}, "
                     f"time ratio shared/idle {t['ratio_pair_shared_to_idle']:.2f})")
    if "one_2thread_process_steps_per_s" in t:
        lines.append(f"                        one 2-thread process {t['one_2thread_process_steps_per_s']:.2f}"
                     f"  → ratio {t['ratio_two_1thread_to_one_2thread']:.2f}")
    lines.append(f"(whole case: {result['wall_s']:.0f} s; load average after: "
                 f"{', '.join(f'{v:.2f}' for v in result['environment']['loadavg_after'])})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from snnrobust.bench import bench_cli

    return bench_cli(argv, "python -m snnrobust.bench_threads", __doc__, measure, table, full=(3, 30))


if __name__ == "__main__":
    raise SystemExit(main())
