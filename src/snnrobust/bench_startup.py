"""Start-up benchmark: seconds from process start until each ``python -m snnrobust`` verb's code can run, and
whether torch / torch_geometric got loaded by then (the goal: only graph jobs load PyG).

Each measurement is a fresh ``python -c`` that runs ``snnrobust.cli.main`` on the verb with placeholder arguments,
the verb's function swapped for a stand-in that performs the imports the real function makes (the IMPORT_NAME
instructions of its bytecode, read at run time, the imported names fetched, which triggers lazy ``__getattr__``
loading), then the imports in the body of each snnrobust function it imported (the command function, which
imports what it needs before it reads its inputs), and nothing else. Imports deeper down are on-demand work,
not start-up (e.g. torch_geometric inside the GCN builder, for graph models only). So the figure is what the
code imports today, not a list kept here: interpreter start, ``snnrobust.cli``, argument parsing, output checks
and the verb's imports. The clock is
CLOCK_MONOTONIC, shared by parent and child (taken just before the parent starts the child). The rows
``(python)`` (bare interpreter) and ``(cli)`` (``snnrobust.cli`` imported, nothing run) are the baselines.
Verbs are timed round-robin (one run of each per round, median over rounds), so load hits all alike.

The second table is the warm start of ``make reproduce`` (``snnrobust.preload``): the wall seconds of a whole job
that stops at its first check (a spec with an unknown key, so it has loaded everything its verb imports and parsed
its arguments), run as its own process and through a preload server, round-robin, median.

Usage: ``python -m snnrobust.bench_startup [--quick] [--out PATH.json]``. Timings belong here, never in tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

#: Test hook: time only these verbs (None: every verb of ``snnrobust.cli.VERBS``).
ONLY: tuple[str, ...] | None = None
#: Packages whose presence is reported as its own column.
WATCH = ("torch", "torch_geometric")
BASELINES = ("(python)", "(cli)")
MARK = "SNNROBUST-BENCH-STARTUP "

CHILD = r"""
import time
ready = time.monotonic()
import json, os, sys
verb, tmp, mark = sys.argv[1], sys.argv[2], sys.argv[3]

def report(ready, rc=0):
    names = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - {"__main__", "snnrobust"})
    print(mark + json.dumps({"ready": ready, "rc": rc, "modules": len(sys.modules),
                             "packages": [n for n in names if not n.startswith("_")],
                             "loaded": sorted(sys.modules)}), flush=True)

if verb == "(python)":
    report(ready)
    raise SystemExit(0)
import dis
import snnrobust.cli as cli
if verb == "(cli)":
    report(time.monotonic())
    raise SystemExit(0)

real = cli.VERBS[verb]

def imports_of(fn):
    '''(module, fromlist, level) of every import statement in fn's own code.'''
    found, prev = [], []
    for ins in dis.get_instructions(fn):
        if ins.opname == "IMPORT_NAME":
            consts = [p.argval for p in prev[-2:] if p.opname == "LOAD_CONST"]
            level, fromlist = consts if len(consts) == 2 else (0, None)
            found.append((ins.argval, fromlist, level))
        prev.append(ins)
    return found

state = {}

def run_imports(fn):
    '''Run fn's import statements as fn would; return the objects its `from ... import` names bind.'''
    got = []
    for name, fromlist, level in imports_of(fn):
        module = __import__(name, fn.__globals__, None, fromlist, level or 0)
        got += [getattr(module, attr) for attr in fromlist or () if attr != "*"]
    return got

def stand_in(args):
    # the verb's imports, then those at the head of each snnrobust function it imports (its command function)
    for obj in run_imports(real):
        if hasattr(obj, "__code__") and getattr(obj, "__module__", "").startswith("snnrobust."):
            run_imports(obj)
    state["ready"] = time.monotonic()

stand_in._cli = real._cli
cli.VERBS[verb] = stand_in
argv = [verb]
help_text, args = real._cli
for flags, kwargs in args:
    positional = not flags[0].startswith("-")
    if positional or kwargs.get("required"):
        value = os.path.join(tmp, flags[-1].lstrip("-").replace("-", "_"))
        argv += [value] if positional else [flags[-1], value]
rc = cli.main(argv)
report(state.get("ready"), rc)
"""


def _once(verb: str, tmp: str) -> dict:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, verb, tmp, MARK], capture_output=True, text=True,
                          cwd=tmp)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        raise RuntimeError(f"start-up child for {verb!r} printed no result: {proc.stderr.strip()[-500:]}")
    out = json.loads(lines[-1][len(MARK):])
    if out["ready"] is None:
        raise RuntimeError(f"verb {verb!r} never reached its code (exit {out['rc']}): {proc.stderr.strip()[-500:]}")
    out["seconds"] = out["ready"] - start
    return out


def verbs() -> list[str]:
    from snnrobust.cli import VERBS

    return [v for v in VERBS if ONLY is None or v in ONLY]


def measure(warmup: int, repeats: int) -> dict:
    """Median start-up seconds per verb (and the baselines) over ``repeats`` round-robin rounds, after
    ``warmup`` rounds that only fill the file cache."""
    rows = [*BASELINES, *verbs()]
    times: dict[str, list[float]] = {row: [] for row in rows}
    last: dict[str, dict] = {}
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="snnrobust-bench-startup-") as tmp:
        for round_ in range(warmup + repeats):
            for row in rows:
                out = _once(row, tmp)
                if round_ >= warmup:
                    times[row].append(out["seconds"])
                last[row] = out
        warm = measure_warm(repeats, tmp)
    result = {}
    for row in rows:
        loaded = set(last[row]["loaded"])
        result[row] = {"median_s": statistics.median(times[row]), "min_s": min(times[row]), "runs_s": times[row],
                       "modules": last[row]["modules"], "packages": last[row]["packages"],
                       **{pkg: pkg in loaded for pkg in WATCH}}
    return {"config": {"warmup": warmup, "repeats": repeats, "python": sys.executable},
            "verbs": result, "warm": warm, "wall_s": time.perf_counter() - begin,
            "environment": {"python": platform.python_version(), "machine": platform.machine(),
                            "cpus": os.cpu_count(), "loadavg_after": list(os.getloadavg())}}


#: verbs whose warm start is timed (the ones that load torch, plus two report verbs)
WARM_VERBS = ("prepare", "train", "attack", "analyze", "figure", "table")


def _job_argv(verb: str, tmp: str) -> list[str]:
    """The verb with placeholder paths and a spec it refuses at once (after its imports)."""
    from snnrobust.cli import VERBS

    argv = [verb]
    for flags, kwargs in VERBS[verb]._cli[1]:
        positional = not flags[0].startswith("-")
        if flags[-1] == "--spec":
            argv += ["--spec", json.dumps({"no_such_key": 1})]
        elif positional or kwargs.get("required"):
            value = os.path.join(tmp, flags[-1].lstrip("-").replace("-", "_"))
            argv += [value] if positional else [flags[-1], value]
    return argv


def measure_warm(repeats: int, tmp: str) -> dict:
    """Median wall seconds of a refused job per verb: its own process vs a fork of a preload server."""
    from snnrobust import preload

    if not [v for v in WARM_VERBS if ONLY is None or v in ONLY]:
        return {}
    path = os.path.join(tmp, "preload.socket")
    server = subprocess.Popen([sys.executable, "-m", "snnrobust.preload", "serve", path],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        while not os.path.exists(path):
            if server.poll() is not None:
                raise RuntimeError("the preload server did not start")
            time.sleep(0.05)
        modes = {"own_s": {k: v for k, v in os.environ.items() if k != preload.ENV},
                 "warm_s": {**os.environ, preload.ENV: path}}
        verbs_ = [v for v in WARM_VERBS if ONLY is None or v in ONLY]
        times = {v: {m: [] for m in modes} for v in verbs_}
        for _ in range(repeats + 1):  # the first round fills the file cache
            for verb in verbs_:
                for mode, env in modes.items():
                    start = time.monotonic()
                    proc = subprocess.run([sys.executable, "-m", "snnrobust", *_job_argv(verb, tmp)], env=env,
                                          capture_output=True, text=True, cwd=tmp)
                    if proc.returncode != 2:
                        raise RuntimeError(f"{verb} ({mode}) did not stop at its spec: {proc.stderr.strip()[-300:]}")
                    times[verb][mode].append(time.monotonic() - start)
        return {v: {m: statistics.median(ts[m][1:]) for m in modes} for v, ts in times.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)


def table(result: dict) -> str:
    lines = [f"{'verb':18s} {'median s':>9s} {'min s':>7s} {'torch':>6s} {'PyG':>4s} {'modules':>8s}"
             "  third-party packages"]
    for name, row in result["verbs"].items():
        yes = {True: "yes", False: "-"}
        lines.append(f"{name:18s} {row['median_s']:9.2f} {row['min_s']:7.2f} {yes[row['torch']]:>6s} "
                     f"{yes[row['torch_geometric']]:>4s} {row['modules']:8d}  {' '.join(row['packages'])}")
    lines.append(f"(median of {result['config']['repeats']} runs per verb; whole case {result['wall_s']:.0f} s; "
                 f"load average after: {', '.join(f'{v:.2f}' for v in result['environment']['loadavg_after'])})")
    lines.append("")
    lines.append(f"{'refused job':18s} {'own process s':>14s} {'preload fork s':>15s} {'saved s':>8s}")
    for verb, row in result.get("warm", {}).items():
        lines.append(f"{verb:18s} {row['own_s']:14.2f} {row['warm_s']:15.2f} {row['own_s'] - row['warm_s']:8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from snnrobust.bench import bench_cli

    return bench_cli(argv, "python -m snnrobust.bench_startup", __doc__, measure, table, full=(1, 5))


if __name__ == "__main__":
    raise SystemExit(main())
