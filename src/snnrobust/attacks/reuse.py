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

Two options beyond the paper, both off by default (off, the context is the paper's bit for bit):

* ``backward_reuse``: a reused layer whose upstream gradient g changed by less than ρ (the same gate, same norms,
  same ``reference``, on g instead of a) returns its last input gradient instead of computing Aᵀg. The memo is
  filled by the virtual backward itself, so a layer's first reused backward always computes.
* ``block_reuse``: residual blocks (:func:`gated_blocks`) are gated as units, so a reused block also skips its
  BatchNorm, activation and residual add. A block computed at t ≥ 1 runs on a private copy of its input, and the
  graph of that call is kept; when the block's input changed by less than ρ it returns its cached output, and its
  backward is the vector-Jacobian product through the kept graph (the exact gradient at the cached point; with
  ``backward_reuse`` gated on g as for a layer; zero with ``virtual_grad: false``). No weight gradient is computed.
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

from snnrobust.attacks.patching import instance_forwards
from snnrobust.errors import SnnRobustError

REFERENCES = ("previous", "computed")
Reference = Literal["previous", "computed"]
Transpose = Callable[[torch.Tensor, torch.Size], torch.Tensor]
InputGradient = Callable[[torch.Tensor], torch.Tensor]


class _Reused(torch.autograd.Function):
    """Forward: a copy of the cached output ô (Sec. 4.2, case 2). Backward (Sec. 4.3, Fig. 4c): ∂L/∂a_t =
    ``input_grad(∂L/∂ô_t)`` of the *current* upstream gradient: for a layer its transpose Aᵀ (the released
    ``_ReuseWithVirtualGrad``), for a block the VJP through its kept graph; zero when ``input_grad`` is None
    (Fig. 4b, the ablation); never a weight gradient."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, cached: torch.Tensor, input_grad: InputGradient | None) -> torch.Tensor:
        ctx.input_grad, ctx.shape = input_grad, a.shape
        return cached.clone()  # a fresh tensor: what the model does to it never touches the cache

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        if ctx.input_grad is None:
            return grad.new_zeros(ctx.shape), None, None
        return ctx.input_grad(grad), None, None


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


#: Residual block classes gated as units by ``block_reuse`` ("module.QualName" of a class or one of its bases).
BLOCK_CLASSES = frozenset({
    "torchvision.models.resnet.BasicBlock", "torchvision.models.resnet.Bottleneck",
    "spikingjelly.activation_based.model.spiking_resnet.BasicBlock",
    "spikingjelly.activation_based.model.spiking_resnet.Bottleneck",
    "spikingjelly.activation_based.model.sew_resnet.BasicBlock",
    "spikingjelly.activation_based.model.sew_resnet.Bottleneck",
    "snnrobust.models.snn_wrn.PreActBlock",
})


def _is_block(module: nn.Module) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" in BLOCK_CLASSES for c in type(module).__mro__)


def gated_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The residual blocks ``block_reuse`` gates, by module path: the outermost modules of a class in
    :data:`BLOCK_CLASSES` (torchvision's and spikingjelly's BasicBlock/Bottleneck, snn_wrn's PreActBlock). A
    block holding a stateful spikingjelly module (a neuron) in single-step mode is left out: its output depends on
    state carried between calls, not on its input alone. Plain VGGs have no blocks (``block_reuse`` is then
    forward reuse)."""
    from spikingjelly.activation_based.base import MemoryModule

    blocks: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if not _is_block(m) or any(name.startswith(b + ".") for b in blocks):
            continue
        if any(isinstance(sub, MemoryModule) and sub.step_mode == "s" for sub in m.modules()):
            continue
        blocks[name] = m
    return blocks


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


@dataclass
class _GradMemo:
    """``backward_reuse``'s memo of one slot: the upstream gradient the gate compares with, and the last input
    gradient computed (detached copies)."""

    upstream: torch.Tensor
    input_grad: torch.Tensor


@dataclass
class _BlockSlot:
    """One block call's cache: the reference input, the output (detached), the private input ``point`` and
    ``graph_out`` (the output with the block's graph from ``point``, kept for the VJP), and the gated layer calls
    made inside as (path, MACs, backward MACs already counted as run at forward time)."""

    reference: torch.Tensor
    output: torch.Tensor
    point: torch.Tensor
    graph_out: torch.Tensor
    inner: list[tuple[str, int, int]]


class ActivationReuse:
    """The state of one attack call: per-layer caches, per-layer counts and the iteration number t.

    ``next_iteration()`` starts iteration t + 1 (Alg. 2 line 2): the attack calls it before each forward. A gated
    layer called outside an iteration (t = 0) just computes and is not counted. A layer called several times in
    one forward keeps one cache per call. ``requested`` / ``computed`` count forwards per layer path (a layer
    inside a reused block is requested, not computed); ``block_requested`` / ``block_computed`` count block calls
    and ``backward_reused`` the backwards (layer or block path) that returned a memo. The MACs and the backward
    work go to ``cost`` (a :class:`~snnrobust.attacks.base.Cost`) when one is given: with ``backward_reuse`` a
    reused layer's Aᵀg counts as run when its backward computes it, not when it returns the memo; a reused
    block's backward runs the backward of the gated layers inside it, counted as when the block was computed.
    """

    def __init__(self, model: nn.Module, rho: float, virtual_grad: bool = True, ungated: Sequence[str] = (),
                 reference: Reference = "previous", cost=None, backward_reuse: bool = False,
                 block_reuse: bool = False):
        rho = float(rho)
        if not rho >= 0.0:
            raise SnnRobustError(f"activation reuse rho must be >= 0, got {rho}")
        if reference not in REFERENCES:
            raise SnnRobustError(f"activation reuse reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
        for option, value in (("backward_reuse", backward_reuse), ("block_reuse", block_reuse)):
            if not isinstance(value, bool):
                raise SnnRobustError(f"activation reuse {option} must be true or false, got {value!r}")
        self.rho, self.virtual_grad, self.reference, self.cost = rho, bool(virtual_grad), reference, cost
        self.backward_reuse, self.block_reuse = backward_reuse, block_reuse
        self.layers = gated_layers(model)
        self.ungated = self._resolve(list(ungated or ()))
        self.transposes = {name: (_conv_transpose if isinstance(m, nn.Conv2d) else _linear_transpose)(m)
                           for name, m in self.layers.items()}
        # a block holding an ungated layer is never reused (that layer must compute)
        self.blocks = {name: m for name, m in gated_blocks(model).items()
                       if not any(n.startswith(name + ".") for n in self.ungated)} if block_reuse else {}
        self.requested: Counter[str] = Counter()
        self.computed: Counter[str] = Counter()
        self.block_requested: Counter[str] = Counter()
        self.block_computed: Counter[str] = Counter()
        self.backward_reused: Counter[str] = Counter()
        self.t = 0
        self._calls: Counter[str] = Counter()
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._grads: dict[tuple[str, int], _GradMemo] = {}
        self._block_slots: dict[tuple[str, int], _BlockSlot] = {}
        self._inner: list[tuple[str, int, int]] | None = None  # the layer calls of the block being computed

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
        self._grads.clear()
        self._block_slots.clear()
        self._calls.clear()
        self.t = 0

    def _changed(self, a: torch.Tensor, ref: torch.Tensor) -> bool:
        return ref.shape != a.shape or not relative_change(a, ref) < self.rho

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
            out = _Reused.apply(a, slot.output, self._virtual_backward(key, name, slot.macs, a.shape))
            if self.reference == "previous":
                slot.reference = a.detach().clone()
            macs = slot.macs
        else:
            out = compute(a)
            macs = _macs(layer, out)
            self._slots[key] = _Slot(a.detach().clone(), out.detach().clone(), macs)
            self.computed[name] += 1
        self.requested[name] += 1
        run = self._count(macs, computed=not reuse, backward=torch.is_grad_enabled() and a.requires_grad)
        if self._inner is not None:
            self._inner.append((name, macs, run))
        return out

    def _virtual_backward(self, key: tuple[str, int], name: str, macs: int, shape: torch.Size):
        """A reused layer's backward: Aᵀg (Sec. 4.3), through the ``backward_reuse`` gate when it is on; None
        (zero gradient) without ``virtual_grad``."""
        if not self.virtual_grad:
            return None
        transpose = self.transposes[name]
        if not self.backward_reuse:
            return functools.partial(transpose, shape=shape)
        return functools.partial(self._gated_backward, key, name, macs, lambda g: transpose(g, shape), False)

    def _gated_backward(self, key: tuple[str, int], name: str, macs: int, input_grad: InputGradient,
                        compute: bool, grad: torch.Tensor) -> torch.Tensor:
        """``backward_reuse``: return the memo's input gradient if ``grad`` changed by less than ρ from the memo's
        upstream gradient (which ``reference: previous`` then moves to ``grad``); else compute ``input_grad(grad)``,
        memoise it and count ``macs`` as run. ``compute`` forces the computation (a block's computed iteration)."""
        memo = self._grads.get(key)
        if not compute and memo is not None and not self._changed(grad, memo.upstream):
            if self.reference == "previous":
                memo.upstream = grad.detach().clone()
            self.backward_reused[name] += 1
            return memo.input_grad.clone()
        out = input_grad(grad)
        self._grads[key] = _GradMemo(grad.detach().clone(), out.detach().clone())
        if self.cost is not None:
            self.cost.backward_macs_run += macs
        return out

    def block_forward(self, name: str, block: nn.Module, compute: Callable, a, *args, **kwargs):
        """One call of residual block ``name`` (``block_reuse``): reuse its cached output when its input changed by
        less than ρ at t > 1, else compute it on a private copy of its input and keep that graph for the VJP."""
        if (self.t == 0 or self.rho == 0.0 or args or kwargs or not isinstance(a, torch.Tensor)
                or not (torch.is_grad_enabled() and a.requires_grad) or self._inner is not None):
            return compute(a, *args, **kwargs)
        key = (name, self._calls[name])
        self._calls[name] += 1
        self.block_requested[name] += 1
        slot = self._block_slots.get(key)
        if slot is not None and not self._changed(a.detach(), slot.reference):
            if self.reference == "previous":
                slot.reference = a.detach().clone()
            self._count_reused_block(slot)
            backward = None
            if self.virtual_grad:
                backward = self._block_backward(key, name, slot, sum(run for _, _, run in slot.inner), False)
            return _Reused.apply(a, slot.output, backward)
        point = a.detach().clone().requires_grad_(True)
        self._inner = []
        try:
            with torch.enable_grad():
                graph_out = compute(point)
            inner = self._inner
        finally:
            self._inner = None
        slot = _BlockSlot(point.detach(), graph_out.detach(), point, graph_out, inner)
        self._block_slots[key] = slot
        self.block_computed[name] += 1
        # the run MACs of this backward were counted by the layers' own forwards
        return _Reused.apply(a, slot.output, self._block_backward(key, name, slot, 0, True))

    def _block_backward(self, key: tuple[str, int], name: str, slot: _BlockSlot, macs: int, computed: bool):
        def vjp(grad: torch.Tensor) -> torch.Tensor:
            (out,) = torch.autograd.grad(slot.graph_out, slot.point, grad, retain_graph=True)
            return out

        if self.backward_reuse:
            return functools.partial(self._gated_backward, key, name, macs, vjp, computed)
        if self.cost is None or macs == 0:
            return vjp

        def counted(grad: torch.Tensor) -> torch.Tensor:
            self.cost.backward_macs_run += macs
            return vjp(grad)

        return counted

    def _count_reused_block(self, slot: _BlockSlot) -> None:
        """The gated layer calls inside a reused block: requested, not computed (their call numbers move on, so the
        slots of later calls keep their keys)."""
        backward = torch.is_grad_enabled()
        for name, macs, _ in slot.inner:
            self._calls[name] += 1
            self.requested[name] += 1
            if self.cost is not None:
                self.cost.layer_forwards += 1
                self.cost.layer_macs += macs
                if backward:
                    self.cost.backward_macs += macs

    def _count(self, macs: int, computed: bool, backward: bool) -> int:
        """Count one layer call; returns the backward MACs counted as run here (0 where the backward counts them)."""
        cost = self.cost
        if cost is None:
            return 0
        cost.layer_forwards += 1
        cost.layer_macs += macs
        if computed:
            cost.layer_forwards_computed += 1
            cost.layer_macs_computed += macs
        if backward:  # input-gradient work only: the attack never asks for weight gradients
            cost.backward_macs += macs
            if computed or (self.virtual_grad and not self.backward_reuse):
                cost.backward_macs_run += macs
                return macs
        return 0


@contextlib.contextmanager
def activation_reuse(model: nn.Module, rho: float, virtual_grad: bool = True, ungated: Sequence[str] = (),
                     reference: Reference = "previous", cost=None, backward_reuse: bool = False,
                     block_reuse: bool = False) -> Iterator[ActivationReuse]:
    """Within the block every Conv2d/Linear of ``model`` (and with ``block_reuse`` every residual block) reuses its
    output as :class:`ActivationReuse` decides; each gated module's ``forward`` is an instance attribute removed on
    exit (also on an exception), the caches are dropped, and the model is exactly as before."""
    reuse = ActivationReuse(model, rho, virtual_grad, ungated, reference, cost, backward_reuse, block_reuse)
    gated = [(reuse.forward, name, m) for name, m in reuse.layers.items()]
    gated += [(reuse.block_forward, name, m) for name, m in reuse.blocks.items()]
    try:
        with instance_forwards((m, functools.partial(gate, name, m, m.forward)) for gate, name, m in gated):
            yield reuse
    finally:
        reuse.clear()
