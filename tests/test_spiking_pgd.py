"""Spiking-PGD: activation reuse on Conv2d/Linear layers (gate, cascade, ungated layers), the virtual surrogate
gradient, the cost shares, and ρ = 0 being PGD bit for bit on an ANN and an SNN."""

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

from snnrobust.attacks import ATTACKS, activation_reuse, check_attack_options, evaluate_attack, make_attack
from snnrobust.attacks.reuse import gated_layers
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model

SHAPE = (3, 8, 8)
EPS = 8 / 255


def _batch(n=6, seed=1, shape=SHAPE):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, 4, (n,), generator=g)


def _model(kind):
    """The tiny VGG of the attack tests, as an ANN or an SNN with BatchNorm statistics from one batch (so it
    spikes), in eval mode."""
    torch.manual_seed(0)
    model = build_model(f"{kind}_vgg_tiny", 4, SHAPE, width=0.5, **({"T": 2} if kind == "snn" else {}))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None
    with torch.no_grad():
        model.train()(_batch(16, seed=0)[0])
    return model.eval()


@pytest.fixture(scope="module", params=["ann", "snn"])
def model(request):
    return _model(request.param)


def _gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("kind,space", [("ann", "pixel"), ("snn", "pixel"), ("snn", "spike")])
def test_rho_zero_is_pgd_bit_for_bit(kind, space):
    model = _model(kind)
    x, y = _batch()
    opts = {"eps": EPS, "steps": 3, "space": space}
    pgd, spiking = make_attack("pgd", **opts), make_attack("spiking_pgd", rho=0.0, **opts)
    assert torch.equal(pgd(model, x, y, generator=_gen()), spiking(model, x, y, generator=_gen()))
    assert spiking.cost.layer_forwards == 3 * len(gated_layers(model))  # every layer was gated, and computed
    assert spiking.cost.shares() == pgd.cost.shares() == dict.fromkeys(
        ("forward_share", "forward_share_flops", "backward_share_flops"), 1.0)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Linear(5, 3), (4, 5)),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 7)),
    (lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False), (2, 4, 6, 5)),
    (lambda: layer.Conv2d(3, 4, 3, padding=1, step_mode="m"), (3, 2, 3, 6, 6)),  # multi-step [T, B, C, H, W]
    (lambda: layer.Linear(6, 2, step_mode="m"), (3, 2, 6)),
])
def test_virtual_gradient_of_an_unchanged_layer_is_its_autograd_input_gradient(make, shape):
    """Sec. 4.3: a reused layer passes Aᵀ(∂L/∂ô) to its input; when the input did not change that is exactly the
    layer's own input gradient, and the reused output is an exact copy of the computed one."""
    torch.manual_seed(0)
    lin = make()
    a = torch.randn(shape)
    with activation_reuse(lin, rho=1.0) as reuse:
        reuse.next_iteration()
        first = lin(a)
        reuse.next_iteration()
        a2 = a.clone().requires_grad_(True)
        again = lin(a2)
    assert reuse.computed[""] == 1 and reuse.requested[""] == 2  # iteration 2 reused
    assert torch.equal(again.detach(), first.detach())
    g = torch.randn(first.shape)
    (virtual,) = torch.autograd.grad(again, a2, g)
    a3 = a.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(lin(a3), a3, g)
    torch.testing.assert_close(virtual, exact)
    assert lin.weight.grad is None


def test_a_reused_layer_without_virtual_gradient_passes_zero():
    lin = nn.Linear(5, 3)
    a = torch.randn(4, 5)
    with activation_reuse(lin, rho=1.0, virtual_grad=False) as reuse:
        reuse.next_iteration()
        lin(a)
        reuse.next_iteration()
        a2 = a.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(lin(a2).sum(), a2)
    assert torch.equal(grad, torch.zeros_like(a))


def test_cascade_every_later_layer_reuses_and_the_virtual_backward_is_exact(model):
    """A reused output is an exact copy, so every later layer sees an unchanged input and reuses too; at an
    unchanged input the virtual backward through all of them equals the model's plain input gradient."""
    x, _ = _batch()
    layers = gated_layers(model)
    with activation_reuse(model, rho=1e9) as reuse:
        reuse.next_iteration()
        model(x)
        reuse.next_iteration()
        xr = x.clone().requires_grad_(True)
        (virtual,) = torch.autograd.grad(model(xr).square().sum(), xr)
    assert dict(reuse.computed) == dict.fromkeys(layers, 1)
    assert dict(reuse.requested) == dict.fromkeys(layers, 2)
    xr = x.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(model(xr).square().sum(), xr)
    torch.testing.assert_close(virtual, exact)
    assert not any("forward" in m.__dict__ for m in layers.values())  # the context is undone


def test_cascade_through_an_attack_computes_only_the_first_iteration(model):
    """With a large ρ the first layer's input moves by less than ρ, so from iteration 2 on nothing is computed
    (on the SNN too: the caches survive the reset_net each forward starts with)."""
    x, y = _batch()
    steps = 4
    row = evaluate_attack(model, make_attack("spiking_pgd", eps=EPS, steps=steps, rho=1e9), [(x, y)], progress=False)
    assert row["forward_share"] == row["forward_share_flops"] == 1 / steps
    assert row["backward_share_flops"] == 1.0  # every reused layer still runs its Aᵀg
    off = evaluate_attack(model, make_attack("spiking_pgd", eps=EPS, steps=steps, rho=1e9, virtual_grad=False),
                          [(x, y)], progress=False)
    assert off["backward_share_flops"] == 1 / steps


def test_frozen_network_without_virtual_gradient_is_pgd_stopped_after_one_step(toy_model):
    """Prop. 4.1's embedding: when every layer reuses after iteration 1 and reused layers pass no gradient, the
    later steps do not move, so the attack equals PGD with one step (same α and random start)."""
    x, y = _batch(16, shape=(3, 8, 8))
    opts = {"eps": EPS, "alpha": EPS / 4, "random_start": True}
    frozen = make_attack("spiking_pgd", steps=5, rho=1e9, virtual_grad=False, **opts)(toy_model, x, y, _gen())
    one = make_attack("pgd", steps=1, **opts)(toy_model, x, y, _gen())
    assert torch.equal(frozen, one)


def test_frozen_network_with_virtual_gradient_repeats_the_first_gradient(toy_model):
    """With every layer reused after iteration 1 the virtual backward returns iteration 1's gradient each step
    (the released code's freeze): the attack is PGD driven by one fixed gradient sign."""
    x, y = _batch(16, shape=(3, 8, 8))
    atk = make_attack("spiking_pgd", eps=EPS, steps=5, alpha=EPS / 4, rho=1e9, random_start=False)
    out = atk(toy_model, x, y)
    g = atk.loss_gradient(toy_model, x, y).sign()
    z = x.clone()
    for _ in range(5):
        z = torch.clamp(torch.clamp(z + EPS / 4 * g, x - EPS, x + EPS), 0, 1)
    torch.testing.assert_close(out, z, rtol=0, atol=1e-7)


def test_ungated_layer_keeps_computing_and_shares_are_weighted_by_macs(toy_model):
    """``ungated`` names module paths that always compute; forward_share counts layer calls, forward_share_flops
    weighs each by its MACs (the toy's Linear(192, 32) does 48 times the work of its Linear(32, 4))."""
    x, y = _batch(16, shape=(3, 8, 8))
    steps = 4
    with activation_reuse(toy_model, rho=1e9, ungated=["1"]) as reuse:
        for _ in range(steps):
            reuse.next_iteration()
            toy_model(x + 0.01 * torch.rand_like(x))
    assert reuse.computed == {"1": steps, "3": 1}
    row = evaluate_attack(toy_model, make_attack("spiking_pgd", eps=EPS, steps=steps, rho=1e9, ungated=["1"]),
                          [(x, y)], progress=False)
    big, small = 192 * 32, 32 * 4
    assert row["forward_share"] == pytest.approx((steps + 1) / (2 * steps))
    assert row["forward_share_flops"] == pytest.approx((steps * big + small) / (steps * (big + small)))
    # a container path ungates every gated layer under it: nothing reuses
    whole = evaluate_attack(toy_model, make_attack("spiking_pgd", eps=EPS, steps=steps, rho=1e9, ungated=[""]),
                            [(x, y)], progress=False)
    assert whole["forward_share"] == 1.0


def test_caches_are_per_batch(toy_model):
    """A new attack call (a new batch) starts from iteration 1 with empty caches: the same batch twice gives the
    same point and the same shares."""
    x, y = _batch(16, shape=(3, 8, 8))
    atk = make_attack("spiking_pgd", eps=EPS, steps=3, rho=0.5)
    rows = [evaluate_attack(toy_model, atk, [(x, y), (x, y)], progress=False) for _ in range(2)]
    assert rows[0]["adv_correct"][:16] == rows[0]["adv_correct"][16:] == rows[1]["adv_correct"][:16]
    assert rows[0]["forward_share"] == rows[1]["forward_share"]


@pytest.mark.parametrize("call", [
    lambda: make_attack("spiking_pgd", eps=0.1, rho=-0.1),
    lambda: check_attack_options("spiking_pgd", {"rho": -0.1}),
])
def test_negative_rho_is_a_one_line_error(call):
    with pytest.raises(SnnRobustError, match="rho.*>= 0") as exc:
        call()
    assert "\n" not in str(exc.value)


def test_unknown_ungated_layer_is_a_one_line_error(toy_model):
    atk = make_attack("spiking_pgd", eps=0.1, ungated=["features.9"])
    with pytest.raises(SnnRobustError, match="ungated layer 'features.9'") as exc:
        atk(toy_model, *_batch(2, shape=(3, 8, 8)))
    assert "\n" not in str(exc.value)
    assert not any("forward" in m.__dict__ for m in toy_model.modules())


def test_spiking_pgd_is_registered_with_its_options_and_columns():
    assert {"eps", "steps", "alpha", "random_start", "rho", "virtual_grad", "ungated", "reference", "loss",
            "gradient", "space", "mode"} <= ATTACKS.option_names("spiking_pgd")
    cols = make_attack("spiking_pgd", eps=0.1, rho=0.02, ungated=["backbone.0"]).columns()
    assert cols["rho"] == 0.02 and cols["virtual_grad"] is True and cols["ungated"] == "backbone.0"
    assert cols["reference"] == "previous"


def test_ensemble_of_spiking_pgd_members_keeps_the_shares():
    """An ensemble adds each member's cost weighted by the share of the batch it attacked: the layer shares
    survive (with a large ρ each member computes its first iteration only)."""
    model = _model("snn")
    ens = make_attack("ensemble", eps=EPS, attack={"name": "spiking_pgd", "options": {"steps": 2, "rho": 1e9}},
                      members=[{"rule": "surrogate", "name": "triangle"}, {"rule": "rga"}], cascade=False)
    row = evaluate_attack(model, ens, [_batch()], progress=False)
    assert row["forward_share"] == row["forward_share_flops"] == 0.5 and row["backward_share_flops"] == 1.0


@pytest.mark.parametrize("reference,computed", [("previous", 1), ("computed", 2)])
def test_reference_previous_compares_with_the_last_input_and_computed_with_the_cached_ones(reference, computed):
    """An input drifting by 1% per iteration never trips ρ = 2.5% against the previous input (Eq. 3, the released
    code), but does against the input the cache was computed from once the drift passes 2.5% (iteration 4)."""
    lin = nn.Linear(8, 3)
    a, d = torch.ones(2, 8), torch.ones(2, 8) * 0.01
    with activation_reuse(lin, rho=0.025, reference=reference) as reuse:
        for t in range(4):
            reuse.next_iteration()
            lin(a + t * d)
    assert reuse.computed[""] == computed and reuse.requested[""] == 4
