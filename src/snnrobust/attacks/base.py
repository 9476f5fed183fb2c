"""One attack core: every gradient attack is an ℓ∞ iterative sign-gradient loop with plug-in parts.

Attacks see a model as pixels in [0,1] → logits, in eval mode (restored afterwards). Encoding,
normalisation and the surrogate used to cross the spike are the model's business (see
``snnrobust.surrogates.use_surrogate``), so the same attack serves SNNs and ANNs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry


@dataclass
class Cost:
    """Model passes spent by an attack: forward and backward passes (per batch call)."""

    forward: int = 0
    backward: int = 0

    def add(self, other: "Cost") -> None:
        self.forward += other.forward
        self.backward += other.backward


class Attack:
    """Base class: ``attack(model, x, y)`` returns adversarial pixels; subclasses write ``perturb``."""

    name = "attack"

    def __init__(self, eps: float):
        eps = float(eps)
        if not eps >= 0.0:
            raise SnnRobustError(f"eps must be >= 0, got {eps}")
        self.eps = eps
        self.cost = Cost()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            return self.perturb(model, x.detach(), y, generator)
        finally:
            model.train(was_training)

    def perturb(self, model, x, y, generator):
        raise NotImplementedError

    def loss_gradient(self, model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇_x CE(f(x), y): one forward and one backward pass, counted."""
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
        self.cost.forward += 1
        self.cost.backward += 1
        return grad

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "cost"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


class SignGradientAttack(Attack):
    """ℓ∞ projected sign-gradient ascent: x ← Π_{B∞(x0,ε)∩[0,1]}(x + α·sign(∇x L)) for ``steps`` steps.

    FGSM, I-FGSM/BIM and PGD (Madry et al.) are settings of this one loop; subclasses only fix
    defaults or override ``start``/``step``.
    """

    def __init__(self, eps: float, steps: int = 1, alpha: float | None = None, random_start: bool = False):
        super().__init__(eps)
        if int(steps) < 1:
            raise SnnRobustError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.alpha = float(self.eps if alpha is None else alpha)
        if self.alpha < 0:
            raise SnnRobustError(f"alpha must be >= 0, got {alpha}")
        self.random_start = bool(random_start)

    def start(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
        return (x + self.eps * noise).clamp(0, 1)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        return x_adv + self.alpha * grad.sign()

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.min(torch.max(x_adv, x - self.eps), x + self.eps).clamp(0, 1)

    def perturb(self, model, x, y, generator):
        x_adv = self.start(x, generator)
        for k in range(self.steps):
            grad = self.loss_gradient(model, x_adv, y)
            x_adv = self.project(self.step(x_adv, grad, k), x).detach()
        return x_adv


ATTACKS: Registry[type[Attack]] = Registry("attack")


def make_attack(name: str, **opts: Any) -> Attack:
    """Build a registered attack; an option it does not take is a one-line error."""
    return ATTACKS.create(name, **opts)
