"""Neuron cost benchmark: one fwd+bwd training step (CE on logits, gradients w.r.t. the weights) of
the 4-conv spiking VGG (``snn_vgg_tiny``, widths 32-64-128-128, T=4, batch 32, 32×32) with
(a) our lean multi-step IF, (b) spikingjelly's multi-step IFNode, (c) a Python loop over T in
single-step mode, against (d) the same-shape ANN; ratios are to ANN time × T. A second table times
the neuron alone (fwd+bwd of one IF layer on the first conv's output shape), so its own cost shows
apart from the convolutions.

Usage: ``python -m snnrobust.bench [--quick] [--out PATH.json]``. Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from snnrobust.io import write_json
from snnrobust.models import build_model
from snnrobust.neuron import NEURONS
from snnrobust.surrogates import make_surrogate

T, BATCH, SHAPE, CLASSES, WIDTH = 4, 32, (3, 32, 32), 10, 2.0  # width 2 → convs 32-64-128-128


def _step(model: torch.nn.Module, forward: Callable, x, y) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()

    return run


def _multi_step(neuron: str):
    def make(x, y):
        model = build_model("snn_vgg_tiny", CLASSES, SHAPE, T=T, width=WIDTH, neuron=neuron).train()
        return _step(model, model, x, y)

    return make


def _single_step_loop(x, y):
    """spikingjelly IFNode, every layer in single-step mode, a Python loop over T after reset_net."""
    model = build_model("snn_vgg_tiny", CLASSES, SHAPE, T=T, width=WIDTH, neuron="spikingjelly").train()
    net = model.backbone
    functional.set_step_mode(net, "s")

    def forward(inp):
        functional.reset_net(net)
        inp = model.normalize(inp)
        return sum(net(inp) for _ in range(T)) / T

    return _step(model, forward, x, y)


def _ann(x, y):
    model = build_model("ann_vgg_tiny", CLASSES, SHAPE, width=WIDTH).train()
    return _step(model, model, x, y)


CASES: dict[str, tuple[str, Callable]] = {
    "lean": ("(a) lean MultiStepIF, multi-step", _multi_step("lean")),
    "spikingjelly": ("(b) spikingjelly IFNode, multi-step", _multi_step("spikingjelly")),
    "single_step_loop": ("(c) IFNode single-step, loop over T", _single_step_loop),
    "ann": ("(d) same-shape ANN (ReLU)", _ann),
}


NEURON_SHAPE = (T, BATCH, 32, 32, 32)  # [T, B, C, H, W] after the first conv at width 2


def _neuron_alone(kind: str):
    def make(x_seq):
        node = NEURONS.get(kind)(surrogate_function=make_surrogate("triangle", 1.0), detach_reset=False)
        grad = torch.full_like(x_seq, 0.3)

        def run() -> None:
            functional.reset_net(node)
            xr = x_seq.detach().requires_grad_(True)
            node(xr).backward(grad)

        return run

    return make


NEURON_CASES = {"lean": _neuron_alone("lean"), "spikingjelly": _neuron_alone("spikingjelly")}


def _time_once(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _round_robin(runs: dict[str, Callable[[], None]], warmup: int, repeats: int) -> dict[str, list[float]]:
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_time_once(run))
    return times


def measure(warmup: int, repeats: int, seed: int = 0) -> dict:
    """Seconds per training step of every case, measured in this one process. The cases are timed
    round-robin (one step of each per round) so that load from other processes hits all alike;
    the median over rounds is the figure, the minimum is kept beside it."""
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    x = torch.rand(BATCH, *SHAPE)
    y = torch.randint(0, CLASSES, (BATCH,))
    runs = {}
    for name, (_, make) in CASES.items():
        torch.manual_seed(seed)
        runs[name] = make(x, y)
    times = _round_robin(runs, warmup, repeats)
    x_seq = torch.randn(*NEURON_SHAPE, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.5
    neuron_times = _round_robin({n: make(x_seq) for n, make in NEURON_CASES.items()}, warmup, repeats)
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    base = seconds["ann"] * T
    return {
        "config": {"arch": "snn_vgg_tiny", "width": WIDTH, "T": T, "batch": BATCH, "shape": list(SHAPE),
                   "warmup": warmup, "repeats": repeats, "threads": torch.get_num_threads()},
        "seconds": seconds,
        "min_seconds": {name: min(ts) for name, ts in times.items()},
        "ratio_to_ann_T": {name: s / base for name, s in seconds.items()},
        "neuron_alone": {"shape": list(NEURON_SHAPE),
                         "seconds": {n: statistics.median(ts) for n, ts in neuron_times.items()},
                         "min_seconds": {n: min(ts) for n, ts in neuron_times.items()}},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "cpus": os.cpu_count(),
                        "loadavg_after": list(os.getloadavg())},
    }


def table(result: dict) -> str:
    lines = [f"{'case':40s} {'median ms':>10s} {'min ms':>8s} {'÷ (ANN×T)':>10s}"]
    for name, (label, _) in CASES.items():
        ms, low = 1000 * result["seconds"][name], 1000 * result["min_seconds"][name]
        lines.append(f"{label:40s} {ms:10.1f} {low:8.1f} {result['ratio_to_ann_T'][name]:10.2f}")
    alone = result["neuron_alone"]
    lines.append(f"\nIF layer alone, fwd+bwd on {tuple(alone['shape'])}:")
    for name in NEURON_CASES:
        ms, low = 1000 * alone["seconds"][name], 1000 * alone["min_seconds"][name]
        lines.append(f"{name:40s} {ms:10.1f} {low:8.1f}")
    return "\n".join(lines)


def bench_cli(argv: list[str] | None, prog: str, doc: str, measure_fn: Callable[[int, int], dict],
              table_fn: Callable[[dict], str], full: tuple[int, int]) -> int:
    """The command line every benchmark module shares: ``--quick`` (warm-up 1, 2 repeats) or ``full``
    (warm-up, repeats); the table is printed and ``--out`` writes the figures as JSON."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--out", help="write the figures as JSON to this path")
    args = parser.parse_args(argv)
    warmup, repeats = (1, 2) if args.quick else full
    result = measure_fn(warmup, repeats)
    print(table_fn(result))
    if args.out:
        write_json(args.out, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_cli(argv, "python -m snnrobust.bench", __doc__, measure, table, full=(3, 20))


if __name__ == "__main__":
    raise SystemExit(main())
