"""The gradient-masking checklist analysis (Carlini et al. 2019): its items on a tiny model, a model whose input
gradient is zero failing the unbounded-PGD item while an ordinary trained linear model passes, bad options as
one-line errors at config check."""

from __future__ import annotations

import pytest
import torch

from snnrobust.analysis import ANALYSES
from snnrobust.analysis.masking import ITEMS, MaskingChecklist, paired_increase
from snnrobust.errors import SnnRobustError

from conftest import Rounded, separable_linear

CHEAP = {"eps_255": [8, 64], "ladder_steps": 5, "steps": [2, 5]}


def _checks(rows: list[dict]) -> dict[str, dict]:
    return {r["item"]: r for r in rows if r["statistic"].startswith("check_")}


@pytest.fixture(scope="module")
def separable():
    """A linear model trained to 100 % on linearly separable 3x8x8 data (its gradient is the model, nothing masked)."""
    model, x, y = separable_linear(96)
    return model, [(x[:48], y[:48]), (x[48:], y[48:])]


def test_returns_every_item_and_tidy_rows(toy_model, one_thread):
    torch.manual_seed(1)
    batches = [(torch.rand(16, 3, 8, 8), torch.randint(0, 4, (16,)))]
    rows = ANALYSES.create("masking_checklist", **CHEAP)(toy_model, batches)
    assert {r["statistic"] for r in rows} <= set(MaskingChecklist.STATISTICS)
    assert all({"statistic", "mean", "std", "n"} <= set(r) for r in rows)
    assert set(_checks(rows)) == set(ITEMS)
    assert all(c["mean"] in (0.0, 1.0) and c["detail"] for c in _checks(rows).values())
    pgd = {(r["eps_255"], r["steps"]): r["mean"] for r in rows if r["statistic"] == "pgd_accuracy"}
    assert set(pgd) == {(8.0, 5), (64.0, 5), (8.0, 2)}  # (8, 5) measured once: ladder and step check share it
    assert all(r["n"] == 16 for r in rows)


def test_zero_gradient_model_fails_unbounded_pgd_and_linear_model_passes(separable, one_thread):
    model, batches = separable
    analysis = ANALYSES.create("masking_checklist", **CHEAP)
    ordinary = _checks(analysis(model, batches))
    assert ordinary["unbounded_pgd_reaches_zero"]["mean"] == 1.0
    assert ordinary["unbounded_pgd_reaches_zero"]["measured"] <= 0.05
    assert ordinary["noise_weaker_than_pgd"]["mean"] == 1.0
    assert ordinary["more_steps_never_help"]["mean"] == 1.0
    masked = _checks(analysis(Rounded(model).eval(), batches))
    assert masked["unbounded_pgd_reaches_zero"]["mean"] == 0.0
    assert masked["unbounded_pgd_reaches_zero"]["measured"] > 0.5


def test_same_model_and_data_give_the_same_rows(separable, one_thread):
    model, batches = separable
    analysis = ANALYSES.create("masking_checklist", **CHEAP)
    assert analysis(model, batches) == analysis(model, batches)


def test_runs_on_a_tiny_snn(one_thread):
    from snnrobust.models import build_model

    torch.manual_seed(0)
    model = build_model("snn_vgg_tiny", 4, (3, 16, 16), T=2).eval()
    batches = [(torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,)))]
    rows = ANALYSES.create("masking_checklist", eps_255=[8, 64], ladder_steps=2, steps=[1, 2])(model, batches)
    assert set(_checks(rows)) == set(ITEMS)
    assert model.training is False


def test_paired_increase_is_one_sided():
    more, fewer = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0]), torch.tensor([0, 0, 0, 0, 0, 0, 0, 0])
    rise, low = paired_increase(more, fewer)
    assert rise == 0.5 and 0 < low < rise
    assert paired_increase(fewer, fewer) == (0.0, 0.0)


@pytest.mark.parametrize("options, message", [
    ({"eps_255": []}, "eps_255"),
    ({"eps_255": [8, -1]}, "eps_255"),
    ({"eps_255": [8, 300]}, "eps_255"),
    ({"eps_255": "8/255"}, "eps_255"),
    ({"steps": [7, -2]}, "steps"),
    ({"steps": [0, 7]}, "steps"),
    ({"steps": [7]}, "steps"),
    ({"steps": [7, 7]}, "steps"),
    ({"ladder_steps": 0}, "ladder_steps"),
    ({"zero_tol": 1.5}, "zero_tol"),
    ({"tol": -0.1}, "tol"),
    ({"check_eps_255": 0}, "check_eps_255"),
    ({"attack_options": {"eps": 0.1}}, "attack_options"),
    ({"attack_options": {"space": "voxel"}}, "space"),
    ({"attack_options": {"loss": "nope"}}, "loss"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_options_are_one_line_errors_at_config_check(options, message):
    from snnrobust.config import _check_analysis

    with pytest.raises(SnnRobustError) as err:
        _check_analysis({}, "masking_checklist", options)
    assert message in str(err.value) and "\n" not in str(err.value)
