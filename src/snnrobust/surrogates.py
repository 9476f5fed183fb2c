"""Surrogate gradients of the spike (triangle / sigmoid / atan with width γ) and a context manager
that swaps the surrogate of every spiking neuron of a model, e.g. training vs attack time.

Every surrogate is a spikingjelly surrogate module (Heaviside forward, smooth backward), so
spikingjelly neurons and our :class:`~snnrobust.neuron.MultiStepIF` both accept it. A new
surrogate is one factory function plus one ``@SURROGATES.register`` line.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
from spikingjelly.activation_based import surrogate
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry

SURROGATES: Registry[Callable[[float], nn.Module]] = Registry("surrogate")


@SURROGATES.register("triangle")
def triangle(gamma: float) -> nn.Module:
    """SR code's ZIF: (1/γ²)·max(0, γ − |x|), which is spikingjelly's PiecewiseQuadratic(α=1/γ)."""
    return surrogate.PiecewiseQuadratic(alpha=1.0 / gamma)


@SURROGATES.register("sigmoid")
def sigmoid(gamma: float) -> nn.Module:
    """γ·σ(γx)(1 − σ(γx)) (SR code's ``Sig``)."""
    return surrogate.Sigmoid(alpha=gamma)


@SURROGATES.register("atan")
def atan(gamma: float) -> nn.Module:
    """γ/2 / (1 + (πγx/2)²) (SR code's ``Atan``)."""
    return surrogate.ATan(alpha=gamma)


def make_surrogate(name: str, gamma: float) -> nn.Module:
    """A fresh surrogate module ``name`` with width parameter ``gamma`` (> 0)."""
    factory = SURROGATES.get(name)
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise SnnRobustError(f"surrogate gamma must be a number, got {gamma!r}") from None
    if not math.isfinite(gamma) or gamma <= 0:
        raise SnnRobustError(f"surrogate gamma must be > 0, got {gamma}")
    return factory(gamma)


# Closed-form derivatives g'(x) for the hot path of MultiStepIF, keyed by surrogate type; any other
# spikingjelly surrogate falls back to autograd through its own spiking function.
def _d_piecewise_quadratic(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha - alpha * alpha * x.abs()).clamp_(min=0.0)


def _d_sigmoid(x: torch.Tensor, alpha: float) -> torch.Tensor:
    s = torch.sigmoid(alpha * x)
    return alpha * s * (1.0 - s)


def _d_atan(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / 2) / (1.0 + (math.pi / 2 * alpha * x).square())


_DERIVATIVES: dict[type, Callable[[torch.Tensor, float], torch.Tensor]] = {
    surrogate.PiecewiseQuadratic: _d_piecewise_quadratic,
    surrogate.Sigmoid: _d_sigmoid,
    surrogate.ATan: _d_atan,
}


def surrogate_derivative(fn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """g'(x) of surrogate module ``fn`` (no graph): closed form when known, autograd otherwise."""
    closed = _DERIVATIVES.get(type(fn))
    if closed is not None:
        return closed(x, fn.alpha)
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(xr).sum(), xr)
    return grad


def _holders(model: nn.Module) -> Iterator[nn.Module]:
    return (m for m in model.modules() if hasattr(m, "surrogate_function"))


@contextlib.contextmanager
def use_surrogate(model: nn.Module, name: str, gamma: float):
    """Within the block every module of ``model`` with a ``surrogate_function`` uses ``name``(γ);
    the original surrogates come back on exit, also on an exception."""
    replacement = make_surrogate(name, gamma)
    saved = [(m, m.surrogate_function) for m in _holders(model)]
    try:
        for m, _ in saved:
            m.surrogate_function = replacement
        yield model
    finally:
        for m, original in saved:
            m.surrogate_function = original
