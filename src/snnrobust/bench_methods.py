"""SR-paper cost benchmark: seconds per training step of vanilla, AT, RAT, SR and SR* (Tab. 7 as ratios
to vanilla), and the wall-clock of the surrogate-ensemble attack (cascade) against one PGD of the same budget.

All cases are timed round-robin in one process (one step of each per round, median over rounds), so load
from other processes hits all alike; only ratios taken in one run are meaningful on a noisy machine.
Usage: ``python -m snnrobust.bench`` (runs this after the neuron table) or ``python -m snnrobust.bench_methods``.
"""

from __future__ import annotations

import statistics
from typing import Callable

import torch


T, BATCH, SHAPE, CLASSES, WIDTH = 4, 32, (3, 32, 32), 10, 2.0
EPS = 8 / 255
#: Paper Table 7 (GPU, VGG-11, CIFAR-10): seconds per epoch; ratios to vanilla are what we compare.
PAPER_EPOCH_S = {"vanilla": 65, "at": 459, "rat": 134, "sr": 193, "sr_star": 583}
#: The methods as the SR paper trains them (App. D: PGD-5, eps 2/255, alpha 0.01; SR lam 0.008, SR* 0.002).
INNER = {"name": "pgd", "options": {"steps": 5, "alpha": 0.01, "random_start": True}}
METHOD_SPECS: dict[str, tuple[str, dict]] = {
    "vanilla": ("vanilla", {}),
    "at": ("at", {"attack": INNER, "eps": 2 / 255}),
    "rat": ("rat", {"attack": INNER, "eps": 2 / 255}),
    "sr": ("sr", {"lam": 0.008}),
    "sr_star": ("sr_star", {"attack": INNER, "eps": 2 / 255, "lam": 0.002}),
}
#: Targets of the SR issue: SR at most 2.2x vanilla, SR* at most 6x; the ensemble at most 3x one PGD.
TARGETS = {"sr": 2.2, "sr_star": 6.0, "ensemble_vs_pgd": 3.0}
ENSEMBLE_MEMBERS = [{"rule": "surrogate", "name": "triangle", "gamma": 1.0},
                    {"rule": "surrogate", "name": "sigmoid", "gamma": 4.0},
                    {"rule": "surrogate", "name": "atan", "gamma": 2.0},
                    {"rule": "rga"}]


def _snn(seed: int = 0) -> torch.nn.Module:
    from snnrobust.models import build_model

    torch.manual_seed(seed)
    return build_model("snn_vgg_tiny", CLASSES, SHAPE, T=T, width=WIDTH)


def _train_step(name: str, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One optimizer step of a method (loss, backward, step, after_step), on its own model copy."""
    from snnrobust.methods import make_method

    method_name, options = METHOD_SPECS[name]
    method = make_method(method_name, **options)
    model = _snn().train()
    groups = method.param_groups(model) or [{"params": list(model.parameters())}]
    optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = method.loss(model, x, y)
        loss.backward()
        optimizer.step()
        method.after_step(model, optimizer)

    return run


def _parts(x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], None]]:
    """The passes an SR step is made of, timed alone on a vanilla model in train mode: a forward (with its graph),
    and a forward followed by the input-only backward (the direction of Eq. 13)."""
    model = _snn().train()

    def forward() -> None:
        torch.nn.functional.cross_entropy(model(x), y)

    def input_backward() -> None:
        xx = x.detach().requires_grad_(True)
        torch.autograd.grad(torch.nn.functional.cross_entropy(model(xx), y), xx)

    return {"part_forward": forward, "part_forward_input_backward": input_backward}


def sr_floor(step_s: dict[str, float]) -> float:
    """SR's step ÷ vanilla's if each pass cost what it costs alone: forwards at x and x̂ (2F), the input-only
    backward (Bin) and two full backwards (2B), over F + B (B = vanilla step − F). Reusing the neuron terms of the
    first backward in the second is what can take SR below it; the CE and SR terms' weight gradients cannot."""
    f = step_s["part_forward"]
    b_in = step_s["part_forward_input_backward"] - f
    b = step_s["vanilla"] - f
    return (2 * f + b_in + 2 * b) / (f + b)


def _briefly_trained(x: torch.Tensor, y: torch.Tensor, steps: int = 30) -> torch.nn.Module:
    """A model fitted a little to the batch, so the attacks break some samples and not others (the cascade's
    saving depends on how many samples the first member already breaks)."""
    model = _snn(1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _attack_run(model: torch.nn.Module, attack, x, y) -> Callable[[], None]:
    def run() -> None:
        attack(model, x, y, generator=torch.Generator().manual_seed(0))

    return run


def _round_robin(runs: dict[str, Callable[[], None]], warmup: int, repeats: int) -> dict[str, list[float]]:
    from snnrobust.bench import _round_robin as shared

    return shared(runs, warmup, repeats)


def measure(warmup: int, repeats: int, seed: int = 0) -> dict:
    """Seconds per training step per method and per attack call, with their ratios, from one process."""
    from snnrobust.attacks import make_attack

    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, *SHAPE, generator=gen)
    y = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    train_times = _round_robin({**{name: _train_step(name, x, y) for name in METHOD_SPECS}, **_parts(x, y)},
                               warmup, repeats)
    step_s = {name: statistics.median(ts) for name, ts in train_times.items()}
    model = _briefly_trained(x, y)
    pgd = make_attack("pgd", eps=EPS, steps=10, alpha=2.5 * EPS / 10, random_start=True)
    ensemble = make_attack("ensemble", eps=EPS, attack={"name": "pgd", "options": {"steps": 10}},
                           members=ENSEMBLE_MEMBERS)
    full = make_attack("ensemble", eps=EPS, attack={"name": "pgd", "options": {"steps": 10}},
                       members=ENSEMBLE_MEMBERS, cascade=False)
    attack_times = _round_robin({"pgd10": _attack_run(model, pgd, x, y),
                                 "ensemble_cascade": _attack_run(model, ensemble, x, y),
                                 "ensemble_all_members": _attack_run(model, full, x, y)},
                                max(1, warmup // 2), max(3, repeats // 3))
    attack_s = {name: statistics.median(ts) for name, ts in attack_times.items()}
    vanilla = step_s["vanilla"]
    paper_vanilla = PAPER_EPOCH_S["vanilla"]
    return {
        "config": {"arch": "snn_vgg_tiny", "width": WIDTH, "T": T, "batch": BATCH, "warmup": warmup,
                   "repeats": repeats, "threads": torch.get_num_threads(), "methods": METHOD_SPECS},
        "train_step_seconds": step_s,
        "train_step_ratio_to_vanilla": {n: s / vanilla for n, s in step_s.items()},
        "sr_floor_ratio_to_vanilla": sr_floor(step_s),
        "paper_table7_ratio_to_vanilla": {n: s / paper_vanilla for n, s in PAPER_EPOCH_S.items()},
        "attack_seconds": attack_s,
        "attack_ratio_to_pgd10": {n: s / attack_s["pgd10"] for n, s in attack_s.items()},
        "targets": TARGETS,
    }


def table(result: dict) -> str:
    lines = [f"{'training step':14s} {'median ms':>10s} {'÷ vanilla':>10s} {'paper Tab. 7 ÷ vanilla':>24s}"]
    for name in METHOD_SPECS:
        lines.append(f"{name:14s} {1000 * result['train_step_seconds'][name]:10.1f} "
                     f"{result['train_step_ratio_to_vanilla'][name]:10.2f} "
                     f"{result['paper_table7_ratio_to_vanilla'][name]:24.2f}")
    lines.append(f"{'sr floor':14s} {'':10s} {result['sr_floor_ratio_to_vanilla']:10.2f}   (2F + Bin + 2B) / (F + B), "
                 f"passes timed alone (F {1000 * result['train_step_seconds']['part_forward']:.1f} ms)")
    lines.append(f"\n{'attack call':22s} {'median ms':>10s} {'÷ PGD-10':>10s}")
    for name, s in result["attack_seconds"].items():
        lines.append(f"{name:22s} {1000 * s:10.1f} {result['attack_ratio_to_pgd10'][name]:10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from snnrobust.bench import bench_cli

    return bench_cli(argv, "python -m snnrobust.bench_methods", __doc__, measure, table, full=(2, 12))


if __name__ == "__main__":
    raise SystemExit(main())
