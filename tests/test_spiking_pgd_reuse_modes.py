"""Spiking-PGD's options beyond the paper: ``backward_reuse`` (a reused layer whose upstream gradient barely moved
returns its last input gradient) and ``block_reuse`` (residual blocks gated as units, backward through the graph
kept from the iteration that computed them), checked against independent computations."""

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from snnrobust.attacks import activation_reuse, check_attack_options, evaluate_attack, make_attack
from snnrobust.attacks.base import Cost
from snnrobust.attacks.reuse import ActivationReuse, gated_blocks, gated_layers
from snnrobust.attacks.spiking_pgd import SpikingPGD
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 8, 8)
EPS = 8 / 255


def _batch(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(0, 4, (n,), generator=g)


def _gen():
    return torch.Generator().manual_seed(0)


def _calibrated(model):
    """BatchNorm statistics from one batch (so an SNN spikes), then eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        model.train()(_batch(16, seed=0)[0])
    return model.eval()


def _resnet():
    """A torchvision-style residual net: stem conv "0", BasicBlocks "3" (identity) and "4" (downsampling), head "7"."""
    torch.manual_seed(0)
    down = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
    return _calibrated(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                     BasicBlock(8, 8), BasicBlock(8, 16, stride=2, downsample=down),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4)))


def _snn(arch):
    torch.manual_seed(0)
    opts = {"widen": 1} if arch == "snn_wrn16" else {"width": 0.5}
    return _calibrated(build_model(arch, 4, SHAPE, T=2, **opts))


_BUILT = {}


def _built(arch):
    """One model per architecture for the whole file (the attacks never edit it)."""
    if arch not in _BUILT:
        _BUILT[arch] = _resnet() if arch == "resnet" else _snn(arch)
    return _BUILT[arch]


def test_blocks_are_the_residual_blocks():
    assert list(gated_blocks(_built("resnet"))) == ["3", "4"]
    assert len(gated_blocks(_built("snn_wrn16"))) == 6  # snn_wrn's PreActBlocks
    assert gated_blocks(_built("snn_vgg_tiny")) == {}  # a plain VGG has none: block reuse is forward reuse


# -- rho = 0 ---------------------------------------------------------------------------------------
BOTH = {"backward_reuse": True, "block_reuse": True}


@pytest.mark.parametrize("arch,space,mode", [
    ("resnet", "pixel", {"backward_reuse": True}), ("resnet", "pixel", {"block_reuse": True}),
    ("resnet", "pixel", BOTH), ("snn_wrn16", "pixel", BOTH), ("snn_vgg_tiny", "spike", BOTH)])
def test_rho_zero_is_pgd_bit_for_bit(arch, space, mode):
    model = _built(arch)
    x, y = _batch()
    opts = {"eps": EPS, "steps": 3, "space": space}
    pgd, spiking = make_attack("pgd", **opts), make_attack("spiking_pgd", rho=0.0, **mode, **opts)
    assert torch.equal(pgd(model, x, y, generator=_gen()), spiking(model, x, y, generator=_gen()))
    assert spiking.cost.shares() == dict.fromkeys(("forward_share", "forward_share_flops", "backward_share_flops"), 1.0)


# -- backward reuse --------------------------------------------------------------------------------
def _iteration(lin, reuse, a, upstream):
    """One reuse iteration of a lone layer: forward on ``a``, backward of ``upstream``; the input gradient."""
    reuse.next_iteration()
    a = a.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(lin(a), a, upstream)
    return grad


def test_backward_reuse_with_a_huge_rho_returns_the_first_virtual_gradient():
    """Iteration 1 computes; iteration 2 reuses the output and computes its virtual gradient g₂W (the memo);
    iteration 3 reuses the output and, its upstream gradient within ρ, returns that memo: g₂W, not g₃W."""
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    a, g = torch.randn(4, 5), torch.randn(3, 4, 3)
    cost = Cost()
    with activation_reuse(lin, rho=1e9, backward_reuse=True, cost=cost) as reuse:
        grads = [_iteration(lin, reuse, a + 0.01 * t, g[t]) for t in range(3)]
    w = lin.weight.detach()
    torch.testing.assert_close(grads[0], g[0] @ w)  # computed: autograd's
    assert torch.equal(grads[1], g[1] @ w)  # reused, virtual gradient computed (the transpose is g·W)
    assert torch.equal(grads[2], g[1] @ w) and not torch.allclose(grads[2], g[2] @ w)  # the memo
    assert reuse.computed[""] == 1 and reuse.requested[""] == 3 and reuse.backward_reused == {"": 1}
    macs = 4 * 3 * 5
    assert (cost.layer_forwards, cost.layer_forwards_computed) == (3, 1)
    assert (cost.backward_macs, cost.backward_macs_run) == (3 * macs, 2 * macs)  # the memo's backward is skipped
    assert cost.shares()["backward_share_flops"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("reference,reused,last", [("previous", 4, 1), ("computed", 3, 4)])
def test_backward_gate_compares_upstream_gradients_as_the_forward_gate_compares_inputs(reference, reused, last):
    """An upstream gradient drifting by 1% per iteration never trips ρ = 2.5% against the previous one, but does
    against the one the memo was computed from once the drift passes 2.5% (t = 4); the input is fixed, so every
    iteration after the first reuses its output, iteration 2 (t = 1) fills the memo, and the gate decides alone."""
    lin = nn.Linear(8, 3)
    a, g, d = torch.ones(2, 8), torch.ones(2, 3), torch.ones(2, 3) * 0.01
    with activation_reuse(lin, rho=0.025, reference=reference, backward_reuse=True) as reuse:
        grads = [_iteration(lin, reuse, a, g + t * d) for t in range(6)]
    assert reuse.computed[""] == 1 and reuse.backward_reused[""] == reused
    assert torch.equal(grads[5], (g + last * d) @ lin.weight.detach())


class _Fixed(nn.Module):
    """logits = B(z)·A(c) where A's input c = z − z.detach() + const is exactly const at every iteration (so A
    reuses its output at any ρ > 0) yet passes A's input gradient on to z, and A's upstream gradient moves with z."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(192, 4), nn.Linear(192, 4)
        self.register_buffer("const", torch.rand(192))

    def forward(self, z):
        flat = z.flatten(1)
        return self.b(flat) * self.a(flat - flat.detach() + self.const)


def test_backward_reuse_with_a_tiny_rho_is_plain_spiking_pgd_bit_for_bit():
    """ρ = 1e-12: layer "a" reuses its output every iteration after the first (its input is exactly unchanged),
    but its upstream gradient always moves by more than ρ, so every virtual gradient is computed as without the
    option."""
    model, (x, y) = _Fixed(), _batch(8)
    opts = {"eps": EPS, "steps": 4, "rho": 1e-12}
    plain = make_attack("spiking_pgd", **opts)
    gated = make_attack("spiking_pgd", backward_reuse=True, **opts)
    out = gated(model, x, y, generator=_gen())
    assert torch.equal(out, plain(model, x, y, generator=_gen()))
    assert not torch.equal(out, make_attack("spiking_pgd", **{**opts, "virtual_grad": False})(model, x, y, _gen()))
    assert plain.cost.layer_forwards_computed == 4 + 1  # "b" every iteration, "a" once
    assert gated.cost == plain.cost  # every reused layer's backward ran


# -- block reuse -----------------------------------------------------------------------------------
def test_reused_block_returns_its_cached_output_and_the_vjp_at_the_cached_point():
    """The stem conv is ungated, so block "3"'s input moves a little at iteration 2 (less than ρ): the block
    returns its iteration-1 output, and its input gradient is the block's VJP at the iteration-1 input applied to
    the iteration-2 upstream gradient (torch.autograd.functional.vjp on the plain block); no weight gradient."""
    net, (x, _) = _built("resnet"), _batch()
    block = net[3]
    seen = {"in": [], "out": [], "up": [], "grad_in": []}

    def before(_, args):
        seen["in"].append(args[0].detach().clone())
        args[0].register_hook(lambda g: seen["grad_in"].append(g))

    def after(_, args, out):
        seen["out"].append(out.detach().clone())
        out.register_hook(lambda g: seen["up"].append(g))

    handles = [block.register_forward_pre_hook(before), block.register_forward_hook(after)]
    with activation_reuse(net, rho=1e9, ungated=["0"], block_reuse=True) as reuse:
        for t in range(2):
            reuse.next_iteration()
            xr = (x + 0.01 * t).requires_grad_(True)
            torch.autograd.grad(net(xr).square().sum(), xr)
    for h in handles:
        h.remove()
    assert not torch.equal(seen["in"][0], seen["in"][1])
    assert torch.equal(seen["out"][1], seen["out"][0])  # the cached output
    _, vjp = torch.autograd.functional.vjp(block, seen["in"][0], seen["up"][1])
    torch.testing.assert_close(seen["grad_in"][1], vjp, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(seen["grad_in"][1], torch.autograd.functional.vjp(block, seen["in"][1],
                                                                                seen["up"][1])[1])
    assert reuse.block_computed == {"3": 1, "4": 1} and reuse.block_requested == {"3": 2, "4": 2}
    inner = [n for n in gated_layers(net) if n[0] in "34"]
    assert dict(reuse.computed) == {"0": 2, "7": 1, **dict.fromkeys(inner, 1)}
    assert dict(reuse.requested) == dict.fromkeys(gated_layers(net), 2)  # layers of a reused block: requested
    assert all(p.grad is None for p in net.parameters())
    assert not any("forward" in m.__dict__ for m in net.modules())  # the context is undone


def test_a_computed_block_backpropagates_as_autograd_does():
    """With ρ = 1e-12 every block computes (on a private copy of its input, keeping its graph); the backward
    through that kept graph is the plain backward, so the attack is PGD bit for bit."""
    model, (x, y) = _built("resnet"), _batch()
    opts = {"eps": EPS, "steps": 3}
    atk = make_attack("spiking_pgd", rho=1e-12, block_reuse=True, **opts)
    assert torch.equal(atk(model, x, y, _gen()), make_attack("pgd", **opts)(model, x, y, _gen()))
    assert atk.cost.shares()["forward_share"] == 1.0


def _macs(model, x):
    """MACs of each gated layer's call on ``x`` (independently of the reuse code): outputs × weight row size."""
    out = {}
    hooks = [m.register_forward_hook(lambda m, _, o, n=n: out.__setitem__(n, o.numel() * m.weight[0].numel()))
             for n, m in gated_layers(model).items()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return out


@pytest.mark.parametrize("mode", ["forward", "backward", "block", "block+backward"])
def test_cost_counters_with_a_frozen_network(mode):
    """ρ = 1e9 freezes the net after iteration 1 (forward share 1/S in every mode). Backward: forward reuse runs
    every Aᵀg; backward reuse computes each layer's memo at iteration 2 and reuses it after; block reuse runs the
    VJP of every reused block (the backward of the layers inside it); with both, a block's memo is filled at its
    computed iteration, so only the stem and the head (plain layers) run at iteration 2."""
    model, (x, y) = _built("resnet"), _batch()
    steps = 4
    opts = {"backward_reuse": "backward" in mode, "block_reuse": "block" in mode}
    atk = make_attack("spiking_pgd", eps=EPS, steps=steps, rho=1e9, **opts)
    row = evaluate_attack(model, atk, [(x, y)], progress=False)
    macs = _macs(model, x)
    total = sum(macs.values())
    run = {"forward": steps * total, "backward": 2 * total, "block": steps * total,
           "block+backward": total + macs["0"] + macs["7"]}[mode]
    assert atk.cost.backward_macs == steps * total and atk.cost.layer_macs == steps * total
    assert row["forward_share"] == row["forward_share_flops"] == 1 / steps
    assert row["backward_share_flops"] == pytest.approx(run / (steps * total))


def test_block_reuse_on_a_spiking_wrn_runs_the_kept_graph():
    """snn_wrn16's PreActBlocks (multi-step IF neurons): a frozen run computes iteration 1 only, and its virtual
    backward equals the model's plain input gradient (at an unchanged input the kept graphs are the model's)."""
    model, (x, _) = _built("snn_wrn16"), _batch()
    with activation_reuse(model, rho=1e9, block_reuse=True, backward_reuse=True) as reuse:
        reuse.next_iteration()
        model(x.clone().requires_grad_(True))  # a block keeps its graph only where a gradient is asked for
        reuse.next_iteration()
        xr = x.clone().requires_grad_(True)
        (virtual,) = torch.autograd.grad(model(xr).square().sum(), xr)
    blocks = gated_blocks(model)
    assert dict(reuse.block_computed) == dict.fromkeys(blocks, 1)
    assert dict(reuse.block_requested) == dict.fromkeys(blocks, 2)
    xr = x.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(model(xr).square().sum(), xr)
    torch.testing.assert_close(virtual, exact, rtol=1e-5, atol=1e-6)


def test_a_block_holding_an_ungated_layer_is_not_gated():
    reuse = ActivationReuse(_built("resnet"), 0.1, ungated=["4.conv2"], block_reuse=True)
    assert list(reuse.blocks) == ["3"]


# -- options ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,option", [
    (lambda: make_attack("spiking_pgd", eps=0.1, backward_reuse="yes"), "backward_reuse"),
    (lambda: check_attack_options("spiking_pgd", {"block_reuse": 2}), "block_reuse"),
    (lambda: SpikingPGD(eps=0.1, block_reuse="no"), "block_reuse"),
    (lambda: ActivationReuse(nn.Linear(2, 2), 0.1, backward_reuse=1), "backward_reuse"),
])
def test_bad_values_are_one_line_errors(call, option):
    with pytest.raises(SnnRobustError, match=option) as exc:
        call()
    assert "\n" not in str(exc.value)


def test_options_are_registered_and_show_as_columns_only_when_on():
    plain = make_attack("spiking_pgd", eps=0.1, rho=0.02).columns()
    assert "backward_reuse" not in plain and "block_reuse" not in plain  # the paper's rows are unchanged
    cols = make_attack("spiking_pgd", eps=0.1, rho=0.02, backward_reuse=True, block_reuse=True).columns()
    assert cols["backward_reuse"] is True and cols["block_reuse"] is True
