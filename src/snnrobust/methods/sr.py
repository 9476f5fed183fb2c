"""Gradient sparsity regularisation (SR paper, Sec. 4.3, Algorithm 1) and SR* (SR at adversarial examples).

The term penalises ‖∇x f_y‖₁ through a finite difference along the signed input gradient (Prop. 4.4,
Eq. 13): with d = sign(∇x f_y(x)) and x̂ = x + h·d, (f_y(x̂) − f_y(x))/h ≈ ∇x f_y·d = ‖∇x f_y‖₁. Only an
input-only gradient (no double backprop) and one more forward, on x̂, are needed.

Paper vs released code are option values: ``form: paper`` is Eq. 14 / Algorithm 1 line 9,
(λ/h)·|f_y(x̂) − f_y(x)| averaged over the batch; ``form: released`` is λ·mean(((f_y(x̂) − f_y(x))/h)²).
``fy: paper`` builds f_y from the output summed over T (Eq. 8); ``fy: released`` from the time-averaged
logits (see ``analysis.gradients.FY_READINGS``). As in the released code, x̂ is not clamped to [0, 1], ỹ
(the strongest wrong class) is taken from the first pass and reused at x̂, and BatchNorm in train mode
sees the x̂ batch too.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snnrobust.analysis.gradients import FY_READINGS, fy_two_logit
from snnrobust.attacks import Cost
from snnrobust.errors import SnnRobustError
from snnrobust.methods.adversarial import PAPER_EPS, AdversarialMethod, options_repr
from snnrobust.methods.base import METHODS, Method
from snnrobust.options import PositiveFloat, Range
from snnrobust.registry import Registry

#: The batch reduction of the per-sample difference quotient q = (f_y(x̂) − f_y(x))/h.
SR_FORMS: Registry = Registry("SR form")
SR_FORMS.register("paper")(lambda q: q.abs().mean())  # Eq. 14: λ·|q| = (λ/h)|f_y(x̂) − f_y(x)|
SR_FORMS.register("released")(lambda q: q.square().mean())  # released code: λ·q²

#: App. D defaults: SR λ 0.008 and SR* λ 0.002 on CIFAR-10; h 0.01.
SR_LAM, SR_STAR_LAM, SR_H = 0.008, 0.002, 0.01


def _pair_only(logits: torch.Tensor, y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """The logits with every class but y and ``other`` set to −∞, so Eq. 9 at x̂ keeps the ỹ of x."""
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(1, y[:, None], True).scatter_(1, other[:, None], True)
    return logits.masked_fill(~keep, float("-inf"))


class GradientSparsity:
    """The SR loss CE(f(x), y) + λ·SR(x) (Eq. 14) on one batch; λ = 0 runs plain CE (no SR branch).

    ``cost`` counts passes: each forward, the input-only backward, and the loop's backward once per
    forward graph in the returned loss. ``reg_sum``/``seen`` accumulate the added term λ·SR per sample
    for the ``sr_reg`` metric.
    """

    def __init__(self, lam: float, h: float, form: str, fy: str, cost: Cost, method: str):
        self.lam, self.h = float(lam), float(h)
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise SnnRobustError(f"method {method!r}: lam must be a finite number >= 0, got {lam!r}")
        if not (math.isfinite(self.h) and self.h > 0):
            raise SnnRobustError(f"method {method!r}: h must be a finite number > 0, got {h!r}")
        self.form, self._reduce = form, SR_FORMS.get(form)
        self.fy, self._reading = fy, FY_READINGS.get(fy)
        self.cost = cost
        self.reg_sum, self.seen = 0.0, 0

    def quotient(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits at x, per-sample q = (f_y(x̂) − f_y(x))/h), both differentiable in the weights."""
        x = x.detach().requires_grad_(True)
        logits = model(x)  # Algorithm 1 line 4; this forward also gives the CE term
        z = self._reading(model, logits)
        fy = fy_two_logit(z, y)  # lines 5-6, Eq. 9
        (grad,) = torch.autograd.grad(fy.sum(), x, retain_graph=True)  # line 7: input-only, no create_graph
        other = z.detach().scatter(1, y[:, None], float("-inf")).argmax(1)
        x_hat = x.detach() + self.h * grad.sign()  # line 8, not clamped (released code)
        fy_hat = fy_two_logit(_pair_only(self._reading(model, model(x_hat)), y, other), y)
        self.cost.forward += 2
        self.cost.backward += 3  # the input gradient, then the loop's backward through both graphs
        return logits, (fy_hat - fy) / self.h

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lam == 0:
            logits = model(x)
            self.cost.forward += 1
            self.cost.backward += 1
            return F.cross_entropy(logits, y), logits
        logits, q = self.quotient(model, x, y)
        reg = self.lam * self._reduce(q)  # line 9 / Eq. 14 (or the released square)
        self.reg_sum += reg.item() * y.numel()
        self.seen += y.numel()
        return F.cross_entropy(logits, y) + reg, logits

    def reset(self) -> None:
        self.reg_sum, self.seen = 0.0, 0

    def mean_reg(self) -> float:
        """The epoch's mean added term λ·SR (0 when λ = 0: nothing is added)."""
        return self.reg_sum / self.seen if self.seen else 0.0


Lam = Annotated[float, Range(ge=0)]
Form = Literal["paper", "released"]


class _SRMetrics:
    """The ``sr_reg`` metric column, shared by SR and SR*."""

    sr: GradientSparsity

    def on_epoch_start(self, epoch, model, optimizer):
        self.sr.reset()

    def epoch_metrics(self):
        return {"sr_reg": self.sr.mean_reg()}


@METHODS.register("sr")
class SR(_SRMetrics, Method):
    """Algorithm 1: CE(f(x), y) + λ·SR(x) on clean inputs."""

    name = "sr"

    def __init__(self, lam: Lam = SR_LAM, h: PositiveFloat = SR_H, form: Form = "paper", fy: Form = "paper"):
        self.cost = Cost()
        self.sr = GradientSparsity(lam, h, form, fy, self.cost, self.name)
        self.lam, self.h, self.form, self.fy = self.sr.lam, self.sr.h, form, fy

    def loss(self, model, x, y):
        return self.sr(model, x, y)

    __repr__ = options_repr


@METHODS.register("sr_star")
class SRStar(_SRMetrics, AdversarialMethod):
    """SR*: CE(f(x_adv), y) + λ·SR(x_adv), the SR term at the inner attack's adversarial examples and no
    clean CE (the released code's reading of "PGD5 + SR")."""

    name = "sr_star"

    def __init__(self, attack: dict | None = None, eps: Annotated[float, Range(ge=0, le=1)] = PAPER_EPS,
                 lam: Lam = SR_STAR_LAM, h: PositiveFloat = SR_H, form: Form = "paper", fy: Form = "paper"):
        super().__init__(attack, eps)
        self.sr = GradientSparsity(lam, h, form, fy, self.cost, self.name)
        self.lam, self.h, self.form, self.fy = self.sr.lam, self.sr.h, form, fy

    def loss(self, model, x, y):
        return self.sr(model, self.inner(model, x, y), y)
