"""Activation reuse (Spiking-PGD, Hou et al., ICLR 2026, Sec. 4.2-4.3): across the iterations of an attack a
Conv2d/Linear layer whose input barely changed returns its cached output instead of recomputing it, and passes a
virtual surrogate gradient Aᵀ(∂L/∂ô) back to its input.

Set up like a gradient rule: :func:`activation_reuse` wraps each layer's ``forward`` by an instance attribute that
is removed on exit, so the model is never edited (no BatchNorm folding: ρ = 0 is the plain model bit for bit). The
caches live on the context, not on the neurons, so they survive the ``reset_net`` every SNN forward starts with;
one context serves one attack call (one batch), so a new batch starts from empty caches.

The gate (Eq. 3, Alg. 2 line 4): at iteration t > 1 a layer reuses iff ‖a_t − a_ref‖₂/‖a_t‖₂ < ρ, norms over the
whole batch tensor (one decision per layer per iteration), where a_t is the layer's *input*. ``reference:
previous`` (the default) takes a_ref = a_{t−1}, the input of the previous iteration even if that iteration reused:
Eq. 3 and the released code (``spiking/spiking_layer.py``) agree on it. ``reference: computed`` takes the input
the cached output was computed from, which bounds how far a reused output can drift (a reading of ours).
Iteration 1 always computes; 0/0 counts as no change (reuse) and x/0 as a change (compute), where the released
code reuses whenever ‖a_t‖ < 1e-10.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from snnrobust.errors import SnnRobustError

REFERENCES = ("previous", "computed")
Reference = Literal["previous", "computed"]
Transpose = Callable[[torch.Tensor, torch.Size], torch.Tensor]


class _Reused(torch.autograd.Function):
    """Forward: a copy of the cached output ô (Sec. 4.2, case 2). Backward (Sec. 4.3, Fig. 4c): ∂L/∂a_t =
    Aᵀ(∂L/∂ô_t), the layer's transpose applied to the *current* upstream gradient (the released
    ``_ReuseWithVirtualGrad``), or zero when ``transpose`` is None (Fig. 4b, the ablation); never a weight
    gradient."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, cached: torch.Tensor, transpose: Transpose | None) -> torch.Tensor:
        ctx.transpose, ctx.shape = transpose, a.shape
        return cached.clone()  # a fresh tensor: what the model does to it never touches the cache

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        if ctx.transpose is None:
            return grad.new_zeros(ctx.shape), None, None
        return ctx.transpose(grad, ctx.shape), None, None


def _conv_transpose(conv: nn.Conv2d) -> Transpose:
    """Aᵀg of a zero-padded Conv2d (``torch.nn.grad.conv2d_input``); leading dims ([T, B] of a multi-step
    layer) are folded into the batch as the layer's own forward folds them."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) and conv.padding != "valid":
        raise SnnRobustError(f"activation reuse needs zero-padded convs with numeric padding, got padding="
                             f"{conv.padding!r}, padding_mode={conv.padding_mode!r}")
    padding = 0 if isinstance(conv.padding, str) else conv.padding

    def transpose(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        flat = grad.reshape(-1, *grad.shape[-3:])
        out = torch.nn.grad.conv2d_input((flat.shape[0], *shape[-3:]), conv.weight.detach(), flat,
                                         conv.stride, padding, conv.dilation, conv.groups)
        return out.reshape(shape)

    return transpose


def _linear_transpose(linear: nn.Linear) -> Transpose:
    """Aᵀg of a Linear layer: g·W (the bias does not enter the transpose)."""
    return lambda grad, shape: (grad @ linear.weight.detach()).reshape(shape)


def gated_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers activation reuse gates, by module path: every Conv2d and Linear (spikingjelly's included)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def _macs(layer: nn.Module, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call: each output element sums (C_in/groups)·kH·kW (conv) or C_in (linear) products."""
    return out.numel() * layer.weight[0].numel()


def relative_change(a: torch.Tensor, ref: torch.Tensor) -> float:
    """‖a − ref‖₂/‖a‖₂ over the whole tensor (Eq. 3); 0 when both norms are 0, inf when only ‖a‖ is."""
    diff, norm = torch.stack([torch.linalg.vector_norm(a - ref), torch.linalg.vector_norm(a)]).tolist()
    if norm == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / norm


@dataclass
class _Slot:
    """One layer call's cache: the reference input a_ref, the last computed output ô (both detached copies)
    and that call's MACs."""

    reference: torch.Tensor
    output: torch.Tensor
    macs: int


class ActivationReuse:
    """The state of one attack call: per-layer caches, per-layer counts and the iteration number t.

    ``next_iteration()`` starts iteration t + 1 (Alg. 2 line 2): the attack calls it before each forward. A gated
    layer called outside an iteration (t = 0) just computes and is not counted. A layer called several times in
    one forward keeps one cache per call. ``requested`` / ``computed`` count forwards per layer path; the MACs
    and the backward work go to ``cost`` (a :class:`~snnrobust.attacks.base.Cost`) when one is given.
    """

    def __init__(self, model: nn.Module, rho: float, virtual_grad: bool = True, ungated: Sequence[str] = (),
                 reference: Reference = "previous", cost=None):
        rho = float(rho)
        if not rho >= 0.0:
            raise SnnRobustError(f"activation reuse rho must be >= 0, got {rho}")
        if reference not in REFERENCES:
            raise SnnRobustError(f"activation reuse reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
        self.rho, self.virtual_grad, self.reference, self.cost = rho, bool(virtual_grad), reference, cost
        self.layers = gated_layers(model)
        self.ungated = self._resolve(list(ungated or ()))
        self.transposes = {name: (_conv_transpose if isinstance(m, nn.Conv2d) else _linear_transpose)(m)
                           for name, m in self.layers.items()}
        self.requested: Counter[str] = Counter()
        self.computed: Counter[str] = Counter()
        self.t = 0
        self._calls: Counter[str] = Counter()
        self._slots: dict[tuple[str, int], _Slot] = {}

    def _resolve(self, paths: list[str]) -> frozenset[str]:
        """Gated layers at or under each path in ``paths``; a path naming no gated layer is a one-line error."""
        out = set()
        for path in paths:
            hit = {n for n in self.layers if n == path or n.startswith(path + ".")} if path else set(self.layers)
            if not hit:
                raise SnnRobustError(f"ungated layer {path!r} is not a Conv2d/Linear layer (or a module holding one) "
                                     f"of the model; its layers: {', '.join(self.layers) or 'none'}")
            out |= hit
        return frozenset(out)

    def next_iteration(self) -> None:
        self.t += 1
        self._calls.clear()

    def clear(self) -> None:
        """Drop the caches (a new batch starts from iteration 1)."""
        self._slots.clear()
        self._calls.clear()
        self.t = 0

    def forward(self, name: str, layer: nn.Module, compute: Callable, a: torch.Tensor) -> torch.Tensor:
        """One call of layer ``name`` on input ``a``: Alg. 2 line 4 forward, line 7 backward (via :class:`_Reused`)."""
        if self.t == 0:
            return compute(a)
        key = (name, self._calls[name])
        self._calls[name] += 1
        slot = self._slots.get(key)
        reuse = (slot is not None and self.rho > 0.0 and name not in self.ungated
                 and slot.reference.shape == a.shape
                 and relative_change(a.detach(), slot.reference) < self.rho)
        if reuse:
            out = _Reused.apply(a, slot.output, self.transposes[name] if self.virtual_grad else None)
            if self.reference == "previous":
                slot.reference = a.detach().clone()
            macs = slot.macs
        else:
            out = compute(a)
            macs = _macs(layer, out)
            self._slots[key] = _Slot(a.detach().clone(), out.detach().clone(), macs)
            self.computed[name] += 1
        self.requested[name] += 1
        self._count(macs, computed=not reuse, backward=torch.is_grad_enabled() and a.requires_grad)
        return out

    def _count(self, macs: int, computed: bool, backward: bool) -> None:
        cost = self.cost
        if cost is None:
            return
        cost.layer_forwards += 1
        cost.layer_macs += macs
        if computed:
            cost.layer_forwards_computed += 1
            cost.layer_macs_computed += macs
        if backward:  # input-gradient work only: the attack never asks for weight gradients
            cost.backward_macs += macs
            if computed or self.virtual_grad:
                cost.backward_macs_run += macs


_NO_OWN_FORWARD = object()


@contextlib.contextmanager
def activation_reuse(model: nn.Module, rho: float, virtual_grad: bool = True, ungated: Sequence[str] = (),
                     reference: Reference = "previous", cost=None) -> Iterator[ActivationReuse]:
    """Within the block every Conv2d/Linear of ``model`` reuses its output as :class:`ActivationReuse` decides;
    each layer's ``forward`` is an instance attribute removed on exit (also on an exception), the caches are
    dropped, and the model is exactly as before."""
    reuse = ActivationReuse(model, rho, virtual_grad, ungated, reference, cost)
    saved = [(name, m, m.__dict__.get("forward", _NO_OWN_FORWARD)) for name, m in reuse.layers.items()]
    try:
        for name, m, _ in saved:
            m.forward = functools.partial(reuse.forward, name, m, m.forward)
        yield reuse
    finally:
        for _, m, own in saved:
            if own is _NO_OWN_FORWARD:
                m.__dict__.pop("forward", None)
            else:
                m.forward = own
        reuse.clear()
