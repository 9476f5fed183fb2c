"""The SR term's cheaper x graph: its lean IF neurons keep the surrogate terms of the input gradient's
backward for the training loop's backward (``methods.sr._IFSequenceReused``). The numbers must be those of
the plain graph, bit for bit: loss, q, weight gradients and BatchNorm buffers, for every closed-form
surrogate and both reset modes; the neurons' own forwards must come back."""

from __future__ import annotations

import copy

import pytest
import torch

from snnrobust.methods import make_method
from snnrobust.methods.sr import _IFSequenceReused, reused_neuron_backward
from snnrobust.models import build_model
from snnrobust.neuron import MultiStepIF, _IFSequence
from snnrobust.surrogates import make_surrogate

pytestmark = pytest.mark.usefixtures("one_thread")


def _snn(detach_reset: bool, surrogate: str, neuron: str = "lean", seed: int = 0):
    torch.manual_seed(seed)
    return build_model("snn_vgg_tiny", 5, (3, 8, 8), T=3, width=0.5, detach_reset=detach_reset,
                       surrogate=surrogate, neuron=neuron).train()


def _step(method_name, options, model, x, y, reuse):
    method = make_method(method_name, **options)
    method.on_run_start(0)
    if not reuse:
        quotient = method.sr.quotient
        method.sr.quotient = lambda m, xx, yy: quotient(m, xx, yy, reuse=False)
    model.zero_grad(set_to_none=True)
    loss, logits = method.loss(model, x, y)
    loss.backward()
    return (loss.detach(), logits.detach(), [p.grad.clone() for p in model.parameters()],
            [b.clone() for b in model.buffers()], method.sr.mean_reg())


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", ["triangle", "sigmoid", "atan"])
@pytest.mark.parametrize("method_name, options", [
    ("sr", {"lam": 0.5, "form": "paper"}),
    ("sr", {"lam": 0.5, "form": "released", "fy": "released"}),
    ("sr_star", {"lam": 0.5, "attack": {"name": "pgd", "options": {"steps": 2}}, "eps": 8 / 255}),
])
def test_reused_neuron_terms_give_the_plain_graphs_numbers_bit_for_bit(detach_reset, surrogate, method_name,
                                                                        options):
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(6, 3, 8, 8, generator=gen), torch.randint(0, 5, (6,), generator=gen)
    plain_model = _snn(detach_reset, surrogate)
    reused_model = copy.deepcopy(plain_model)
    plain = _step(method_name, options, plain_model, x, y, reuse=False)
    reused = _step(method_name, options, reused_model, x, y, reuse=True)
    assert torch.equal(plain[0], reused[0]) and torch.equal(plain[1], reused[1])
    assert all(torch.equal(a, b) for a, b in zip(plain[2], reused[2]))
    assert all(torch.equal(a, b) for a, b in zip(plain[3], reused[3]))
    assert plain[4] == reused[4] and plain[4] > 0
    assert not any("forward" in vars(m) for m in reused_model.modules())


def test_q_is_the_same_with_and_without_reuse_and_the_term_is_nonzero():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(6, 3, 8, 8, generator=gen), torch.randint(0, 5, (6,), generator=gen)
    model = _snn(False, "triangle")
    method = make_method("sr", lam=1.0)
    _, q_plain = method.sr.quotient(copy.deepcopy(model), x, y, reuse=False)
    _, q_reused = method.sr.quotient(copy.deepcopy(model), x, y)
    assert torch.equal(q_plain, q_reused) and q_plain.abs().sum() > 0


@pytest.mark.parametrize("detach_reset", [False, True])
def test_every_backward_of_a_reused_node_equals_the_plain_one(detach_reset):
    """First (keeps), second (reuses, drops) and a third (recomputes) backward through one graph, each with
    another upstream gradient, against ``_IFSequence``."""
    gen = torch.Generator().manual_seed(3)
    currents = torch.randn(4, 5, 7, generator=gen) * 0.8 + 0.6
    surrogate = make_surrogate("sigmoid", 4.0)
    outs = {}
    for fn in (_IFSequence, _IFSequenceReused):
        x = currents.clone().requires_grad_(True)
        spikes = fn.apply(x, 1.0, 0.0, surrogate, detach_reset)
        grads = []
        for k in range(3):
            upstream = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(10 + k))
            (g,) = torch.autograd.grad(spikes, x, upstream, retain_graph=True)
            grads.append(g)
        outs[fn] = (spikes.detach(), grads)
    assert torch.equal(outs[_IFSequence][0], outs[_IFSequenceReused][0])
    for a, b in zip(outs[_IFSequence][1], outs[_IFSequenceReused][1]):
        assert torch.equal(a, b)
    assert outs[_IFSequence][1][0].abs().sum() > 0


def test_only_lean_neurons_are_swapped_and_forwards_come_back_on_errors():
    model = _snn(False, "triangle")
    lean = [m for m in model.modules() if isinstance(m, MultiStepIF)]
    assert lean
    with pytest.raises(RuntimeError, match="boom"):
        with reused_neuron_backward(model):
            assert all("forward" in vars(m) for m in lean)
            raise RuntimeError("boom")
    assert not any("forward" in vars(m) for m in model.modules())
    jelly = _snn(False, "triangle", neuron="spikingjelly")
    assert not any(isinstance(m, MultiStepIF) for m in jelly.modules())
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with reused_neuron_backward(jelly):
        assert not any("forward" in vars(m) for m in jelly.modules())
        jelly(x)
