"""Attack core: projection, budgets, cost counts, ordering of attack strength, registry errors."""

import pytest
import torch
import torch.nn.functional as F

from snnrobust.attacks import ATTACKS, evaluate_attack, make_attack
from snnrobust.errors import SnnRobustError


def _batch(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("eps", [0.0, 2 / 255, 8 / 255])
def test_attack_stays_in_budget_and_image_range(toy_model, name, eps):
    x, y = _batch()
    x_adv = make_attack(name, eps=eps)(toy_model, x, y, generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_fgsm_is_one_signed_step_of_the_loss_gradient(toy_model):
    """Independent check: FGSM equals clip(x + ε sign(∇x CE)) computed here by plain autograd."""
    x, y = _batch()
    eps = 4 / 255
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(toy_model(xr), y, reduction="sum").backward()
    expected = (x + eps * xr.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(make_attack("fgsm", eps=eps)(toy_model, x, y), expected)


def test_loss_gradient_matches_finite_difference(toy_model):
    """The attack's input gradient agrees with a central finite difference (float64)."""
    model = toy_model.double()
    x, y = _batch(2)
    x, atk = x.double(), make_attack("fgsm", eps=0.0)
    grad = atk.loss_gradient(model, x, y)
    h = 1e-6
    for idx in [(0, 0, 0, 0), (1, 2, 5, 3), (0, 1, 7, 7)]:
        e = torch.zeros_like(x)
        e[idx] = h
        fd = (F.cross_entropy(model(x + e), y, reduction="sum") - F.cross_entropy(model(x - e), y, reduction="sum")) / (2 * h)
        assert abs(fd.item() - grad[idx].item()) < 1e-6


def test_pgd_raises_loss_at_least_as_much_as_fgsm(toy_model):
    x, y = _batch(64)
    eps = 8 / 255
    loss = lambda xa: F.cross_entropy(toy_model(xa), y).item()
    fgsm = make_attack("fgsm", eps=eps)(toy_model, x, y)
    pgd = make_attack("pgd", eps=eps, steps=20, random_start=False, alpha=eps / 8)(toy_model, x, y)
    assert loss(x) < loss(fgsm) <= loss(pgd) + 1e-6


def test_cost_counts_and_determinism(toy_model):
    x, y = _batch(32)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    rows = [evaluate_attack(toy_model, make_attack("pgd", eps=8 / 255, steps=5), batches, seed=3, progress=False) for _ in range(2)]
    assert rows[0]["backward_passes"] == 2 * 5
    assert rows[0]["forward_passes"] == 2 * 5 + 2 * 2
    assert rows[0]["robust_acc"] == rows[1]["robust_acc"] and rows[0]["n"] == 32
    assert rows[0]["robust_acc"] <= rows[0]["clean_acc"]


def test_attack_restores_training_mode(toy_model):
    toy_model.train()
    make_attack("pgd", eps=0.01, steps=2)(toy_model, *_batch())
    assert toy_model.training


@pytest.mark.parametrize("kwargs,msg", [
    ({"eps": -0.1}, "eps must be >= 0"),
    ({"eps": 0.1, "steps": 0}, "steps must be >= 1"),
    ({"eps": 0.1, "bogus": 1}, "no option(s) bogus"),
])
def test_bad_attack_options_are_one_line_errors(kwargs, msg):
    with pytest.raises(SnnRobustError, match=msg.replace("(", r"\(").replace(")", r"\)")) as exc:
        make_attack("pgd", **kwargs)
    assert "\n" not in str(exc.value)


def test_unknown_attack_lists_choices():
    with pytest.raises(SnnRobustError, match="unknown attack 'nope'; choose one of: fgsm, pgd"):
        make_attack("nope", eps=0.1)
