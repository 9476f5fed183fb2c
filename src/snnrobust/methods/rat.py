"""SNN-RAT (Ding et al., 2022): adversarial training plus, after every optimizer step, an orthogonal
retraction of the weights (a Lipschitz bound) and the projection of convex-combination residual weights
onto the probability simplex.

Weight decay is a labelled option, ``no_decay``: ``retracted`` (the default) drops it only for the retracted
weights, whose retraction already pulls them towards orthogonality (the rest keep the recipe's decay);
``all`` is SNN-RAT's released code, whose ``--special reg`` sets weight decay 0 for every parameter."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.methods.adversarial import PAPER_EPS, StepRandomness
from snnrobust.methods.at import AT
from snnrobust.methods.base import METHODS
from snnrobust.models.snn_wrn import ConvexCombination
from snnrobust.options import PositiveInt, Range, UnitInterval

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def retract(w: torch.Tensor, beta: float) -> torch.Tensor:
    """W ← (1 + β)W − β·W·Wᵀ·W on a rows × fan_in matrix: a gradient step of size β on ¼‖WᵀW − I‖²
    (‖WWᵀ − I‖² for a wide W), pulling W towards a (semi-)orthogonal matrix."""
    return (1.0 + beta) * w - beta * (w @ w.T @ w)


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of a vector onto {w ≥ 0, Σw = 1} (sort-based, Duchi et al., 2008)."""
    u, _ = torch.sort(v, descending=True)
    cumulative = u.cumsum(0) - 1.0
    k = torch.arange(1, len(v) + 1, device=v.device, dtype=v.dtype)
    rho = int((u - cumulative / k > 0).nonzero().max())
    theta = cumulative[rho] / (rho + 1)
    return (v - theta).clamp_min(0.0)


@METHODS.register("rat")
class RAT(AT):
    """AT (same inner attack and loss) with the SNN-RAT constraints after every step.

    Retracted: every conv weight (reshaped to out_channels × fan_in) and every linear weight; a linear
    layer with at least ``row_threshold`` rows has only a random ``rows_fraction`` of its rows retracted
    per step (drawn from the run's seed and the step counter). Every ``ConvexCombination``'s weights are
    projected onto the simplex. ``no_decay: retracted``: the retracted weights form a parameter group with
    weight_decay 0 and the rest keep the run's weight decay; ``no_decay: all``: every parameter has weight
    decay 0 (SNN-RAT's released reading).
    """

    name = "rat"

    def __init__(self, attack: dict | None = None, eps: Annotated[float, Range(ge=0, le=1)] = PAPER_EPS,
                 clean_weight: UnitInterval = 0.0, beta: Annotated[float, Range(ge=0)] = 5e-4,
                 rows_fraction: Annotated[float, Range(gt=0, le=1)] = 0.3, row_threshold: PositiveInt = 200,
                 no_decay: Literal["retracted", "all"] = "retracted"):
        super().__init__(attack, eps, clean_weight)
        if no_decay not in ("retracted", "all"):
            raise SnnRobustError(f"method {self.name!r}: no_decay must be 'retracted' or 'all', got {no_decay!r}")
        self.no_decay = no_decay
        self.beta, self.rows_fraction, self.row_threshold = float(beta), float(rows_fraction), int(row_threshold)
        if not self.beta >= 0:
            raise SnnRobustError(f"method {self.name!r}: beta must be >= 0, got {beta!r}")
        if not 0 < self.rows_fraction <= 1:
            raise SnnRobustError(f"method {self.name!r}: rows_fraction must be in (0, 1], got {rows_fraction!r}")
        if self.row_threshold < 1:
            raise SnnRobustError(f"method {self.name!r}: row_threshold must be >= 1, got {row_threshold!r}")
        self.rows = StepRandomness("rat-rows")

    @staticmethod
    def retracted_layers(model: nn.Module) -> list[nn.Module]:
        """The conv and linear layers whose weights are retracted (and kept out of weight decay)."""
        return [m for m in model.modules() if isinstance(m, (*_CONVS, nn.Linear))]

    def param_groups(self, model):
        if self.no_decay == "all":
            return [{"params": list(model.parameters()), "weight_decay": 0.0}]
        retracted = [m.weight for m in self.retracted_layers(model)]
        ids = {id(p) for p in retracted}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return [{"params": retracted, "weight_decay": 0.0}] + ([{"params": rest}] if rest else [])

    @torch.no_grad()
    def after_step(self, model, optimizer):
        gen = self.rows.next()  # CPU draws: the same rows on any device
        for layer in self.retracted_layers(model):
            w = layer.weight.view(layer.weight.shape[0], -1)
            if isinstance(layer, nn.Linear) and w.shape[0] >= self.row_threshold:
                rows = torch.randperm(w.shape[0], generator=gen)[:max(1, int(w.shape[0] * self.rows_fraction))]
                rows = rows.to(w.device)
                w[rows] = retract(w[rows], self.beta)
            else:
                w.copy_(retract(w, self.beta))
        for module in model.modules():
            if isinstance(module, ConvexCombination):
                module.weight.copy_(project_simplex(module.weight))

    def on_run_start(self, seed: int) -> None:
        super().on_run_start(seed)
        self.rows.seed = int(seed)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rows": self.rows.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        try:
            self.rows.load_state_dict(state["rows"])
        except (KeyError, TypeError, ValueError):
            raise SnnRobustError(f"method {self.name!r}: the checkpoint holds no row-draw state") from None
