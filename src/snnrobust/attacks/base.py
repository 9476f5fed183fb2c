"""One attack core: every gradient attack is an ℓ∞ iterative sign-gradient loop with plug-in parts.

The parts every attack shares are options of the base class: the ``loss`` it maximises (``LOSSES``),
how its gradient crosses the spike (``gradient``, a ``GRADIENT_RULES`` spec, applied as one context
around the attack), the ``space`` it perturbs (``pixel`` or ``spike``) and the model ``mode`` while
it differentiates (``eval`` or ``train``). The model itself is never edited: surrogates, mode and
BatchNorm statistics are as before when the attack returns. A subclass writes only ``__init__``
(its own options, passing ``**common`` on) and, if it needs to, ``start``/``step``/``perturb``.

(No ``from __future__ import annotations`` here: option annotations must be objects, because the
typed-option checker reads them from the signatures.)
"""

import functools
import inspect
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, Literal

import torch
from torch import nn

from snnrobust.attacks.gradient_rules import make_gradient_rule
from snnrobust.attacks.losses import LOSSES
from snnrobust.attacks.modes import MODES, attack_mode
from snnrobust.attacks.spaces import SPACES
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range
from snnrobust.registry import Registry


@dataclass
class Cost:
    """Model passes spent by an attack: forward and backward passes (per batch call), and, where an
    attack gates its layers (Spiking-PGD's activation reuse), the layer work requested and done.

    Layer work counts the gated Conv2d/Linear layers only: forwards (calls), their MACs, and the
    MACs of their backward. A layer's backward work is its input gradient Aᵀg, as many MACs as its
    forward: an attack differentiates the input only, so no weight gradient is ever computed, and a
    reused layer's virtual Aᵀg counts as a full layer backward (``virtual_grad: false`` skips it, and so does
    ``backward_reuse`` where it returns the last input gradient).
    """

    forward: int = 0
    backward: int = 0
    layer_forwards: float = 0
    layer_forwards_computed: float = 0
    layer_macs: float = 0
    layer_macs_computed: float = 0
    backward_macs: float = 0
    backward_macs_run: float = 0

    def add(self, other: "Cost", share: float = 1.0) -> None:
        """Add ``other``'s counts, weighted by ``share`` (an ensemble member run on part of a batch)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name) * share)

    def shares(self) -> dict[str, float]:
        """Share of the requested layer work done: ``forward_share`` (layer forwards computed / requested,
        unweighted: the released code's "precision"), ``forward_share_flops`` (weighted by MACs) and
        ``backward_share_flops``; 1.0 where nothing was gated (every layer computed, as in PGD)."""
        def share(done: float, asked: float) -> float:
            return float(done) / float(asked) if asked else 1.0

        return {"forward_share": share(self.layer_forwards_computed, self.layer_forwards),
                "forward_share_flops": share(self.layer_macs_computed, self.layer_macs),
                "backward_share_flops": share(self.backward_macs_run, self.backward_macs)}


@dataclass
class AttackView:
    """What an attack sees of a model: a differentiable map from its input space to logits, and the
    box [lo, hi] (tensors broadcastable to a point) every point must stay in."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    lo: torch.Tensor
    hi: torch.Tensor

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward(z)


class Attack:
    """Base class: ``attack(model, x, y)`` returns the adversarial point in the attack's space
    (pixels, or the encoded sequence for ``space: spike``); ``predict(model, point)`` scores one."""

    name = "attack"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        loss: str = "ce",
        gradient: dict | None = None,
        space: Literal["pixel", "spike"] = "pixel",
        mode: Literal["eval", "train"] = "eval",
    ):
        eps = float(eps)
        if not eps >= 0.0:
            raise SnnRobustError(f"eps must be >= 0, got {eps}")
        self.eps = eps
        self.loss, self._loss_fn = loss, LOSSES.get(loss)
        self.gradient, self._rule = gradient, make_gradient_rule(gradient)
        self.space, self._space = space, SPACES.get(space)
        self.mode = mode
        MODES.get(mode)
        self.cost = Cost()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            _declare_common_options(cls.__dict__["__init__"])

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        space = self._space
        space.check(model)
        with attack_mode(model, self.mode), self._rule.applied(model):
            z = space.start(model, x)
            view = AttackView(functools.partial(space.forward, model), *space.bounds(model, z))
            return self.perturb(view, z, y, generator).detach()

    def perturb(self, view: AttackView, z: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, model: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """Logits of ``model`` at a point of the attack's space (no graph)."""
        with torch.no_grad():
            return self._space.forward(model, z)

    def loss_gradient(self, view: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                      y: torch.Tensor) -> torch.Tensor:
        """∇_z Σ_i loss(f(z)_i, y_i): one forward and one backward pass, counted."""
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = self._loss_fn(view(z), y).sum()
            (grad,) = torch.autograd.grad(loss, z)
        self.cost.forward += 1
        self.cost.backward += 1
        return grad

    def reset_cost(self) -> None:
        self.cost = Cost()

    def columns(self) -> dict[str, Any]:
        """Result columns for the shared options: loss, space, mode and the gradient rule's columns."""
        return {"loss": self.loss, "space": self.space, "mode": self.mode, **self._rule.columns()}

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "cost" and not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


_COMMON = list(inspect.signature(Attack.__init__).parameters.values())[2:]  # after self, eps


def _declare_common_options(init: Callable) -> None:
    """A subclass ``__init__(…, **common)`` passes the shared options on to ``Attack``: declare them
    in its signature and annotations, so registries and the option checker see every option by name."""
    sig = inspect.signature(init)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(own) == len(sig.parameters):
        return
    names = {p.name for p in own}
    common = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in _COMMON if p.name not in names]
    init.__signature__ = sig.replace(parameters=own + common)
    init.__annotations__ = {**{p.name: p.annotation for p in common}, **init.__annotations__}


class SignGradientAttack(Attack):
    """ℓ∞ projected sign-gradient ascent: z ← Π_{B∞(z0,ε)∩[lo,hi]}(z + α·sign(∇z L)) for ``steps`` steps.

    FGSM, I-FGSM/BIM and PGD (Madry et al.) are settings of this one loop; subclasses only fix
    defaults or override ``start``/``step``.
    """

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        steps: Annotated[int, Range(ge=1)] = 1,
        alpha: Annotated[float, Range(ge=0)] | None = None,
        random_start: bool = False,
        **common,
    ):
        super().__init__(eps, **common)
        if int(steps) < 1:
            raise SnnRobustError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.alpha = float(self.eps if alpha is None else alpha)
        if self.alpha < 0:
            raise SnnRobustError(f"alpha must be >= 0, got {alpha}")
        self.random_start = bool(random_start)

    def start(self, view: AttackView, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not self.random_start:
            return z.clone()
        noise = torch.rand(z.shape, generator=generator, dtype=z.dtype, device=z.device) * 2 - 1
        return torch.clamp(z + self.eps * noise, view.lo, view.hi)

    def step(self, z_adv: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        return z_adv + self.alpha * grad.sign()

    def project(self, view: AttackView, z_adv: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.clamp(z_adv, z - self.eps, z + self.eps), view.lo, view.hi)

    def perturb(self, view, z, y, generator):
        z_adv = self.start(view, z, generator)
        for k in range(self.steps):
            grad = self.loss_gradient(view, z_adv, y)
            z_adv = self.project(view, self.step(z_adv, grad, k), z).detach()
        return z_adv


ATTACKS: Registry[type[Attack]] = Registry("attack")


def make_attack(name: str, **opts: Any) -> Attack:
    """Build a registered attack; an option it does not take is a one-line error."""
    return ATTACKS.create(name, **opts)


def check_attack_options(name: str, options: dict) -> None:
    """Validate an attack's options, nested values included (loss name, gradient rule and its
    options, space, mode), by building the attack once; a bad value is a one-line error."""
    if not isinstance(options, dict):
        raise SnnRobustError(f"options of attack {name!r} must be a mapping, got {options!r}")
    make_attack(name, **{"eps": 0.0, **options})
