"""Attack losses: logits [B, K] and labels [B] → a per-sample loss [B] that the attack maximises.

A new loss is one function plus one ``@LOSSES.register`` line; an attack picks it with ``loss:``.
"""

from typing import Callable

import torch
import torch.nn.functional as F

from snnrobust.analysis.gradients import fy_two_logit
from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry

LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("loss")


def _true_and_best_other(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_y, max_{i≠y} z_i) per sample."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    return z_y, logits.scatter(1, y[:, None], float("-inf")).max(1).values


@LOSSES.register("ce")
def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy −log softmax(z)_y (the papers' default)."""
    return F.cross_entropy(logits, y, reduction="none")


@LOSSES.register("dlr")
def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020, Eq. 5): −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3),
    invariant to shifting and scaling the logits; needs at least 3 classes."""
    if logits.shape[1] < 3:
        raise SnnRobustError(f"loss 'dlr' needs at least 3 classes, the model has {logits.shape[1]}")
    top = logits.topk(3, dim=1).values
    z_y, z_other = _true_and_best_other(logits, y)
    return -(z_y - z_other) / (top[:, 0] - top[:, 2] + 1e-12)


@LOSSES.register("fy_margin")
def fy_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−f_y with the SR paper's two-logit f_y = σ(z_y − z_ỹ) (Eq. 9): lowering the true class's
    probability against its strongest rival (with a σ' that does not vanish for confident samples)."""
    return -fy_two_logit(logits, y)
