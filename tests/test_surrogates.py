"""Surrogates: backward vs finite differences of the primitive, peak 1 at 0, swap and restore."""

import pytest
import torch

from snnrobust.errors import SnnRobustError
from snnrobust.neuron import MultiStepIF
from snnrobust.surrogates import SURROGATES, make_surrogate, surrogate_derivative, use_surrogate

GAMMAS = [0.5, 1.0, 2.0]
PEAK = {"triangle": lambda g: 1 / g, "sigmoid": lambda g: g / 4, "atan": lambda g: g / 2}  # g'(0)


@pytest.mark.parametrize("name", SURROGATES.names())
@pytest.mark.parametrize("gamma", GAMMAS)
def test_backward_matches_finite_difference_of_primitive(name, gamma):
    sg = make_surrogate(name, gamma)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    x = x[(x.abs() - 1 / sg.alpha).abs() > 1e-3]  # away from the triangle's kinks
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(sg(xr).sum(), xr)
    h = 1e-6
    fd = (sg.primitive_function(x + h, sg.alpha) - sg.primitive_function(x - h, sg.alpha)) / (2 * h)
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(surrogate_derivative(sg, x), grad)


@pytest.mark.parametrize("name", SURROGATES.names())
@pytest.mark.parametrize("gamma", GAMMAS)
def test_peak_gradient_is_one_at_zero(name, gamma):
    sg = make_surrogate(name, gamma)
    x = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    d = surrogate_derivative(sg, x)
    assert d.max().item() == pytest.approx(PEAK[name](gamma))
    assert x[d.argmax()].item() == pytest.approx(0.0, abs=1e-9)


def test_unit_peak_at_default_widths():
    for name, gamma in (("triangle", 1.0), ("sigmoid", 4.0), ("atan", 2.0)):
        d = surrogate_derivative(make_surrogate(name, gamma), torch.zeros(1, dtype=torch.float64))
        assert d.item() == pytest.approx(1.0)


def test_triangle_is_sr_zif():
    gamma = 0.7
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)
    zif = (1 / gamma**2) * (gamma - x.abs()).clamp(min=0)
    torch.testing.assert_close(surrogate_derivative(make_surrogate("triangle", gamma), x), zif)


def test_autograd_fallback_for_other_spikingjelly_surrogates():
    from spikingjelly.activation_based import surrogate

    sg = surrogate.Erf(alpha=2.0)
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(sg(xr).sum(), xr)
    torch.testing.assert_close(surrogate_derivative(sg, x), ref)


@pytest.mark.parametrize("gamma", [0, -1.0, float("nan"), "wide"])
def test_bad_gamma(gamma):
    with pytest.raises(SnnRobustError):
        make_surrogate("triangle", gamma)


def test_unknown_surrogate():
    with pytest.raises(SnnRobustError, match="triangle"):
        make_surrogate("nope", 1.0)


def test_context_manager_swaps_and_restores():
    from spikingjelly.activation_based import neuron

    model = torch.nn.Sequential(MultiStepIF(), neuron.IFNode(step_mode="m"), torch.nn.ReLU())
    originals = [model[0].surrogate_function, model[1].surrogate_function]
    with use_surrogate(model, "atan", 3.0):
        for m in model[:2]:
            assert type(m.surrogate_function).__name__ == "ATan" and m.surrogate_function.alpha == 3.0
    assert [model[0].surrogate_function, model[1].surrogate_function] == originals
    with pytest.raises(RuntimeError):
        with use_surrogate(model, "sigmoid", 2.0):
            raise RuntimeError("boom")
    assert [model[0].surrogate_function, model[1].surrogate_function] == originals
