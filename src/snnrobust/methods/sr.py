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

Cost: the graph of x is backpropagated twice, once for the input gradient and once by the training
loop. Its lean IF neurons (``MultiStepIF``) therefore run with :class:`_IFSequenceReused`, whose first
backward keeps the surrogate derivatives ψ[t] and reset factors ∂v[t]/∂h[t] that the second one needs
(the same arithmetic, so bit-identical gradients). The x and x̂ forwards stay two batches of B: x̂ needs
the gradient of the first, and BatchNorm in train mode normalises each batch by its own statistics.
"""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from snnrobust.analysis.gradients import FY_READINGS, fy_two_logit
from snnrobust.attacks import Cost
from snnrobust.errors import SnnRobustError
from snnrobust.methods.adversarial import PAPER_EPS, AdversarialMethod, options_repr
from snnrobust.methods.base import METHODS, Method
from snnrobust.neuron import MultiStepIF, _IFSequence
from snnrobust.options import PositiveFloat, Range
from snnrobust.registry import Registry
from snnrobust.surrogates import surrogate_derivative_

#: The batch reduction of the per-sample difference quotient q = (f_y(x̂) − f_y(x))/h.
SR_FORMS: Registry = Registry("SR form")
SR_FORMS.register("paper")(lambda q: q.abs().mean())  # Eq. 14: λ·|q| = (λ/h)|f_y(x̂) − f_y(x)|
SR_FORMS.register("released")(lambda q: q.square().mean())  # released code: λ·q²

#: App. D defaults: SR λ 0.008 and SR* λ 0.002 on CIFAR-10; h 0.01.
SR_LAM, SR_STAR_LAM, SR_H = 0.008, 0.002, 0.01


class _IFSequenceReused(_IFSequence):
    """``MultiStepIF``'s IF sequence for a graph that is backpropagated twice (SR's graph of x).

    The forward is ``_IFSequence``'s. The first backward is ``_IFSequence.backward`` step for step, and it
    keeps per step the surrogate derivative ψ[t] and the reset factor of ∂v[t]/∂h[t] ((1 − s[t]) +
    (v_reset − h[t])·ψ[t], or the spike mask under ``detach_reset``). The second backward only multiplies
    and adds with them, then drops them; a third would recompute. Same operations on the same values,
    so the gradients are bit-identical to ``_IFSequence``'s. Costs two h-sized tensors per neuron until
    the second backward.
    """

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes):
        v_threshold, v_reset, surrogate_fn, detach_reset = ctx.params
        kept = getattr(ctx, "kept", None)
        grad_x = torch.empty_like(grad_spikes)
        grad_v = None
        if kept is not None:  # the second backward
            ctx.kept = None
            psis, factors = kept
            for t in range(grad_spikes.shape[0] - 1, -1, -1):
                g = torch.mul(grad_spikes[t], psis[t], out=grad_x[t])
                if grad_v is not None:
                    if detach_reset:
                        g.add_(grad_v.masked_fill(factors[t], 0.0))
                    else:
                        g.addcmul_(grad_v, factors[t])
                grad_v = g
            return grad_x, None, None, None, None
        (h_seq,) = ctx.saved_tensors
        steps = h_seq.shape[0]
        psis, factors = [None] * steps, [None] * steps
        for t in range(steps - 1, -1, -1):
            h = h_seq[t]
            psi = psis[t] = surrogate_derivative_(surrogate_fn, h - v_threshold)  # ∂s[t]/∂h[t]
            g = torch.mul(grad_spikes[t], psi, out=grad_x[t])
            if grad_v is not None:
                if detach_reset:
                    fired = factors[t] = h >= v_threshold
                    g.add_(grad_v.masked_fill(fired, 0.0))
                else:
                    factor = factors[t] = (v_reset - h).mul_(psi).add_(h < v_threshold)  # ψ kept unchanged
                    g.addcmul_(grad_v, factor)
            grad_v = g
        if not getattr(ctx, "backwards", 0):
            ctx.kept = (psis, factors)
        ctx.backwards = getattr(ctx, "backwards", 0) + 1
        return grad_x, None, None, None, None


def _forward_reused(neuron: MultiStepIF, x_seq: torch.Tensor) -> torch.Tensor:
    return _IFSequenceReused.apply(x_seq, neuron.v_threshold, neuron.v_reset, neuron.surrogate_function,
                                   neuron.detach_reset)


@contextlib.contextmanager
def reused_neuron_backward(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every lean IF neuron of ``model`` (a ``MultiStepIF`` whose forward is the class's)
    builds :class:`_IFSequenceReused` nodes; other neurons and modules are untouched. The neurons'
    own forwards come back on exit, also on an exception."""
    neurons = [m for m in model.modules() if isinstance(m, MultiStepIF) and type(m).forward is MultiStepIF.forward
               and "forward" not in vars(m)]
    try:
        for m in neurons:
            m.forward = _forward_reused.__get__(m)
        yield model
    finally:
        for m in neurons:
            vars(m).pop("forward", None)


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

    def quotient(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 reuse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits at x, per-sample q = (f_y(x̂) − f_y(x))/h), both differentiable in the weights.

        ``reuse`` builds x's graph with :func:`reused_neuron_backward` (the loop's backward then reuses the
        neuron terms of the input gradient's); ``False`` builds it plainly, with the same numbers."""
        x = x.detach().requires_grad_(True)
        with reused_neuron_backward(model) if reuse else contextlib.nullcontext():
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
