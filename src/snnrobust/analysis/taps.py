"""Operations of a model and the gradient w.r.t. each operation's input, captured by hooks in one backward pass.

The trail paper (Sec. 4.3.1, Figs. 3/5) reports, per operation of SEW-ResNet (conv, BN, max/avg pooling, IF neuron,
residual add), the fraction of exact zeros and the norm of the gradient w.r.t. the operation's input. A forward
pre-hook on each operation replaces every tensor input by an alias and registers a tensor hook on it, so what the
hook sees is the operation's own input gradient (its vector-Jacobian product), not the total gradient of a tensor
that also feeds other operations (a block input feeds both the first conv and the shortcut). The alias is a view,
or a copy for an ``inplace`` module (a hook on a view modified in place never fires). Hooks see the multi-step
modules (spiking neurons included, the project's lean IF and spikingjelly's alike) at their boundary: their
input is [T, B, ...], sample dimension 1; an ANN's is [B, ...].

The first weight layer (conv or linear, in call order) also keeps its input and gets a hook on its output, so
its per-sample weight gradient can be formed afterwards (``weight_grads``, Theorem 4.4).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

#: Operation kinds in the paper's vocabulary; ``input`` is the model's input (not a module).
OpKind = Literal["input", "conv", "bn", "pool", "neuron", "add", "linear"]
#: Kinds whose modules carry the weight of Theorem 4.4's first layer w₁.
WEIGHT_KINDS = ("conv", "linear")


@functools.cache
def module_kinds() -> dict[str, tuple[type, ...]]:
    """Op kind → the module classes that are that operation (imports deferred: analysis imports stay light).
    ``neuron`` counts an ANN twin's ReLU too; ``add`` is SEW's residual :class:`Add` and the WRN's convex
    combination."""
    from spikingjelly.activation_based import neuron as sj_neuron
    from torch.nn.modules import batchnorm, conv, pooling

    from snnrobust.models.sew_connect import Add
    from snnrobust.models.snn_wrn import ConvexCombination
    from snnrobust.neuron import MultiStepIF

    return {
        "conv": (conv._ConvNd,),
        "bn": (batchnorm._BatchNorm,),
        "pool": (pooling._MaxPoolNd, pooling._AvgPoolNd, pooling._AdaptiveAvgPoolNd, pooling._AdaptiveMaxPoolNd),
        "neuron": (sj_neuron.BaseNode, sj_neuron.SimpleBaseNode, MultiStepIF, nn.ReLU),
        "add": (Add, ConvexCombination),
        "linear": (nn.Linear,),
    }


def op_kind(module: nn.Module) -> str | None:
    """The operation kind of ``module`` (None: not an operation, e.g. a container, flatten or identity)."""
    return next((kind for kind, types in module_kinds().items() if isinstance(module, types)), None)


def multi_step_modules(model: nn.Module) -> set[int]:
    """ids of the modules whose inputs are [T, B, ...]: those of a spiking model's multi-step backbone."""
    backbone = getattr(model, "backbone", None)
    if not getattr(model, "spiking", False) or backbone is None:
        return set()
    return {id(m) for m in backbone.modules()}


@dataclass
class Tap:
    """One tensor input of one operation call: where it sits (``index`` in call order, module path ``op``, ``call``
    of that module, input ``branch``) and, after the backward pass, its gradient (None: none reached it)."""

    index: int
    op: str
    op_kind: str
    op_type: str
    call: int
    branch: int
    sample_dim: int
    like: torch.Tensor  # shape, dtype and device of the input (on the meta device: no memory)
    grad: torch.Tensor | None = None

    def record(self, grad: torch.Tensor) -> None:
        self.grad = grad.detach()

    def gradient(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The gradient; exact zeros where the input lies on no path to the objective (no hook fired)."""
        return self.grad if self.grad is not None else torch.zeros_like(self.like, device=device)


@dataclass
class FirstLayer:
    """The first weight layer called (Theorem 4.4's w₁): its module, its input and, after the backward pass, the
    gradient w.r.t. its output (None: none reached it)."""

    index: int
    op: str
    op_kind: str
    op_type: str
    sample_dim: int
    module: nn.Module
    inputs: torch.Tensor
    grad_out: torch.Tensor | None = None
    hooked: bool = False

    def record(self, grad: torch.Tensor) -> None:
        self.grad_out = grad.detach()


class OpTaps:
    """Context manager: while active, every call of an operation of ``model`` gets an index in call order, the
    inputs of operations of the ``kinds`` given become :class:`Tap` s in ``taps``, and (``weight``) the first
    conv/linear called becomes ``first``. Hooks are removed on exit; the model is not changed."""

    def __init__(self, model: nn.Module, kinds: set[str], weight: bool = False, first_index: int = 0):
        self.model, self.kinds, self.weight = model, set(kinds), weight
        self.taps: list[Tap] = []
        self.first: FirstLayer | None = None
        self._next = first_index
        self._calls: dict[str, int] = {}
        self._handles: list = []

    def __enter__(self) -> OpTaps:
        multi = multi_step_modules(self.model)
        for name, module in self.model.named_modules():
            kind = op_kind(module)
            if kind is None:
                continue
            where = (name, kind, 1 if id(module) in multi else 0)
            self._handles.append(module.register_forward_pre_hook(functools.partial(self._before, where)))
            if self.weight and kind in WEIGHT_KINDS:
                self._handles.append(module.register_forward_hook(self._after))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _before(self, where: tuple, module: nn.Module, args: tuple):
        name, kind, sample_dim = where
        index, call = self._next, self._calls.get(name, 0)
        self._next, self._calls[name] = index + 1, call + 1
        label = (index, name, kind, type(module).__name__)
        if self.weight and self.first is None and kind in WEIGHT_KINDS:
            self.first = FirstLayer(*label, sample_dim, module, args[0].detach())
        if kind not in self.kinds:
            return None
        new, branch = list(args), 0
        for i, arg in enumerate(args):
            if not isinstance(arg, torch.Tensor):
                continue
            if arg.requires_grad:
                tap = Tap(*label, call, branch, sample_dim, torch.empty_like(arg, device="meta"))
                new[i] = arg.clone() if getattr(module, "inplace", False) else arg.view_as(arg)
                new[i].register_hook(tap.record)
                self.taps.append(tap)
            branch += 1
        return tuple(new)

    def _after(self, module: nn.Module, args: tuple, output) -> None:
        first = self.first
        if first is not None and first.module is module and not first.hooked:
            first.hooked = True
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(first.record)
