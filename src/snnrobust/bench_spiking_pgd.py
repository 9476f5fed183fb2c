"""Spiking-PGD vs PGD wall-clock at equal iterations: forward reuse (the paper's), and the two options beyond it,
``backward_reuse`` and ``block_reuse`` (``attacks/reuse.py``), on resnet18 (width 0.25, a labelled stand-in) and
the spiking VGG ``snn_vgg_tiny``, each briefly trained on the prepared CIFAR-10 subset (or, without it, on an
offline synthetic task), so that robust accuracies can be compared on the same images with the same seed.

Every case of a model is timed round-robin in one process (one attack call of each per round, median over rounds)
on the first evaluation batch, so load from other processes hits all alike; robust accuracy and the layer-work
shares come from an untimed pass over the evaluation images (same images, same seed for every case), which is also
the first warm-up round. The issue's target is printed with the table and judged per row.
Usage: ``python -m snnrobust.bench_spiking_pgd [--quick] [--out results/bench/spiking_pgd.json]``.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

EPS, STEPS = 2 / 255, 10  # ε = 2/255: the briefly trained models keep a robust accuracy above 0 to compare
TARGET_RATIO, ACC_TOLERANCE = 0.5, 1.0
TARGET = ("≤ 0.5× PGD wall-clock at equal robust accuracy (±1 point), ahead of forward reuse's (1 + r)/2 floor "
          "(r = forward_share)")
#: name → (arch, build options, label)
MODELS: dict[str, tuple[str, dict, str]] = {
    "resnet18": ("resnet18", {"width": 0.25}, "resnet18 width 0.25 (stand-in for the paper's width 1)"),
    "snn_vgg_tiny": ("snn_vgg_tiny", {"T": 4, "width": 1.0}, "snn_vgg_tiny T=4 width 1"),
}
#: reuse mode → spiking_pgd options on top of rho; ``none`` is PGD itself.
REUSE: dict[str, dict] = {
    "forward": {},
    "backward": {"backward_reuse": True},
    "block": {"block_reuse": True},
    "block+backward": {"block_reuse": True, "backward_reuse": True},
}
RHOS = (0.005, 0.01)  # on these models ρ ≈ 0.004-0.01 spans partial to full reuse after iteration 1 (ε = 2/255)
DATA_PATHS = (Path("data/prepared/cifar10.npz"), Path("/work/main/data/prepared/cifar10.npz"),
              Path("/work/cpu_all/data/prepared/cifar10.npz"))
QUICK = {"batch": 16, "n_eval": 16, "train_steps": 30, "rhos": RHOS}
FULL = {"batch": 32, "n_eval": 256, "train_steps": 200, "rhos": (0.003, 0.005, 0.007, 0.01)}


def _dataset(path: Path | str | None, n_train: int, n_eval: int, seed: int):
    """(x_train, y_train, x_eval, y_eval, meta) as float pixels in [0, 1]: the prepared CIFAR-10 subset at the
    first existing ``DATA_PATHS`` entry (or ``path``), else a synthetic 10-class task (a per-class low-frequency
    colour pattern plus noise); ``path="synthetic"`` forces the latter."""
    if path is None:
        path = next((p for p in DATA_PATHS if p.exists()), "synthetic")
    if str(path) != "synthetic":
        from snnrobust.data import load_prepared

        data = load_prepared(path)
        (xt, yt), (xe, ye) = data.train, data.test
        meta = {"source": str(path), "mean": data.meta["mean"], "std": data.meta["std"]}
        return xt[:n_train].float() / 255, yt[:n_train], xe[:n_eval].float() / 255, ye[:n_eval], meta
    g = torch.Generator().manual_seed(seed)
    protos = torch.nn.functional.interpolate(torch.rand(10, 3, 4, 4, generator=g) * 2 - 1, size=(32, 32),
                                             mode="bilinear", align_corners=False)

    def draw(n: int):
        y = torch.randint(0, 10, (n,), generator=g)
        x = (0.5 + 0.2 * protos[y] + 0.2 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
        return x, y

    (xt, yt), (xe, ye) = draw(n_train), draw(n_eval)
    return xt, yt, xe, ye, {"source": "synthetic", "mean": [0.5] * 3, "std": [0.25] * 3}


def _trained(name: str, xt: torch.Tensor, yt: torch.Tensor, meta: dict, steps: int, seed: int) -> torch.nn.Module:
    """The model fitted for ``steps`` SGD steps (batch 64, lr 0.05, momentum 0.9), in eval mode."""
    from snnrobust.models import build_model

    arch, opts, _ = MODELS[name]
    torch.manual_seed(seed)
    model = build_model(arch, 10, (3, 32, 32), mean=meta["mean"], std=meta["std"], **opts).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (64,), generator=g)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
        optimizer.step()
    return model.eval()


def _cases(model: torch.nn.Module, rhos: Sequence[float], steps: int) -> dict[tuple[str, float | None], object]:
    """(reuse, rho) → attack: PGD as ("none", None), then each reuse mode at each ρ; the block modes only where the
    model has residual blocks (without them block reuse is forward reuse)."""
    from snnrobust.attacks import make_attack
    from snnrobust.attacks.reuse import gated_blocks

    opts = {"eps": EPS, "steps": steps, "alpha": 2.5 * EPS / steps, "random_start": True}
    cases = {("none", None): make_attack("pgd", **opts)}
    has_blocks = bool(gated_blocks(model))
    for rho in rhos:
        for mode, extra in REUSE.items():
            if extra.get("block_reuse") and not has_blocks:
                continue
            cases[(mode, rho)] = make_attack("spiking_pgd", rho=rho, **extra, **opts)
    return cases


def _run(model, attack, x, y) -> Callable[[], None]:
    def run() -> None:
        attack(model, x, y, generator=torch.Generator().manual_seed(0))

    return run


def measure(warmup: int, repeats: int, *, batch: int = 16, n_eval: int = 32, train_steps: int = 30,
            rhos: Sequence[float] = RHOS, models: Sequence[str] = tuple(MODELS), steps: int = STEPS,
            data: Path | str | None = None, seed: int = 0, threads: int = 1) -> dict:
    """Rows {model, reuse, rho, forward_share, wall_s, ratio_to_pgd, robust_acc, ...} of every case, measured in
    this one process on ``threads`` threads (restored after)."""
    from snnrobust.attacks import evaluate_attack
    from snnrobust.bench import _round_robin

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        xt, yt, xe, ye, meta = _dataset(data, max(64, 64 * train_steps), n_eval, seed)
        batches = [(xe[i:i + batch], ye[i:i + batch]) for i in range(0, len(xe), batch)]
        rows, models_info = [], {}
        for name in models:
            model = _trained(name, xt, yt, meta, train_steps, seed)
            cases = _cases(model, rhos, steps)
            evals = {key: evaluate_attack(model, atk, batches, seed=seed, progress=False) for key, atk in cases.items()}
            # the evaluation pass ran every case on batches[0] already: it is the first warm-up round
            times = _round_robin({key: _run(model, atk, *batches[0]) for key, atk in cases.items()},
                                 max(warmup - 1, 0), repeats)
            pgd_s, pgd_acc = statistics.median(times[("none", None)]), evals[("none", None)]["robust_acc"]
            models_info[name] = {"label": MODELS[name][2], "clean_acc": evals[("none", None)]["clean_acc"]}
            for (mode, rho), ev in evals.items():
                wall = statistics.median(times[(mode, rho)])
                ratio, r = wall / pgd_s, ev["forward_share"]
                delta = ev["robust_acc"] - pgd_acc
                rows.append({
                    "model": name, "reuse": mode, "rho": rho,
                    "forward_share": r, "forward_share_flops": ev["forward_share_flops"],
                    "backward_share_flops": ev["backward_share_flops"],
                    "wall_s": wall, "min_wall_s": min(times[(mode, rho)]), "ratio_to_pgd": ratio,
                    "floor": (1 + r) / 2, "robust_acc": ev["robust_acc"], "robust_acc_pgd": pgd_acc,
                    "acc_delta": delta,
                    "meets_target": mode != "none" and ratio <= TARGET_RATIO and abs(delta) <= ACC_TOLERANCE
                    and ratio < (1 + r) / 2,
                })
        return {
            "config": {"eps": EPS, "steps": steps, "alpha": 2.5 * EPS / steps, "batch": batch, "n_eval": len(xe),
                       "acc_resolution_points": 100.0 / max(len(xe), 1), "train_steps": train_steps,
                       "rhos": list(rhos), "warmup": warmup, "repeats": repeats, "threads": threads,
                       "data": meta["source"], "reuse_modes": REUSE},
            "target": TARGET,
            "models": models_info,
            "rows": rows,
            "environment": {"torch": torch.__version__, "python": platform.python_version(),
                            "machine": platform.machine(), "cpus": os.cpu_count(),
                            "loadavg_after": list(os.getloadavg())},
        }
    finally:
        torch.set_num_threads(saved_threads)


def table(result: dict) -> str:
    cfg = result["config"]
    lines = [f"Spiking-PGD vs PGD-{cfg['steps']}, ε = {cfg['eps'] * 255:.0f}/255, {cfg['n_eval']} images "
             f"({cfg['data']}), timed on a batch of {cfg['batch']}, {cfg['threads']} thread(s), median of "
             f"{cfg['repeats']} rounds",
             f"{'model':13s} {'reuse':15s} {'rho':>6s} {'fwd':>5s} {'bwd':>5s} {'wall ms':>8s} {'÷ PGD':>6s} "
             f"{'floor':>6s} {'rob%':>6s} {'Δ pts':>6s}  target"]
    for row in result["rows"]:
        rho = "-" if row["rho"] is None else f"{row['rho']:g}"
        verdict = "-" if row["reuse"] == "none" else ("met" if row["meets_target"] else "not met")
        lines.append(f"{row['model']:13s} {row['reuse']:15s} {rho:>6s} {row['forward_share']:5.2f} "
                     f"{row['backward_share_flops']:5.2f} {1000 * row['wall_s']:8.1f} {row['ratio_to_pgd']:6.2f} "
                     f"{row['floor']:6.2f} {row['robust_acc']:6.1f} {row['acc_delta']:+6.1f}  {verdict}")
    for name, info in result["models"].items():
        lines.append(f"{name}: {info['label']}, clean accuracy {info['clean_acc']:.1f}%")
    lines.append(f"fwd = forward_share (r), bwd = backward_share_flops, floor = (1 + r)/2. Target: {TARGET}.")
    met = [r for r in result["rows"] if r["meets_target"]]
    lines.append(f"Rows meeting it: {len(met)} of {sum(r['reuse'] != 'none' for r in result['rows'])}"
                 + (": " + ", ".join(f"{r['model']}/{r['reuse']}/ρ={r['rho']:g}" for r in met) if met else "."))
    if cfg["acc_resolution_points"] > ACC_TOLERANCE:
        lines.append(f"Note: one image is {cfg['acc_resolution_points']:.1f} points on {cfg['n_eval']} images, "
                     f"so ±{ACC_TOLERANCE:g} point means equal counts here; the full run uses more images.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from snnrobust.bench import bench_cli

    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    measure_fn = functools.partial(measure, **(QUICK if quick else FULL))
    return bench_cli(argv, "python -m snnrobust.bench_spiking_pgd", __doc__, measure_fn, table, full=(1, 5))


if __name__ == "__main__":
    raise SystemExit(main())
