"""SR paper analyses: ∇x f_y histogram (Fig. 4), heatmaps (Fig. 5), random vs adversarial vulnerability
(Eqs. 5-6) and the data of Theorem 4.3 (Eq. 7), each checked against an independent computation."""

import math

import numpy as np
import pytest
import torch

from snnrobust.analysis import ANALYSES
from snnrobust.analysis.heatmaps import pixel_map
from snnrobust.analysis.histograms import gradient_histogram
from snnrobust.analysis.vulnerability import fy_change, vulnerability_stats
from snnrobust.errors import SnnRobustError


def _rows(rows, statistic):
    return [r for r in rows if r["statistic"] == statistic]


def _linear(in_features: int, classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_features, classes)).double().eval()


def _sigmoid_prime_times_u(model, x, y):
    """Independent ∇x f_y of a linear model: σ'(m)·(w_y − w_ỹ), m = z_y − z_ỹ (float64, by hand)."""
    w = model[1].weight.detach()
    with torch.no_grad():
        z = model(x)
    other = z.scatter(1, y[:, None], float("-inf")).argmax(1)
    m = z.gather(1, y[:, None]).squeeze(1) - z.gather(1, other[:, None]).squeeze(1)
    u = w[y] - w[other]
    s = torch.sigmoid(m)
    return (s * (1 - s))[:, None] * u, m, u


# --- grad_hist (Fig. 4) -------------------------------------------------------------------------------

def test_histogram_matches_numpy_and_counts_zeros():
    g = torch.tensor([[0.0, 0.0, 0.5, -1.0, 1.0, 0.25, 0.0, -0.3],
                      [0.0, 2.0, -4.0, 0.0, 0.0, 0.0, 1.0, 3.9]])
    out = gradient_histogram(g, bins=4, limit=1.0, scale="sample_max")
    width = 0.5
    for i in range(2):
        scaled = g[i].numpy() / np.abs(g[i].numpy()).max()
        counts, _ = np.histogram(scaled, bins=4, range=(-1, 1))  # numpy: the last bin includes +1, as ours
        np.testing.assert_allclose(out["hist"][i].numpy(), counts / (g.shape[1] * width))
    # a density: Σ density · width = 1 on every sample (nothing outside [−1, 1] after max scaling)
    torch.testing.assert_close(out["hist"].sum(1) * width, torch.ones(2, dtype=torch.float64))
    assert out["zero_fraction"].tolist() == [3 / 8, 4 / 8]  # direct count of exact zeros
    assert out["outside_fraction"].tolist() == [0.0, 0.0]


def test_histogram_unscaled_counts_components_outside_the_range():
    g = torch.tensor([[0.0, 0.2, -0.7, 3.0, -2.0, 0.0]])
    out = gradient_histogram(g, bins=5, limit=1.0, scale="none", zero_tol=0.25)
    width = 2 / 5
    assert out["outside_fraction"].item() == pytest.approx(2 / 6)
    assert (out["hist"].sum() * width).item() == pytest.approx(1 - 2 / 6)
    assert out["zero_fraction"].item() == pytest.approx(3 / 6)  # |g| ≤ 0.25: 0, 0.2, 0


def test_histogram_of_an_all_zero_gradient_is_finite():
    out = gradient_histogram(torch.zeros(1, 10), bins=3, limit=1.0)
    assert torch.isfinite(out["hist"]).all() and out["hist"][0].tolist()[1] == pytest.approx(1 / (2 / 3))


def test_grad_hist_rows_integrate_to_one_on_a_model(toy_model):
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    analysis = ANALYSES.create("grad_hist", bins=21)
    rows = analysis(toy_model, [(x[:4], y[:4]), (x[4:], y[4:])])
    hist = _rows(rows, "hist")
    assert len(hist) == 21 and [r["bin"] for r in hist] == list(range(21))
    assert hist[0]["bin_left"] == -1.0 and hist[-1]["bin_right"] == 1.0
    assert sum(r["mean"] * (r["bin_right"] - r["bin_left"]) for r in hist) == pytest.approx(1.0)
    assert all(r["n"] == 6 for r in hist)
    from snnrobust.analysis import grad_fy

    g = grad_fy(toy_model, x, y)
    (zero,) = _rows(rows, "zero_fraction")
    assert zero["mean"] == pytest.approx((g == 0).double().mean().item())


def test_grad_hist_bad_option_is_one_line_error():
    with pytest.raises(SnnRobustError, match="option 'scale' of analysis 'grad_hist'"):
        ANALYSES.create("grad_hist", scale="global")


# --- grad_heatmap (Fig. 5) ----------------------------------------------------------------------------

def test_heatmap_rows_are_the_channel_sum_of_abs_gradient():
    model = _linear(3 * 8 * 8, 3)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.tensor([2, 0, 1, 1])
    rows = ANALYSES.create("grad_heatmap", samples=3)(model, [(x[:2], y[:2]), (x[2:], y[2:])])
    grad, _, _ = _sigmoid_prime_times_u(model, x, y)
    expected = grad.view(4, 3, 8, 8).abs().sum(1)  # Σ_c |∂f_y/∂x_c|
    heat = _rows(rows, "heatmap")
    assert len(heat) == 3 * 64 and {r["sample"] for r in heat} == {0, 1, 2}
    for r in heat:
        assert r["mean"] == pytest.approx(expected[r["sample"], r["row"], r["col"]].item(), rel=1e-9)
        assert r["label"] == int(y[r["sample"]])
    image = _rows(rows, "image")
    assert image[5]["mean"] == pytest.approx(x[image[5]["sample"], :, image[5]["row"], image[5]["col"]].mean().item())


def test_heatmap_is_mean_pooled_to_32x32():
    model = _linear(3 * 64 * 64, 2, seed=3)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = torch.tensor([1])
    rows = ANALYSES.create("grad_heatmap", samples=1, image=False)(model, [(x, y)])
    grad, _, _ = _sigmoid_prime_times_u(model, x, y)
    full = grad.view(3, 64, 64).abs().sum(0)
    pooled = full.view(32, 2, 32, 2).mean((1, 3))  # 2×2 blocks by hand
    assert len(rows) == 32 * 32 and all(r["statistic"] == "heatmap" for r in rows)
    got = torch.zeros(32, 32, dtype=torch.float64)
    for r in rows:
        got[r["row"], r["col"]] = r["mean"]
    torch.testing.assert_close(got, pooled)


def test_heatmap_needs_image_inputs():
    with pytest.raises(SnnRobustError, match="grad_heatmap needs image inputs"):
        pixel_map(torch.zeros(2, 5), 32, "sum")


# --- vulnerability (Eqs. 5-7) -------------------------------------------------------------------------

def test_vulnerability_of_a_linear_function_matches_the_closed_form():
    """f(x) = w·x: f(x + εδ) − f(x) = ε w·δ, with E δ_iδ_j = δ_ij / 3 for δ ~ U[−1, 1]^m, so
    ρ_rand = ε²‖w‖₂²/3 (Eq. 19 is exact), ρ_adv = ε² sup |w·δ|² = ε²‖w‖₁² (δ = sign w, Eq. 20), and the
    ratio is 3‖w‖₁²/‖w‖₂²; the gradient is w, so ‖∇f‖_0 counts w's non-zero entries."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, generator=g, dtype=torch.float64)
    w[[1, 5, 6, 20]] = 0.0
    x = torch.rand(8, 24, generator=g, dtype=torch.float64)
    eps = 0.05
    out = vulnerability_stats(lambda z: z @ w, x, eps, draws=3000, steps=3,
                              generator=torch.Generator().manual_seed(1), squash=False)
    l1, l2sq = w.abs().sum().item(), w.square().sum().item()
    torch.testing.assert_close(out["rho_adv"], torch.full((8,), eps**2 * l1**2, dtype=torch.float64))
    assert out["rho_rand"].mean().item() == pytest.approx(eps**2 * l2sq / 3, rel=0.05)
    ratio = (out["rho_adv"] / out["rho_rand"]).mean().item()
    assert ratio == pytest.approx(3 * l1**2 / l2sq, rel=0.06)
    assert out["l0_count"].tolist() == [20.0] * 8


def test_vulnerability_analysis_on_a_two_class_linear_model():
    """Two classes: f_y = σ(m), m = u·x + b linear (u = w_y − w_ỹ), so over the cube m moves by at most
    ε‖u‖₁ and, σ being monotone, ρ_adv = max over ± of (σ(m ± ε‖u‖₁) − σ(m))² exactly; for small ε,
    ρ_rand ≈ ε²σ'(m)²‖u‖₂²/3; ‖∇f_y‖_0 is the count of non-zero entries of w_0 − w_1 (here of the weights:
    10 inputs have zero weight in both rows; equal non-zero weights would leave FMA rounding residue)."""
    model = _linear(3 * 4 * 4, 2, seed=4)
    with torch.no_grad():
        model[1].weight[:, :10] = 0.0  # 10 inputs with no effect on the margin
    g = torch.Generator().manual_seed(5)
    x = torch.rand(40, 3, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    eps = 0.01
    rows = ANALYSES.create("vulnerability", eps=eps, draws=250, steps=2)(model, [(x[:30], y[:30]), (x[30:], y[30:])])
    stat = {r["statistic"]: r for r in rows}
    _, m, u = _sigmoid_prime_times_u(model, x, y)
    l1, l2sq = u.abs().sum(1), u.square().sum(1)
    s = torch.sigmoid(m)
    adv = torch.maximum((torch.sigmoid(m + eps * l1) - s).square(), (torch.sigmoid(m - eps * l1) - s).square())
    assert stat["rho_adv"]["mean"] == pytest.approx(adv.mean().item(), rel=1e-9)
    rand = eps**2 * (s * (1 - s)).square() * l2sq / 3
    assert stat["rho_rand"]["mean"] == pytest.approx(rand.mean().item(), rel=0.05)
    assert stat["taylor_ratio"]["mean"] == pytest.approx((3 * l1.square() / l2sq).mean().item(), rel=1e-9)
    assert stat["ratio"]["mean"] == pytest.approx(stat["taylor_ratio"]["mean"], rel=0.06)
    nonzero = int((model[1].weight != 0).any(0).sum())
    assert nonzero == 48 - 10
    assert stat["l0_count"]["mean"] == nonzero and stat["bound_3l0"]["mean"] == 3 * nonzero
    assert stat["upper_holds"]["mean"] == 1.0 and stat["lower_holds"]["mean"] == 1.0
    assert stat["rand_zero"]["mean"] == 0.0 and all(r["n"] == 40 for r in rows)


def test_vulnerability_is_seeded(toy_model):
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    y = torch.tensor([0, 1, 2])
    make = lambda seed: ANALYSES.create("vulnerability", draws=4, steps=1, seed=seed)(toy_model, [(x, y)])  # noqa: E731
    first, again, other = make(0), make(0), make(1)
    assert first == again
    assert first[0]["mean"] != other[0]["mean"]  # rho_rand depends on the draws


def test_vulnerability_of_a_constant_model_has_no_ratio():
    model = _linear(12, 3)
    with torch.no_grad():
        model[1].weight.zero_()
    x = torch.rand(2, 3, 2, 2, dtype=torch.float64)
    rows = ANALYSES.create("vulnerability", draws=2, steps=1)(model, [(x, torch.tensor([0, 1]))])
    stat = {r["statistic"]: r for r in rows}
    assert stat["rand_zero"]["mean"] == 1.0 and stat["l0_count"]["mean"] == 0.0
    assert stat["ratio"]["n"] == 0 and stat["ratio"]["mean"] is None  # undefined (ρ_rand = 0), JSON null


def test_fy_change_survives_float32_saturation():
    m0, m1 = torch.tensor([30.0, -3.0]), torch.tensor([25.0, -1.0])
    assert torch.sigmoid(m1[0]) - torch.sigmoid(m0[0]) == 0  # the naive difference cancels
    ref = torch.sigmoid(m1.double()) - torch.sigmoid(m0.double())
    torch.testing.assert_close(fy_change(m0, m1, squash=True).double(), ref, rtol=1e-4, atol=0.0)
    assert math.isclose(fy_change(m0, m1, squash=False)[1].item(), 2.0)
