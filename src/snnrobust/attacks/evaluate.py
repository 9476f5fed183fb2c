"""Run an attack over a fixed evaluation subset: summary accuracies, per-sample outcomes and cost."""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm.auto import tqdm


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _percent(part: torch.Tensor, whole: torch.Tensor) -> float | None:
    total = int(whole.sum())
    return 100.0 * int(part.sum()) / total if total else None


def evaluate_attack(model: nn.Module, attack, batches, seed: int = 0, progress: bool = True,
                    device: torch.device | str | None = None) -> dict:
    """Clean and adversarial accuracy (%) of ``model`` over ``batches``, with per-sample outcomes.

    ``robust_acc`` is the accuracy on the attacked inputs over all samples (the papers' convention);
    ``robust_acc_clean_correct`` the same over the clean-correct ones (None if there are none).
    ``clean_correct`` / ``adv_correct`` are 0/1 per sample in evaluation order, so an ensemble can
    count a sample broken if any member breaks it. Random starts draw from a generator seeded by
    (seed, batch index) on ``device``, so reruns give identical numbers. The attack's cost counter
    starts from zero here and includes the clean and the final adversarial forward; ``forward_share``,
    ``forward_share_flops`` and ``backward_share_flops`` are the shares of the gated layer work the attack's
    own iterations did (:meth:`~snnrobust.attacks.base.Cost.shares`; 1.0 for an attack that gates nothing).
    ``attack`` is an :class:`~snnrobust.attacks.base.Attack` or a :class:`~snnrobust.attacks.transfer.Transfer`.
    """
    device = _device_of(model) if device is None else torch.device(device)
    model.to(device).eval()
    attack.reset_cost()
    clean_flags, adv_flags = [], []
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(tqdm(batches, desc=attack.name, disable=not progress, leave=False)):
        x, y = x.to(device), y.to(device)
        gen = torch.Generator(device=device).manual_seed(seed * 100_003 + i)
        with torch.no_grad():
            clean_flags.append((model(x).argmax(1) == y).cpu())
        z_adv = attack(model, x, y, generator=gen)
        adv_flags.append((attack.predict(model, z_adv).argmax(1) == y).cpu())
        attack.cost.forward += 2
    wall = time.perf_counter() - t0
    clean = torch.cat(clean_flags) if clean_flags else torch.zeros(0, dtype=torch.bool)
    adv = torch.cat(adv_flags) if adv_flags else torch.zeros(0, dtype=torch.bool)
    n = int(clean.numel())
    return {
        "n": n,
        "clean_acc": 100.0 * int(clean.sum()) / max(n, 1),
        "robust_acc": 100.0 * int(adv.sum()) / max(n, 1),
        "robust_acc_clean_correct": _percent(clean & adv, clean),
        "wall_s": wall,
        "forward_passes": attack.cost.forward,
        "backward_passes": attack.cost.backward,
        **attack.cost.shares(),
        "clean_correct": clean.int().tolist(),
        "adv_correct": adv.int().tolist(),
    }
