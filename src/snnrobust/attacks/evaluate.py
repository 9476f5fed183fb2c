"""Run an attack over a fixed evaluation subset and return one tidy result row with its cost."""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm.auto import tqdm

from snnrobust.attacks.base import Attack


def evaluate_attack(model: nn.Module, attack: Attack, batches, seed: int = 0, progress: bool = True) -> dict:
    """Clean and adversarial accuracy (%) of ``model`` over ``batches``.

    Robust accuracy is the accuracy on the attacked inputs over all samples (the papers'
    convention). Random starts draw from a generator seeded by (seed, batch index), so reruns
    give identical numbers. Cost counts include the clean and the final adversarial forward.
    """
    model.eval()
    n = clean_correct = robust_correct = 0
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(tqdm(batches, desc=attack.name, disable=not progress, leave=False)):
        gen = torch.Generator().manual_seed(seed * 100_003 + i)
        with torch.no_grad():
            clean_correct += (model(x).argmax(1) == y).sum().item()
        x_adv = attack(model, x, y, generator=gen)
        with torch.no_grad():
            robust_correct += (model(x_adv).argmax(1) == y).sum().item()
        attack.cost.forward += 2
        n += y.numel()
    wall = time.perf_counter() - t0
    return {
        "n": n,
        "clean_acc": 100.0 * clean_correct / max(n, 1),
        "robust_acc": 100.0 * robust_correct / max(n, 1),
        "wall_s": wall,
        "forward_passes": attack.cost.forward,
        "backward_passes": attack.cost.backward,
    }
