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
# spikingjelly surrogate falls back to autograd through its own spiking function. They work in place
# on a scratch tensor (fewer passes over memory, no allocation): callers pass one they own.
def _d_piecewise_quadratic_(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x.abs_().mul_(-alpha * alpha).add_(alpha).clamp_(min=0.0)  # max(0, α − α²|x|)


def _d_sigmoid_(x: torch.Tensor, alpha: float) -> torch.Tensor:
    s = x.mul_(alpha).sigmoid_()
    return s.sub_(s.square()).mul_(alpha)  # α·σ(αx)(1 − σ(αx))


def _d_atan_(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x.mul_(math.pi / 2 * alpha).square_().add_(1.0).reciprocal_().mul_(alpha / 2)


_DERIVATIVES: dict[type, Callable[[torch.Tensor, float], torch.Tensor]] = {
    surrogate.PiecewiseQuadratic: _d_piecewise_quadratic_,
    surrogate.Sigmoid: _d_sigmoid_,
    surrogate.ATan: _d_atan_,
}


def surrogate_derivative_(fn: nn.Module, scratch: torch.Tensor) -> torch.Tensor:
    """g'(x) of surrogate module ``fn`` at ``scratch`` (no graph), which it may overwrite: closed
    form in place when known, autograd otherwise."""
    closed = _DERIVATIVES.get(type(fn))
    if closed is not None:
        return closed(scratch, fn.alpha)
    with torch.enable_grad():
        xr = scratch.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(xr).sum(), xr)
    return grad


def surrogate_derivative(fn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """g'(x) of surrogate module ``fn`` (no graph); ``x`` is left as it is."""
    return surrogate_derivative_(fn, x.detach().clone())


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
