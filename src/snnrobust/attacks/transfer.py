"""Black-box transfer: adversarial examples are made by an attack on a *source* model and scored on
the *target* model that the evaluation runs (``threat: black-box``)."""

from typing import Any

import torch
from torch import nn

from snnrobust.attacks.base import Attack
from snnrobust.errors import SnnRobustError


class Transfer:
    """``attack`` run on ``source``; quacks like an :class:`Attack` for ``evaluate_attack``, whose
    model is the target. The attack's gradient rule and mode apply to the source, which it
    differentiates; the cost counted is the source's (plus, for an ensemble, its checks on the target).

    An attack that checks success as it goes (the ensemble's cascade, ``attack_judged``) is told the
    target to check on: its members attack the source, and a sample leaves the cascade once the
    *target* misclassifies it. Where the ensemble's rules apply (source, the paper; or the target,
    the SR code's quirk) is the ensemble's ``reading`` option, a column of its rows.
    """

    def __init__(self, attack: Attack, source: nn.Module):
        self.attack, self.source = attack, source
        self.name = attack.name

    @property
    def cost(self):
        return self.attack.cost

    def reset_cost(self) -> None:
        self.attack.reset_cost()

    def __call__(self, target: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        self.attack._space.check(target)
        if self.attack.space == "spike" and getattr(self.source, "T", 1) != getattr(target, "T", 1):
            raise SnnRobustError(
                f"spike-space transfer needs the same T on source and target, got {self.source.T} and {target.T}"
            )
        judged = getattr(self.attack, "attack_judged", None)
        if judged is not None:
            return judged(self.source, target, x, y, generator)
        return self.attack(self.source, x, y, generator)

    def predict(self, target: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return self.attack.predict(target, z)

    def columns(self) -> dict[str, Any]:
        return self.attack.columns()

    def __repr__(self) -> str:
        return f"Transfer({self.attack!r}, source={type(self.source).__name__})"
