"""Gradient sparsity per operation (trail Figs. 3/5) and Theorem 4.4's weight-gradient sparsity: exact values on
hand-built networks, agreement with an independent autograd computation w.r.t. intermediate tensors, SEW's
residual add as a module (both branches reported, outputs bit-identical), option checks at config time, and the
figures' data."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from conftest import REPO
from snnrobust.analysis import ANALYSES, grad_fy
from snnrobust.analysis.gradients import fy_two_logit
from snnrobust.analysis.weight_grads import per_sample_weight_grad
from snnrobust.config import validate_config
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model
from snnrobust.models.sew_connect import Add
from snnrobust.report import panels_trail as PT
from snnrobust.report.reproduced import analysis_measurements, view_rows

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def _rows(model, x, y, **options) -> list[dict]:
    return ANALYSES.create("op_sparsity", **options)(model, [(x, y)])


def _pick(rows: list[dict], statistic: str, **where) -> list[dict]:
    return [r for r in rows if r["statistic"] == statistic and all(r[k] == v for k, v in where.items())]


def _value(rows: list[dict], statistic: str, **where) -> float:
    (row,) = _pick(rows, statistic, **where)
    return row["mean"]


def _snn(neuron: str = "lean") -> nn.Module:
    """A small untrained SNN whose triangle surrogate (width 2) leaves some, not all, gradient entries zero."""
    return build_model("snn_vgg_tiny", 10, (3, 8, 8), T=2, width=0.5, gamma=2.0, neuron=neuron).eval()


def _pool_net(pool: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(pool, nn.Flatten(), nn.Linear(4, 3)).eval()


def _distinct_input() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 1×4×4 images whose 16 values are all different (every 2×2 window has one maximum)."""
    return torch.randperm(32, generator=torch.Generator().manual_seed(1)).float().view(2, 1, 4, 4) / 32, \
        torch.tensor([0, 2])


# --- exact values on hand-built networks ------------------------------------------------------------------

def test_max_pool_input_gradient_is_exactly_three_quarters_zero():
    # ∂MaxPool/∂x is non-zero only at each window's maximum (Eq. 6): 3 of the 4 entries of every 2×2 window are 0
    x, y = _distinct_input()
    rows = _rows(_pool_net(nn.MaxPool2d(2)), x, y)
    (pool,) = _pick(rows, "zero_fraction", op_kind="pool")
    assert pool["mean"] == 0.75 and pool["std"] == 0.0 and pool["n"] == 2 and pool["op"] == "0"
    assert _value(rows, "zero_fraction", op_kind="input") == 0.75  # the pool is the input's only consumer
    assert _value(rows, "zero_fraction", op_kind="linear") == 0.0
    assert _value(rows, "grad_norm", op_kind="pool") > 0  # sparse, not shattered


def test_avg_pool_input_gradient_has_no_zeros():
    # Eq. 7: average pooling spreads the gradient over the whole window
    x, y = _distinct_input()
    assert _value(_rows(_pool_net(nn.AvgPool2d(2)), x, y), "zero_fraction", op_kind="pool") == 0.0


def test_first_layer_weight_gradient_sparsity_is_per_sample():
    # f_y touches 2 of the 3 logits, so a sample's gradient of the last layer's weight has one zero row of 3
    x, y = _distinct_input()
    rows = _rows(_pool_net(nn.MaxPool2d(2)), x, y)
    (weight,) = _pick(rows, "weight_zero_fraction")
    assert weight["op"] == "2" and weight["op_kind"] == "linear" and weight["mean"] == pytest.approx(1 / 3)


# --- agreement with autograd w.r.t. intermediate tensors ---------------------------------------------------

def _split_gradient(front: nn.Module, back: nn.Module, start: torch.Tensor, y: torch.Tensor, time_mean: bool):
    """∇h Σ f_y with h = front(start) made a leaf: the gradient w.r.t. the input of ``back``'s first operation."""
    h = front(start).detach().requires_grad_(True)
    out = back(h)
    (g,) = torch.autograd.grad(fy_two_logit(out.mean(0) if time_mean else out, y).sum(), h)
    return g


def _zero_and_norm(g: torch.Tensor, sample_dim: int) -> tuple[float, float]:
    flat = g.movedim(sample_dim, 0).flatten(1)
    return float((flat == 0).double().mean(1).mean()), float(flat.double().norm(dim=1).mean())


@pytest.mark.parametrize("neuron", ["lean", "spikingjelly"])
def test_every_operation_agrees_with_autograd_on_a_small_snn(neuron):
    model = _snn(neuron)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 3, 8, 8, generator=g), torch.tensor([0, 3, 5, 9])
    rows = _rows(model, x, y)
    backbone, s = model.backbone, model.encode(x)
    checked, interior = 0, 0
    for row in _pick(rows, "zero_fraction"):
        if not row["op"].startswith("backbone."):
            continue
        k = int(row["op"].split(".")[1])
        functional.reset_net(backbone)  # spikingjelly's neurons keep their membrane state between calls
        zeros, norm = _zero_and_norm(_split_gradient(backbone[:k], backbone[k:], s, y, time_mean=True), 1)
        assert row["mean"] == pytest.approx(zeros, abs=1e-12), row["op"]
        assert _value(rows, "grad_norm", op=row["op"]) == pytest.approx(norm, rel=1e-5), row["op"]
        checked, interior = checked + 1, interior + (0 < zeros < 1)
    assert checked == len(backbone) - 1 and interior > 0  # every op but Flatten; some genuinely sparse
    # the model input (pixels) is grad_norms' ∇x f_y
    pixel = grad_fy(model, x, y).flatten(1)
    assert _value(rows, "zero_fraction", op="input") == pytest.approx(float((pixel == 0).double().mean()))
    assert _value(rows, "grad_norm", op="input") == pytest.approx(float(pixel.double().norm(dim=1).mean()), rel=1e-5)


def test_first_layer_weight_zero_fraction_agrees_with_one_backward_per_sample():
    model = _snn()
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 3, 8, 8, generator=g), torch.tensor([1, 4, 7])
    conv = model.backbone[0]
    fractions = []
    for b in range(3):
        (gw,) = torch.autograd.grad(fy_two_logit(model(x[b:b + 1]), y[b:b + 1]).sum(), conv.weight)
        fractions.append(float((gw == 0).double().mean()))
    (row,) = _pick(_rows(model, x, y, kinds=["conv"]), "weight_zero_fraction")
    assert row["op"] == "backbone.0" and row["mean"] == pytest.approx(np.mean(fractions), abs=1e-12)


@pytest.mark.parametrize("layer, x_shape", [(nn.Conv2d(3, 4, 3, padding=1), (2, 5, 3, 6, 6)),
                                            (nn.Linear(6, 4), (2, 5, 6))], ids=["conv", "linear"])
def test_per_sample_weight_gradients_sum_to_the_batch_gradient(layer, x_shape):
    # multi-step input [T, B, ...]: sample dim 1, T folded into the layer's batch
    torch.manual_seed(0)
    x = torch.randn(x_shape)
    out = layer(x.flatten(0, 1)).unflatten(0, x_shape[:2])
    g_out = torch.randn_like(out)
    (batch,) = torch.autograd.grad((out * g_out).sum(), layer.weight)
    per_sample = per_sample_weight_grad(layer, x, g_out, sample_dim=1)
    assert per_sample.shape == (5, *layer.weight.shape)
    torch.testing.assert_close(per_sample.sum(0), batch, rtol=1e-5, atol=1e-5)
    (first,) = torch.autograd.grad((layer(x[:, 0]) * g_out[:, 0]).sum(), layer.weight)
    torch.testing.assert_close(per_sample[0], first, rtol=1e-5, atol=1e-5)


def test_in_place_relu_reports_the_gradient_of_its_own_input():
    # an in-place module overwrites its input: the tap must still see ∂L/∂(its input), not the ReLU's output
    torch.manual_seed(0)
    front = nn.Conv2d(1, 2, 3, padding=1)
    model = nn.Sequential(front, nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(32, 3)).eval()
    x, y = torch.randn(3, 1, 4, 4), torch.tensor([0, 1, 2])
    back = lambda h: model[1:](h.clone())  # noqa: E731  (the leaf h itself must not be overwritten)
    zeros, norm = _zero_and_norm(_split_gradient(front, back, x, y, time_mean=False), 0)
    rows = _rows(model, x, y, kinds=["neuron"])
    assert _value(rows, "zero_fraction", op="1") == pytest.approx(zeros) and 0 < zeros < 1
    assert _value(rows, "grad_norm", op="1") == pytest.approx(norm, rel=1e-5)


# --- SEW-ResNet's residual add ------------------------------------------------------------------------------

def _sew(depth: int, **options) -> nn.Module:
    torch.manual_seed(0)
    return build_model(f"sew_resnet{depth}", 10, (3, 8, 8), T=2, surrogate="atan", gamma=2.0, **options).eval()


def test_sew_add_rows_cover_both_branches():
    model = _sew(18)
    adds = [name for name, m in model.named_modules() if isinstance(m, Add)]
    assert len(adds) == 8  # 4 stages × 2 BasicBlocks
    x, y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 2])
    rows = _rows(model, x, y, kinds=["add"])
    for stat in ("zero_fraction", "grad_norm"):
        got = {(r["op"], r["branch"]): r["mean"] for r in _pick(rows, stat)}
        assert set(got) == {(a, b) for a in adds for b in (0, 1)}
        for a in adds:  # ∂(a + b)/∂a = ∂(a + b)/∂b: both branches carry the add's output gradient
            assert got[(a, 0)] == got[(a, 1)]
    assert {r["op_kind"] for r in _pick(rows, "zero_fraction")} == {"add"}
    assert any(r["mean"] > 0 for r in _pick(rows, "grad_norm"))


def _spikingjelly_blocks(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with spikingjelly's own SEW blocks back (their forward calls ``sew_function``)."""
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(getattr(module, "connect", None), Add):
            module.__class__ = type(module).__bases__[-1]
            del module.connect
    return plain


@pytest.mark.parametrize("depth", [18, 50], ids=["BasicBlock", "Bottleneck"])
def test_add_module_keeps_sew_outputs_and_gradients_bit_identical(depth):
    model = _sew(depth, stem="imagenet", width=0.25)
    plain = _spikingjelly_blocks(model)
    assert any(isinstance(m, Add) for m in model.modules())
    assert not any(isinstance(m, Add) for m in plain.modules())
    assert list(model.state_dict()) == list(plain.state_dict())  # checkpoints load either way
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([4, 7])
    assert torch.equal(model(x), plain(x))
    assert torch.equal(grad_fy(model, x, y), grad_fy(plain, x, y))


# --- options ----------------------------------------------------------------------------------------------

def test_kinds_selects_the_operations_reported():
    model = _snn()
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    rows = _rows(model, x, y, kinds=["pool", "neuron"])
    assert {r["op_kind"] for r in _pick(rows, "zero_fraction")} == {"pool", "neuron"}
    assert {r["op_kind"] for r in _pick(rows, "grad_norm")} == {"pool", "neuron"}
    assert [r["op"] for r in _pick(rows, "weight_zero_fraction")] == ["backbone.0"]
    everything = _rows(model, x, y)
    assert {r["op_kind"] for r in _pick(everything, "zero_fraction")} == {"input", "conv", "bn", "neuron", "pool",
                                                                          "linear"}
    same = {(r["op"], r["op_index"]): r["mean"] for r in _pick(everything, "zero_fraction")}
    assert all(same[(r["op"], r["op_index"])] == r["mean"] for r in _pick(rows, "zero_fraction"))
    assert not _pick(_rows(model, x, y, kinds=["pool"], weight=False), "weight_zero_fraction")
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())  # hooks removed


def _config(options: dict) -> dict:
    run = {"dataset": ["digits"], "model": ["snn"], "method": ["vanilla"], "seed": [0]}
    return {
        "scale": "default",
        "datasets": {"digits": {"source": "digits"}},
        "models": {"snn": {"arch": "snn_vgg_tiny", "options": {"T": 2}}},
        "methods": {"vanilla": {"name": "vanilla"}},
        "training": {"defaults": {"epochs": 1, "batch_size": 16, "lr": 0.01}},
        "attacks": {"fgsm": {"name": "fgsm"}},
        "analyses": {"ops": {"name": "op_sparsity", "options": options}},
        "evaluation": {"n_eval": 32},
        "studies": {"trail": {"train": [run], "analyses": [{**run, "analysis": ["ops"]}],
                              "report": {"paper": "sparsity_trail"}}},
    }


BAD_OPTIONS = [
    ({"kinds": ["conv", "lstm"]}, "config analyses.ops.options: option 'kinds' of analysis 'op_sparsity' must be "
                                  "one of 'input', 'conv', 'bn', 'pool', 'neuron', 'add', 'linear'"),
    ({"kinds": []}, "config analyses.ops.options: option kinds must name at least one operation kind"),
    ({"attack": {"name": "pgd", "options": {"steps": 3}}}, "option attack needs options.eps"),
    ({"attack": {"name": "pgx", "options": {"eps": 0.03}}}, "unknown attack 'pgx'"),
    ({"attack": {"name": "pgd", "options": {"eps": 0.03, "space": "spike"}}, "space": "pixel"},
     "option space 'pixel' differs from the attack's space 'spike'"),
]


@pytest.mark.parametrize("options, needle", BAD_OPTIONS, ids=[str(o) for o, _ in BAD_OPTIONS])
def test_bad_options_fail_in_one_line_at_the_config_check(options, needle):
    with pytest.raises(SnnRobustError) as info:
        validate_config(_config(options), SCHEMA)
    message = str(info.value)
    assert "\n" not in message and needle in message, message


def test_good_options_pass_the_config_check():
    plan = validate_config(_config({"kinds": ["pool", "add"], "attack": {"name": "pgd", "options": {
        "eps": 0.03, "steps": 2, "space": "spike"}}}), SCHEMA)
    assert len(plan.analyses) == 1


def test_attack_option_measures_at_the_adversarial_points():
    from snnrobust.attacks import make_attack

    model = _snn()
    x, y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4)), torch.tensor([2, 5])
    spec = {"name": "pgd", "options": {"eps": 0.1, "steps": 2, "alpha": 0.05, "space": "spike"}}
    rows = _rows(model, x, y, attack=spec)
    assert {(r["attack"], r["eps"], r["space"]) for r in rows} == {("pgd", 0.1, "spike")}
    z = make_attack("pgd", **spec["options"])(model, x, y, torch.Generator().manual_seed(0))
    s = z.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fy_two_logit(model.forward_encoded(s), y).sum(), s)
    zeros, norm = _zero_and_norm(g, 1)  # the input in spike space is the encoded sequence [T, B, ...]
    assert _value(rows, "zero_fraction", op="input") == pytest.approx(zeros, abs=1e-12)
    assert _value(rows, "grad_norm", op="input") == pytest.approx(norm, rel=1e-5)
    assert _pick(rows, "zero_fraction", op="input")[0]["op_type"] == "spike"


# --- the figures' data ---------------------------------------------------------------------------------------

def _frame(models: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """op_sparsity rows of several models: conv 10 %, the pool ``models[m]``, a global pool 0 % zeros."""
    rows = []
    for model, pool in models.items():
        ops = ((1, "conv1", "conv", "Conv2d", 0.1), (2, "maxpool", "pool", "MaxPool2d", pool),
               (3, "layer1.0.conv1", "conv", "Conv2d", 0.3), (4, "avgpool", "pool", "AdaptiveAvgPool2d", 0.0))
        for index, op, kind, kind_type, zeros in ops:
            for stat, value in (("zero_fraction", zeros), ("grad_norm", 2.0 * index)):
                rows.append(dict(model=model, seed=seed, analysis_name="op_sparsity", statistic=stat, mean=value,
                                 op=op, op_kind=kind, op_type=kind_type, op_index=index, branch=0, n=8))
        rows.append(dict(model=model, seed=seed, analysis_name="op_sparsity", statistic="weight_zero_fraction",
                         mean=pool / 2, op="conv1", op_kind="conv", op_type="Conv2d", op_index=1, branch=0, n=8))
    return analysis_measurements(pd.DataFrame(rows))


def test_op_sparsity_panels_are_bars_per_kind_in_network_order():
    data = PT.op_sparsity_panels(_frame({"sew_max": 0.75, "sew_avg": 0.0}))
    zeros = data.panel("zero fraction")
    assert zeros.kind == "bar" and zeros.categories == ("conv", "pool", "global pool")
    assert zeros.labels == ["sew_max", "sew_avg"]
    bars = dict(zip(zeros.get("sew_max").points["x"], zeros.get("sew_max").points["y"]))
    assert bars == pytest.approx({"conv": 20.0, "pool": 75.0, "global pool": 0.0})  # % ; conv = mean of 10 and 30
    assert dict(zip(zeros.get("sew_avg").points["x"], zeros.get("sew_avg").points["y"]))["pool"] == 0.0
    norms = data.panel("gradient norm")
    assert dict(zip(norms.get("sew_max").points["x"], norms.get("sew_max").points["y"]))["conv"] == 4.0


def test_sparsity_vs_weight_grad_prints_pearson_r_over_runs():
    pools = {"a": 0.1, "b": 0.5, "c": 0.6}
    data = PT.sparsity_vs_weight_grad_panels(_frame(pools))
    (panel,) = data.panels
    assert panel.labels == ["a", "b", "c"]
    assert [float(s.points["x"].iloc[0]) for s in panel.series] == pytest.approx([10.0] * 3)  # conv1's input
    assert [float(s.points["y"].iloc[0]) for s in panel.series] == pytest.approx([5.0, 25.0, 30.0])
    assert "r n/a" in panel.title  # x is constant: r says nothing
    assert PT.pearson(pd.Series([1.0, 2.0, 4.0]), pd.Series([2.0, 4.1, 7.9])) == pytest.approx(
        np.corrcoef([1, 2, 4], [2, 4.1, 7.9])[0, 1])
    assert PT.pearson(pd.Series([1.0, 2.0]), pd.Series([2.0, 3.0])) is None


def test_theorem44_table_lists_each_run_and_pearson_r():
    """The numbers under the Theorem 4.4 figure: one row per run (x, y in %) and r over the runs, computed here
    independently with numpy."""
    frame = _frame({"a": 0.1, "b": 0.5, "c": 0.6})
    frame.loc[(frame["model"] == "c") & (frame["op"] == "conv1") & (frame["metric"] == "zero_fraction"), "value"] = 0.4
    table = PT.theorem44_table(frame)
    runs = table[table["model"] != "all runs"]
    assert list(runs["model"]) == ["a", "b", "c"]
    x, y = runs.iloc[:, -3].astype(float), runs.iloc[:, -2].astype(float)
    assert list(x) == pytest.approx([10.0, 10.0, 40.0]) and list(y) == pytest.approx([5.0, 25.0, 30.0])
    (r,) = table.loc[table["model"] == "all runs", "pearson_r"]
    assert float(r) == pytest.approx(np.corrcoef([10, 10, 40], [5, 25, 30])[0, 1], abs=0.005)
    assert PT.theorem44_table(frame[frame["metric"] != "weight_zero_fraction"]).empty


def test_the_view_and_both_figures_from_real_rows(tmp_path):
    from snnrobust.report.figures import draw

    x, y = _distinct_input()
    frames = []
    for model, pool in (("max", nn.MaxPool2d(2)), ("avg", nn.AvgPool2d(2)), ("max_again", nn.MaxPool2d(2))):
        rows = _rows(_pool_net(pool), x, y)
        frames.append(pd.DataFrame([{**r, "model": model, "seed": 0, "analysis_name": "op_sparsity"} for r in rows]))
    other = pd.DataFrame([dict(model="max", seed=0, analysis_name="grad_norms", statistic="l2", mean=1.0)])
    frame = analysis_measurements(pd.concat([*frames, other], ignore_index=True))
    view = view_rows(frame, "op_sparsity")
    assert set(view["analysis_name"]) == {"op_sparsity"} and len(view) == len(frame) - 1
    assert PT.op_sparsity_panels(view).panel("zero fraction").categories == ("input", "pool", "linear")
    for kind, shape in PT.TRAIL_PANELS.items():
        out = draw(shape(view_rows(frame, kind)), tmp_path / f"{kind}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_figures_trail_registers_both_figures():
    # in a child process: registering here would change FIGURES for every later test of this session
    code = ("from snnrobust.report import figures_trail; from snnrobust.report.figures import FIGURES; "
            "print(sorted(k for k in ('op_sparsity', 'sparsity_vs_weight_grad') if k in FIGURES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['op_sparsity', 'sparsity_vs_weight_grad']"
