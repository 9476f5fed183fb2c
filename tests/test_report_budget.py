"""Equal-budget rows (report/budget.py): Spiking-PGD's low-budget points against each baseline's run with at least
the same operations or seconds, and the claims that compare them."""

from __future__ import annotations

import pandas as pd
import pytest

from snnrobust.report.budget import BUDGET_KEY, budget_rows, with_budget_rows
from snnrobust.report.claims import Claim, HOLDS, FAILS, evaluate, known_keys, load_claims

PGD_STEPS = (1, 2, 5, 10, 20)


def _run(model, attack, steps, acc, share, wall, rho=None, virtual_grad=None):
    if virtual_grad is None and attack == "Spiking-PGD":
        virtual_grad = True  # every Spiking-PGD row says whether its virtual gradient ran (Attack.columns)
    keys = {"dataset": "CIFAR-10", "model": model, "method": "normal", "seed": 0, "eps": 8 / 255,
            "threat": "white-box", "attack": attack, "steps": steps, "rho": rho, "virtual_grad": virtual_grad}
    return [{**keys, "metric": "accuracy", "value": acc, "outcomes_from": f"{model}-{attack}-{steps}-{rho}#adv"},
            {**keys, "metric": "forward_share", "value": share},
            {**keys, "metric": "wall_s", "value": wall}]


def _frame(spgd_acc=(30.0, 35.0), model="r18"):
    rows = []
    for s in PGD_STEPS:  # the baselines get weaker with fewer steps; a step costs 0.2 s
        rows += _run(model, "PGD", s, 60 - 2 * s, 1.0, 0.2 * s)
        rows += _run(model, "I-FGSM", s, 62 - 2 * s, 1.0, 0.2 * s)
    rows += _run(model, "Spiking-PGD", 20, spgd_acc[0], 0.3, 2.5, rho=0.05)  # 6 of 20 iterations' forwards
    rows += _run(model, "Spiking-PGD", 20, spgd_acc[1], 0.45, 3.1, rho=0.03)
    rows += _run(model, "Spiking-PGD", 20, 20.0, 0.8, 3.9, rho=0.01)  # above 50 %: not a low-budget point
    rows += [{"dataset": "CIFAR-10", "model": model, "method": "normal", "seed": 0, "eps": 0.0, "attack": "clean",
              "steps": 0, "metric": "accuracy", "value": 80.0}]
    return pd.DataFrame(rows)


def test_each_low_budget_point_meets_the_cheapest_baseline_run_with_at_least_its_budget():
    rows = budget_rows(_frame())
    ops = rows[rows["metric"] == "accuracy_at_budget"]
    assert sorted(ops[BUDGET_KEY].unique()) == [0.3, 0.45]  # the 0.8 point is left out
    # share 0.3 of T0 = 20 is 6 iterations: PGD-10 is the fewest with >= 6; share 0.45 is 9: again 10
    at = ops[ops[BUDGET_KEY] == 0.3].set_index("attack")
    assert at.loc["PGD", "steps"] == 10 and at.loc["PGD", "value"] == 40
    assert at.loc["I-FGSM", "steps"] == 10 and at.loc["Spiking-PGD", "value"] == 30
    assert at.loc["PGD", "outcomes_from"] == "r18-PGD-10-None#adv"  # per-sample outcomes travel with the row
    wall = rows[(rows["metric"] == "accuracy_at_wall_budget") & (rows[BUDGET_KEY] == 0.45)].set_index("attack")
    # 3.1 s: the cheapest baseline run not below it is the 20-step one (4.0 s); 10 steps (2.0 s) is less
    assert wall.loc["PGD", "steps"] == 20 and wall.loc["I-FGSM", "steps"] == 20


def test_no_baseline_run_with_enough_budget_means_no_row_and_models_stay_apart():
    frame = _frame()
    frame = frame[~((frame["attack"] == "PGD") & (frame["steps"] >= 10))]  # PGD only up to 5 iterations
    both = pd.concat([frame, _frame(model="vgg")], ignore_index=True)
    rows = budget_rows(both)
    r18 = rows[(rows["model"] == "r18") & (rows["metric"] == "accuracy_at_budget")]
    assert "PGD" not in set(r18["attack"]) and "I-FGSM" in set(r18["attack"])
    vgg = rows[(rows["model"] == "vgg") & (rows["metric"] == "accuracy_at_budget")]
    assert set(vgg["attack"]) == {"PGD", "I-FGSM", "Spiking-PGD"}
    assert budget_rows(frame[frame["attack"] != "Spiking-PGD"]).empty
    assert len(with_budget_rows(both)) == len(both) + len(rows)


@pytest.mark.parametrize("spgd_acc, status, agree", [((30.0, 35.0), HOLDS, 2), ((45.0, 35.0), FAILS, 1)])
def test_the_paper_claims_compare_budgets_and_count_them(spgd_acc, status, agree):
    claims = {c.id: c for c in load_claims("spiking_pgd")}
    claim = claims["spiking_pgd_beats_pgd_at_equal_operations"]
    verdict = evaluate(claim, with_budget_rows(_frame(spgd_acc)), known_keys("spiking_pgd"))
    assert verdict.settings == 2 and verdict.agree == agree
    assert verdict.status == status  # means 32.5 < 40 hold; 40 vs 40 (45 > 40 at the first budget) fail
    wall = evaluate(claims["spiking_pgd_beats_pgd_at_equal_wall_clock"], with_budget_rows(_frame(spgd_acc)),
                    known_keys("spiking_pgd"))
    assert wall.settings == 2


def test_budget_claims_are_known_to_claim_validation():
    claim = Claim("x", "t", "s", {"attack": "Spiking-PGD", "metric": "accuracy_at_wall_budget"}, "<",
                  {"attack": "I-FGSM", "metric": "accuracy_at_wall_budget"}, ("rho", "steps"))
    assert BUDGET_KEY in known_keys("spiking_pgd") and claim.varied() == {"attack"}


def test_runs_without_the_virtual_gradient_get_no_budget_and_do_not_collide_with_their_twins():
    """Fig. 9b's ablation (virtual_grad false) at the same rho as a paper run: the twin keeps its own forward share
    and the ablation run is no operating point of the attack."""
    frame = pd.concat([_frame(), pd.DataFrame(_run("r18", "Spiking-PGD", 20, 55.0, 0.28, 2.4, rho=0.05,
                                                   virtual_grad=False))], ignore_index=True)
    rows = budget_rows(frame)
    mine = rows[(rows["attack"] == "Spiking-PGD") & (rows["metric"] == "accuracy_at_budget")]
    assert sorted(mine[BUDGET_KEY]) == [0.3, 0.45] and set(mine["virtual_grad"]) == {True}
    assert 55.0 not in set(mine["value"])


def test_the_virtual_gradient_claim_pairs_runs_at_the_same_rho():
    claim = {c.id: c for c in load_claims("spiking_pgd")}["virtual_gradient_strengthens_attack"]
    off = [_run("r18", "Spiking-PGD", 20, acc, 0.3, 2.5, rho=rho, virtual_grad=False)
           for acc, rho in ((50.0, 0.05), (33.0, 0.03))]
    frame = pd.concat([_frame(), *(pd.DataFrame(rows) for rows in off)], ignore_index=True)
    verdict = evaluate(claim, frame, known_keys("spiking_pgd"))
    # rho 0.05: 30 < 50; rho 0.03: 35 < 33 is false; rho 0.01 has no twin
    assert verdict.settings == 2 and verdict.agree == 1
