"""MultiStepIF equals spikingjelly's multi-step IFNode in spikes and input gradients."""

import pytest
import torch
from spikingjelly.activation_based import functional, neuron

from snnrobust.neuron import NEURONS, MultiStepIF
from snnrobust.surrogates import SURROGATES, make_surrogate


def _spikes_and_grad(node, x, weights):
    x = x.clone().requires_grad_(True)
    s = node(x)
    (g,) = torch.autograd.grad((s * weights).sum(), x)
    return s.detach(), g


@pytest.mark.parametrize("name", SURROGATES.names())
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("T", [1, 3, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_spikingjelly_ifnode(name, detach_reset, T, dtype):
    torch.manual_seed(T)
    x = torch.randn(T, 4, 3, 5, 5, dtype=dtype) * 1.5 + 0.5
    w = torch.randn_like(x)
    ours = MultiStepIF(surrogate_function=make_surrogate(name, 1.0), detach_reset=detach_reset)
    ref = neuron.IFNode(
        step_mode="m", v_reset=0.0, surrogate_function=make_surrogate(name, 1.0), detach_reset=detach_reset
    )
    s1, g1 = _spikes_and_grad(ours, x, w)
    s2, g2 = _spikes_and_grad(ref, x, w)
    assert torch.equal(s1, s2)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(g1, g2, atol=tol, rtol=tol)
    assert s1.sum() > 0 and g1.abs().sum() > 0


def test_fires_at_threshold_and_hard_resets():
    x = torch.tensor([[1.0], [0.5], [0.5], [0.2]])
    assert MultiStepIF()(x).flatten().tolist() == [1.0, 0.0, 1.0, 0.0]


def test_stateless_and_tolerates_reset_net():
    node = MultiStepIF()
    net = torch.nn.Sequential(node)
    x = torch.rand(4, 2, 3) * 2
    first = node(x)
    node(torch.rand(4, 2, 3) * 2)
    functional.reset_net(net)
    functional.set_step_mode(net, "m")
    assert torch.equal(node(x), first)
    assert node.step_mode == "m"


def test_gradcheck_float64():
    torch.manual_seed(0)
    node = MultiStepIF(surrogate_function=make_surrogate("sigmoid", 4.0))
    x = torch.randn(5, 3, 4, dtype=torch.float64) + 0.5
    w = torch.randn_like(x)
    (g,) = torch.autograd.grad((node(x.requires_grad_(True)) * w).sum(), x)
    # Reference: the per-step graph with the surrogate applied to v − θ (unrolled BPTT).
    sg = node.surrogate_function
    v, ref_out = torch.zeros_like(x[0]), []
    xr = x.detach().clone().requires_grad_(True)
    for t in range(x.shape[0]):
        v = v + xr[t]
        s = sg(v - 1.0)
        ref_out.append(s)
        v = v * (1 - s)
    (g_ref,) = torch.autograd.grad((torch.stack(ref_out) * w).sum(), xr)
    torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=1e-12)


def test_neuron_registry():
    assert set(NEURONS.names()) == {"lean", "spikingjelly"}
    for name in NEURONS.names():
        n = NEURONS.get(name)(surrogate_function=make_surrogate("atan", 2.0), detach_reset=True)
        assert n.step_mode == "m" and n.detach_reset
