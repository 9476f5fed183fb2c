"""Attack core: projection, budgets, cost counts, ordering of attack strength, registry errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from snnrobust.attacks import ATTACKS, LOSSES, check_attack_options, evaluate_attack, make_attack
from snnrobust.errors import SnnRobustError


def _batch(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if n != "topology"])  # graph: tests/test_topology.py
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
    ({"eps": -0.1}, "eps.*>= 0"),
    ({"eps": 0.1, "steps": 0}, "steps.*>= 1"),
    ({"eps": 0.1, "bogus": 1}, "bogus"),
    ({"eps": 0.1, "loss": "hinge"}, "unknown loss 'hinge'; choose one of: ce, dlr, fy_margin"),
    ({"eps": 0.1, "gradient": {"rule": "rga2"}}, "unknown gradient rule 'rga2'"),
    ({"eps": 0.1, "gradient": {"rule": "surrogate", "name": "erf"}}, "unknown surrogate 'erf'"),
    ({"eps": 0.1, "space": "latent"}, "space.*latent"),
    ({"eps": 0.1, "mode": "test"}, "mode.*test"),
])
def test_bad_attack_options_are_one_line_errors(kwargs, msg):
    with pytest.raises(SnnRobustError, match=msg) as exc:
        make_attack("pgd", **kwargs)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("options", [
    {"loss": "nope"}, {"gradient": {"rule": "nope"}}, {"gradient": {"name": "atan"}},
    {"gradient": {"rule": "surrogate", "gamma": 0}}, {"space": "nope"}, {"mode": "nope"},
])
def test_check_attack_options_rejects_nested_values(options):
    with pytest.raises(SnnRobustError) as exc:
        check_attack_options("pgd", options)
    assert "\n" not in str(exc.value)
    check_attack_options("pgd", {"steps": 3, "loss": "dlr", "space": "spike", "mode": "train",
                                 "gradient": {"rule": "surrogate", "name": "sigmoid", "gamma": 4}})


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_attack_declares_the_shared_options(name):
    assert {"eps", "loss", "gradient", "space", "mode"} <= ATTACKS.option_names(name)


def test_unknown_attack_lists_choices():
    with pytest.raises(SnnRobustError, match="unknown attack 'nope'; choose one of: apgd, ensemble, fgsm, ifgsm, mifgsm, pgd, random, rfgsm, "
                                            "spiking_pgd, topology"):
        make_attack("nope", eps=0.1)


def test_ce_and_dlr_losses_match_hand_computation():
    logits = torch.tensor([[2.0, 0.5, 1.0, -1.0], [0.0, 3.0, -1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    # CE written out: log Σ e^{z_i} − z_y.
    ce = [math.log(sum(math.exp(v) for v in row)) - row[t] for row, t in zip(logits.tolist(), y.tolist())]
    torch.testing.assert_close(LOSSES.get("ce")(logits, y), torch.tensor(ce, dtype=torch.float64))
    # DLR (Croce & Hein): −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3), by hand for the two rows.
    dlr = [-(2.0 - 1.0) / (2.0 - 0.5), -(-1.0 - 3.0) / (3.0 - 0.0)]
    torch.testing.assert_close(LOSSES.get("dlr")(logits, y), torch.tensor(dlr, dtype=torch.float64))
    fy = [-1 / (1 + math.exp(-(2.0 - 1.0))), -1 / (1 + math.exp(-(-1.0 - 3.0)))]
    torch.testing.assert_close(LOSSES.get("fy_margin")(logits, y), torch.tensor(fy, dtype=torch.float64))


def test_dlr_needs_three_classes():
    with pytest.raises(SnnRobustError, match="at least 3 classes"):
        LOSSES.get("dlr")(torch.zeros(1, 2), torch.tensor([0]))


@pytest.mark.parametrize("loss", LOSSES.names())
def test_fgsm_follows_the_chosen_loss(toy_model, loss):
    """Independent check per loss: FGSM = clip(x + ε sign(∇x Σ loss)) by plain autograd."""
    x, y = _batch()
    eps = 4 / 255
    xr = x.clone().requires_grad_(True)
    LOSSES.get(loss)(toy_model(xr), y).sum().backward()
    expected = (x + eps * xr.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(make_attack("fgsm", eps=eps, loss=loss)(toy_model, x, y), expected)


def test_per_sample_outcomes_reproduce_the_summary(toy_model):
    x, y = _batch(48)
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    row = evaluate_attack(toy_model, make_attack("pgd", eps=8 / 255, steps=3), batches, progress=False)
    clean, adv = torch.tensor(row["clean_correct"]), torch.tensor(row["adv_correct"])
    assert clean.numel() == adv.numel() == row["n"] == 48
    assert set(clean.tolist()) | set(adv.tolist()) <= {0, 1}
    with torch.no_grad():  # clean outcomes in evaluation order, recomputed independently
        assert clean.tolist() == (toy_model(x).argmax(1) == y).int().tolist()
    assert row["clean_acc"] == pytest.approx(100 * clean.float().mean().item())
    assert row["robust_acc"] == pytest.approx(100 * adv.float().mean().item())
    both = (clean & adv).sum().item()
    assert row["robust_acc_clean_correct"] == pytest.approx(100 * both / clean.sum().item())


def test_cost_counter_restarts_for_each_evaluation(toy_model):
    x, y = _batch(16)
    atk = make_attack("pgd", eps=8 / 255, steps=4)
    first = evaluate_attack(toy_model, atk, [(x, y)], progress=False)
    second = evaluate_attack(toy_model, atk, [(x, y)], progress=False)
    assert first["backward_passes"] == second["backward_passes"] == 4
    assert first["forward_passes"] == second["forward_passes"] == 4 + 2
    assert first["robust_acc"] == second["robust_acc"]


def test_spike_space_on_an_ann_is_a_one_line_error(toy_model):
    with pytest.raises(SnnRobustError, match="attack space 'spike' needs a spiking model") as exc:
        make_attack("fgsm", eps=0.1, space="spike")(toy_model, *_batch(2))
    assert "\n" not in str(exc.value)
