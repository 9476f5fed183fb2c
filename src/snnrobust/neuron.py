"""The project's lean multi-step integrate-and-fire neuron and the neuron registry.

``MultiStepIF`` runs the whole sequence [T, B, ...] in one autograd Function: the forward keeps no
per-step graph, the backward is BPTT through the hard reset with the surrogate derivative. It keeps
no membrane state between calls, so it cannot leak state across inputs, and it speaks spikingjelly's
API (``surrogate_function``, ``step_mode``), so spikingjelly models and our surrogate swap use it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

import torch
from spikingjelly.activation_based import base, neuron, surrogate
from torch import nn
from torch.autograd.function import once_differentiable

from snnrobust.registry import Registry
from snnrobust.surrogates import surrogate_derivative_


class _IFSequence(torch.autograd.Function):
    """IF dynamics over T steps: h[t] = v[t-1] + x[t]; s[t] = H(h[t] − θ);
    v[t] = h[t]·(1 − s[t]) + v_reset·s[t] (hard reset); the neuron starts at rest, v[-1] = v_reset.

    Forward and backward both walk the sequence one step at a time and do all the work of a step on
    that slice while it is in cache: on this 2-core CPU that halved the neuron's backward time against
whole-sequence passes."""

    @staticmethod
    def forward(ctx, x_seq, v_threshold, v_reset, surrogate_fn, detach_reset):
        h_seq = torch.empty_like(x_seq)
        spikes = torch.empty_like(x_seq)
        v = None
        for t in range(x_seq.shape[0]):
            h = h_seq[t]
            if v is None:  # at rest before the first step
                torch.add(x_seq[t], v_reset, out=h)
            else:
                torch.add(v, x_seq[t], out=h)
            fired = h >= v_threshold
            spikes[t].copy_(fired)
            v = h.masked_fill(fired, v_reset)
        ctx.save_for_backward(h_seq)
        ctx.params = (v_threshold, v_reset, surrogate_fn, detach_reset)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes):
        (h_seq,) = ctx.saved_tensors
        v_threshold, v_reset, surrogate_fn, detach_reset = ctx.params
        grad_x = torch.empty_like(h_seq)
        grad_v = None  # ∂L/∂v[t] = ∂L/∂h[t+1]; zero after the last step
        for t in range(h_seq.shape[0] - 1, -1, -1):
            h = h_seq[t]
            psi = surrogate_derivative_(surrogate_fn, h - v_threshold)  # ∂s[t]/∂h[t]
            g = torch.mul(grad_spikes[t], psi, out=grad_x[t])
            if grad_v is not None:
                # ∂v[t]/∂h[t] = (1 − s[t]) + (v_reset − h[t])·ψ[t]; detach_reset cuts the second term.
                if detach_reset:
                    g.add_(grad_v.masked_fill(h >= v_threshold, 0.0))
                else:
                    g.addcmul_(grad_v, psi.mul_(v_reset - h).add_(h < v_threshold))
            grad_v = g
        return grad_x, None, None, None, None


class MultiStepIF(base.StepModule, nn.Module):
    """Multi-step IF neuron: [T, B, ...] currents → [T, B, ...] spikes, from rest at every call.

    Fires when v − θ ≥ 0, hard reset to ``v_reset``; ``detach_reset`` stops the gradient through
    the reset term (spikingjelly semantics). Gradients match ``neuron.IFNode(step_mode='m')``.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_function: nn.Module | None = None,
        detach_reset: bool = False,
        step_mode: str = "m",
    ):
        super().__init__()
        self.v_threshold = float(v_threshold)
        self.v_reset = float(v_reset)
        self.surrogate_function = (
            surrogate.PiecewiseQuadratic() if surrogate_function is None else surrogate_function
        )
        self.detach_reset = bool(detach_reset)
        self.step_mode = step_mode

    def supported_step_mode(self):
        return ("m",)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return _IFSequence.apply(
            x_seq, self.v_threshold, self.v_reset, self.surrogate_function, self.detach_reset
        )

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"detach_reset={self.detach_reset}, step_mode={self.step_mode}"
        )


# Neuron kinds for model builders; each is called as cls(surrogate_function=..., detach_reset=...),
# which is also how spikingjelly's models call their ``spiking_neuron``.
NEURONS: Registry[Callable[..., nn.Module]] = Registry("neuron")
NEURONS.register("lean")(MultiStepIF)
NEURONS.register("spikingjelly")(
    functools.partial(neuron.IFNode, v_threshold=1.0, v_reset=0.0, step_mode="m")
)


class NeuronSpec:
    """A neuron kind plus its keyword arguments; calling it makes a fresh neuron (own surrogate copy)."""

    def __init__(self, kind: str, **kwargs: Any):
        self.cls = NEURONS.get(kind)
        self.kind = kind
        self.kwargs = kwargs

    def __call__(self) -> nn.Module:
        return self.cls(**copy.deepcopy(self.kwargs))
