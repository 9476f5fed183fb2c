"""The ``redundancy`` analysis (Spiking-PGD Sec. 3.2, Appendix A Tables 1-2, Fig. 1) and its heatmap figure.

Rows cover iterations t = 1..steps (``iteration`` = t − 1 = 0..steps−1, the paper's numbering): PGD's ``steps``
passes see the iterates x_0..x_{steps−1}, and the analysis adds one pass at the returned x_steps, so a 10-step
attack gives the paper's ten rows 0..9 (the claim ``activation_change_decays`` compares iteration 9 with 0).
"""

import pytest
import torch

from snnrobust.analysis import ANALYSES
from snnrobust.attacks import make_attack
from snnrobust.errors import SnnRobustError

STEPS = 3


def _batch(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def _rows(model, **opts):
    x, y = _batch()
    return ANALYSES.create("redundancy", **{"steps": STEPS, **opts})(model, [(x, y)])


def test_rows_cover_every_layer_and_iteration(toy_model):
    """One row per statistic × Conv/Linear layer × iteration 0..steps−1, each over every sample."""
    rows = _rows(toy_model)
    keys = {(r["statistic"], r["layer"], r["layer_index"], r["iteration"]) for r in rows}
    want = {(s, name, i, it) for s in ("activation_relative_change", "gradient_relative_change")
            for i, name in enumerate(("1", "3"), start=1) for it in range(STEPS)}
    assert keys == want and len(rows) == len(want)
    assert all(r["n"] == 6 and r["mean"] is not None and r["mean"] > 0 for r in rows)


def test_activation_change_matches_hand_computation(toy_model):
    """Rerun the same PGD iterates by hand (same options, no random start) and compute ‖a_t − a_{t−1}‖/‖a_t‖ per
    sample on the first Linear's output: equal to 1e-6."""
    x, y = _batch()
    rows = _rows(toy_model)
    z, iterates = x.clone(), [x.clone()]
    for _ in range(STEPS):  # I-FGSM/PGD without random start: z ← Π(z + α·sign ∇z CE)
        z.requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(toy_model(z), y, reduction="sum"), z)
        z = torch.clamp(torch.clamp(z.detach() + 2 / 255 * g.sign(), x - 8 / 255, x + 8 / 255), 0, 1)
        iterates.append(z.clone())
    with torch.no_grad():
        acts = [toy_model[1](toy_model[0](it)).double() for it in iterates]
    for t in range(1, STEPS + 1):
        per = (acts[t] - acts[t - 1]).norm(dim=1) / acts[t].norm(dim=1)
        row = next(r for r in rows if r["statistic"] == "activation_relative_change" and r["layer"] == "1"
                   and r["iteration"] == t - 1)
        assert row["mean"] == pytest.approx(float(per.mean()), abs=1e-6)
        assert row["std"] == pytest.approx(float(per.std(unbiased=False)), abs=1e-6)


def test_zero_budget_changes_nothing(toy_model):
    """eps = 0: every iterate is x, so every activation and gradient change is 0."""
    rows = _rows(toy_model, eps=0.0)
    assert rows and all(r["mean"] == 0.0 for r in rows)


def test_layers_option_and_snn(toy_model):
    """``layers`` narrows the rows; an SNN's [T, B, ...] outputs are taken per sample across T."""
    assert {r["layer"] for r in _rows(toy_model, layers=["3"])} == {"3"}
    from snnrobust.models import build_model

    torch.manual_seed(0)
    snn = build_model("snn_vgg_tiny", 4, (3, 16, 16), T=2)
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():  # settle BatchNorm on the data so neurons fire (an untrained net is silent otherwise)
        for m in snn.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None
        snn.train()(x)
    snn.eval()
    rows = ANALYSES.create("redundancy", steps=2)(snn, [(x, torch.tensor([0, 1, 2, 3]))])
    layers = {r["layer"] for r in rows}
    assert len(layers) == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in snn.modules())
    assert all(r["n"] == 4 for r in rows if r["statistic"] == "activation_relative_change")


@pytest.mark.parametrize("opts, match", [({"steps": 0}, "steps"), ({"layers": ["nope"]}, "unknown layer")])
def test_bad_options_fail_in_one_line(toy_model, opts, match):
    with pytest.raises(SnnRobustError, match=match) as err:
        _rows(toy_model, **opts)
    assert "\n" not in str(err.value)


def test_attack_is_left_as_it_was(toy_model):
    """The per-iteration hook is removed after the run: the analysis's PGD is the registered one again."""
    analysis = ANALYSES.create("redundancy", steps=2)
    analysis(toy_model, [_batch()])
    assert "loss_gradient" not in vars(analysis.attack) and "perturb" not in vars(analysis.attack)
    x, y = _batch()
    ref = make_attack("pgd", eps=8 / 255, steps=2, alpha=2 / 255, random_start=False)(toy_model, x, y)
    assert torch.equal(analysis.attack(toy_model, x, y), ref)


def test_heatmap_panel_has_one_cell_per_layer_and_iteration(toy_model, tmp_path):
    """Fig. 1 (right): one panel per run and statistic, a (layer × iteration) grid with every cell filled."""
    import pandas as pd

    from snnrobust.report.figures import FIGURES
    from snnrobust.report.panels_spgd import redundancy_heatmap_panels

    frames = []
    for model, method in (("snn_a", "vanilla"), ("ann_b", "pgd_at")):
        frame = pd.DataFrame(_rows(toy_model))
        frames.append(frame.assign(model=model, method=method, metric=frame["statistic"], value=frame["mean"]))
    data = redundancy_heatmap_panels(pd.concat(frames, ignore_index=True))
    assert len(data.panels) == 4 and data.ncols == 2
    for panel in data.panels:
        assert panel.kind == "heatmap" and panel.image.shape == (2, STEPS)
        assert panel.rows == ("1", "3") and panel.categories == tuple(range(STEPS))
        assert not pd.isna(panel.image).any()
    assert FIGURES.get("redundancy_heatmap")(pd.concat(frames, ignore_index=True), tmp_path / "f.png").exists()
