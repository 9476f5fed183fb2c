"""What each figure shows, checked on its pure data function (``panels``): the panels, the series in each, and
their points; the aggregation counts a measurement once, never averages evaluation subsets, and draws a band
only from seeds (or given intervals). The drawing itself is only smoke-tested: it draws exactly these."""

from __future__ import annotations

import pandas as pd
import pytest

from snnrobust.report import panels as P
from snnrobust.report.figures import FIGURES
from snnrobust.report.reproduced import attack_measurements


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _xs(series: P.Series) -> list[float]:
    return [float(x) for x in series.points["x"]]


def _ys(series: P.Series) -> list[float]:
    return [float(y) for y in series.points["y"]]


# --- the shared aggregation ---------------------------------------------------------------------------------

def test_duplicated_measurement_counts_once_and_draws_no_band():
    rows = _frame([dict(model="vgg", seed=0, n_eval=64, x=1.0, value=90.0)] * 5)
    points, notes = P.aggregate(rows, ["model"], "x")
    assert len(points) == 1 and points["y"].iloc[0] == 90.0 and points["seeds"].iloc[0] == 1
    assert points[["low", "high"]].isna().all().all() and notes == []


def test_subsets_are_never_averaged_the_largest_is_kept_and_noted():
    rows = _frame([dict(model="vgg", seed=0, n_eval=n, x=1.0, value=v) for n, v in ((64, 80.0), (32, 40.0))])
    points, notes = P.aggregate(rows, ["model"], "x", "FGSM")
    assert points["y"].tolist() == [80.0] and points["subset"].tolist() == [64]
    assert len(notes) == 1 and "n = 32" in notes[0] and "n = 64" in notes[0]


def test_seeds_are_averaged_with_their_min_max_as_band():
    rows = _frame([dict(model="vgg", seed=s, x=1.0, value=v) for s, v in ((0, 70.0), (1, 80.0))])
    (series,), _ = P.curves(rows, ["model"], "x")
    assert _ys(series) == [75.0] and series.band == "min–max over 2 seeds"
    assert series.points[["low", "high"]].iloc[0].tolist() == [70.0, 80.0] and "seeds" in series.legend


def test_given_interval_columns_make_the_band_of_one_seed():
    rows = _frame([dict(model="vgg", x=1.0, value=75.0, low=70.0, high=79.0)])
    (series,), _ = P.curves(rows, ["model"], "x")
    assert series.band == "interval (low–high)" and series.points["high"].tolist() == [79.0]


# --- eps_sweep --------------------------------------------------------------------------------------------------

def _eps_rows() -> pd.DataFrame:
    rows = [dict(model=m, attack=a, eps=e / 255, metric="accuracy", value=90.0 - e - (a == "pgd") * 5)
            for m in ("vgg", "sew") for a in ("fgsm", "pgd") for e in (2, 4, 8)]
    rows += [dict(model="vgg", attack="ens_fgsm", eps=8 / 255, metric="accuracy", value=30.0),
             dict(model="vgg", attack="clean", eps=0.0, metric="accuracy", value=95.0),
             dict(model="ghost", attack="fgsm", eps=8 / 255, metric="accuracy", value=float("nan"))]
    return _frame(rows)


def test_eps_sweep_one_panel_per_swept_attack_one_curve_per_model():
    data = P.eps_sweep_panels(_eps_rows())
    assert data.titles == ["fgsm", "pgd"]
    for panel in data.panels:
        assert panel.labels == ["vgg", "sew"]  # the model whose rows have no value has no series
        assert all(_xs(s) == [2.0, 4.0, 8.0] for s in panel.series) and not any(s.band for s in panel.series)
    assert any("ens_fgsm" in n for n in data.notes)


def test_eps_sweep_overlays_printed_values_as_paper_series():
    paper = _frame([dict(model="vgg", attack="fgsm", eps=e / 255, metric="accuracy", value=88.0,
                            source="paper") for e in (2, 8)])
    panel = P.eps_sweep_panels(pd.concat([_eps_rows(), paper])).panel("fgsm")
    printed = panel.get("paper · vgg")
    assert printed.paper and _xs(printed) == [2.0, 8.0] and panel.labels[:2] == ["vgg", "sew"]


# --- attack_bars and grad_norms -----------------------------------------------------------------------------

def test_attack_bars_panels_per_attack_reproduced_bars_and_paper_markers():
    rows = _frame([dict(model=m, attack=a, source=s, value=v) for m in ("vgg", "sew")
                   for a, v in (("PGD", 20.0), ("clean", 90.0)) for s in ("paper", "reproduced")])
    data = P.attack_bars_panels(rows)
    assert data.titles == ["clean", "PGD"]
    panel = data.panel("clean")
    assert panel.kind == "bar" and panel.categories == ("vgg", "sew") and panel.labels == ["reproduced", "paper"]
    assert panel.get("paper").paper and len(panel.get("reproduced").points) == 2


def test_grad_norms_panels_per_statistic_with_a_seed_band():
    rows = _frame([dict(model=m, seed=s, metric=k, value=v + s) for m in ("vgg", "sew") for s in (0, 1)
                   for k, v in (("l2", 2.0), ("l1", 30.0), ("l0_fraction", 0.6))])
    data = P.grad_norms_panels(rows)
    assert data.titles == ["l0_fraction", "l1", "l2"]
    (series,) = data.panel("l1").series
    assert _ys(series) == [30.5, 30.5] and series.band == "min–max over 2 seeds"


# --- training_curves --------------------------------------------------------------------------------------------

def test_training_curves_panel_per_metric_curve_per_model_seed_band():
    rows = _frame([dict(epoch=e, model=m, seed=s, loss=1 / (e + 1) + s, acc=50.0 + 10 * e)
                   for m in ("vgg", "sew") for s in (0, 1) for e in range(4)])
    data = P.training_curves_panels(rows)
    assert data.titles == ["loss", "acc"]  # the seed is no metric
    loss = data.panel("loss")
    assert loss.labels == ["vgg", "sew"] and all(len(s.points) == 4 for s in loss.series)
    assert loss.get("vgg").band == "min–max over 2 seeds"


# --- random_vs_fgsm (SR Fig. 1) ---------------------------------------------------------------------------------

def _fig1_rows(datasets=("CIFAR-10",), n_evals=(64,)) -> pd.DataFrame:
    rows = []
    for d in datasets:
        for n in n_evals:
            rows += [dict(dataset=d, model="vgg", method="vanilla", seed=0, n_eval=n, attack="clean", eps=0.0,
                          metric="accuracy", value=90.0 + n / 64)] * 5  # recorded in five attack files
            rows += [dict(dataset=d, model="vgg", method="vanilla", seed=0, n_eval=n, attack="FGSM", eps=e / 255,
                          metric="accuracy", value=60.0 - e + n / 64) for e in (2, 4, 8)]
            rows += [dict(dataset=d, model="vgg", method="vanilla", seed=0, n_eval=n, attack="random", eps=0.1,
                          metric="accuracy", value=85.0 + n / 64)]
    return _frame(rows)


def test_random_vs_fgsm_one_panel_per_dataset_each_curve_at_its_own_eps():
    data = P.random_vs_fgsm_panels(_fig1_rows(datasets=("CIFAR-10", "CIFAR-100")))
    assert data.titles == ["CIFAR-10", "CIFAR-100"]
    panel = data.panel("CIFAR-10")
    assert panel.labels == ["random", "FGSM"]
    assert _xs(panel.get("random")) == [0.0, 25.5] and _xs(panel.get("FGSM")) == [0.0, 2.0, 4.0, 8.0]
    assert panel.xscale == "symlog" and panel.linthresh == 2.0  # noise at 25.5/255 beside FGSM at <= 8/255


def test_random_vs_fgsm_points_from_one_evaluation_subset_only():
    data = P.random_vs_fgsm_panels(_fig1_rows(n_evals=(64, 32)))
    (panel,) = data.panels
    assert _ys(panel.get("FGSM")) == [91.0, 59.0, 57.0, 53.0] and _ys(panel.get("random")) == [91.0, 86.0]
    assert any("n = 32" in n for n in data.notes)


def test_random_vs_fgsm_clean_row_from_five_files_is_one_point_without_band():
    (panel,) = P.random_vs_fgsm_panels(_fig1_rows()).panels
    for series in panel.series:
        assert _xs(series).count(0.0) == 1 and series.band == "" and "low" not in series.points


def test_random_vs_fgsm_keeps_runs_with_both_curves_and_labels_them():
    rows = pd.concat([_fig1_rows(), _fig1_rows().assign(method="sr", value=lambda d: d["value"] + 1),
                      _frame([dict(dataset="CIFAR-10", model="vgg", method="sr_star", seed=0, n_eval=64,
                                   attack="random", eps=0.1, metric="accuracy", value=80.0)])])
    data = P.random_vs_fgsm_panels(rows)
    assert data.panels[0].labels == ["vanilla · random", "vanilla · FGSM", "sr · random", "sr · FGSM"]
    assert any("sr_star" in n for n in data.notes)


def test_random_vs_fgsm_draws_no_panel_for_a_dataset_with_clean_rows_only():
    """A dataset the figure's attacks never ran on (a DVS stand-in whose clean row rides along) gets no panel."""
    only_clean = _fig1_rows(datasets=("DVS",))
    rows = pd.concat([_fig1_rows(), only_clean[only_clean["attack"] == "clean"]])
    data = P.random_vs_fgsm_panels(rows)
    assert data.titles == ["CIFAR-10"] and any("DVS" in n for n in data.notes)


def test_random_vs_fgsm_linear_axis_when_the_ranges_match():
    rows = _fig1_rows()
    rows = rows[rows["attack"] != "random"]
    rows = pd.concat([rows, rows[rows["attack"] == "FGSM"].assign(attack="random")])
    assert P.random_vs_fgsm_panels(rows).panels[0].xscale == "linear"


# --- lambda_sweep (SR Fig. 3/6) ---------------------------------------------------------------------------------

LAMS = (0.0, 0.002, 0.008, 0.032)


def _lambda_rows(with_l2: bool = True) -> pd.DataFrame:
    rows = []
    for lam in LAMS:
        run = dict(dataset="CIFAR-10", model="wrn", method=f"sr{lam}", seed=0, lam=lam)
        if lam != 0.032:  # no attack file at the last λ: its clean point falls back to the training test_acc
            rows += [dict(run, kind="attacks", attack="clean", eps=0.0, n_eval=64, metric="accuracy",
                          value=92.0 - 100 * lam)] * 5
            rows += [dict(run, kind="attacks", attack="PGD", eps=e / 255, n_eval=64, metric="accuracy",
                          value=10 + 300 * lam + e) for e in (2, 8)]
        rows += [dict(run, kind="training", metric="test_acc", value=91.0)]
        rows += [dict(run, kind="analyses", metric=k, value=s / (1 + 100 * lam))
                 for k, s in (("l1", 40.0), ("l2", 1.5)) if with_l2 or k == "l1"]
    rows += [dict(dataset="CIFAR-10", model="ann", method="vanilla", seed=0, lam=0.0, kind="attacks",
                  attack="clean", eps=0.0, n_eval=64, metric="accuracy", value=95.0)]
    return _frame(rows)


def test_lambda_sweep_one_clean_curve_and_one_curve_per_attack_and_eps():
    data = P.lambda_sweep_panels(_lambda_rows())
    assert data.titles == ["accuracy", "gradient norms"] and data.ncols == 2
    acc = data.panel("accuracy")
    assert acc.categories == LAMS
    assert acc.labels == ["clean (λ = 0.032: training test_acc)", "PGD ε=2/255", "PGD ε=8/255"]
    clean = acc.series[0]
    assert _xs(clean) == list(LAMS) and _ys(clean) == [92.0, 91.8, 91.2, 91.0]  # one point per λ, not 5 + 1
    assert clean.band == "" and not any(s.band for s in acc.series)
    assert len(acc.get("PGD ε=8/255").points) == 3
    assert any("ann" in n for n in data.notes)  # the ANN at λ = 0 only is no curve of the sweep


def test_lambda_sweep_norms_on_two_axes_and_absent_series_without_rows():
    norms = P.lambda_sweep_panels(_lambda_rows()).panel("gradient norms")
    assert norms.labels == ["‖∇x f_y‖₁", "‖∇x f_y‖₂"]
    assert [s.axis for s in norms.series] == ["left", "right"] and all(len(s.points) == 4 for s in norms.series)
    assert P.lambda_sweep_panels(_lambda_rows(with_l2=False)).panel("gradient norms").labels == ["‖∇x f_y‖₁"]


def test_lambda_sweep_clean_from_evaluation_rows_is_plain_clean():
    rows = _lambda_rows()
    rows = rows[rows["lam"] != 0.032]
    assert P.lambda_sweep_panels(rows).panel("accuracy").labels[0] == "clean"


# --- grad_hist (SR Fig. 4) and grad_heatmap (SR Fig. 5) ------------------------------------------------------

def test_grad_hist_panel_per_dataset_step_line_per_method_with_zeros():
    edges = [i / 10 for i in range(-10, 11)]
    rows = [dict(dataset=d, model="vgg", method=m, metric="hist", bin_left=edges[i], bin_right=edges[i + 1],
                 value=(10.0 if i == 10 else 0.01) * (k + 1))
            for d in ("CIFAR-10", "CIFAR-100") for k, m in enumerate(("Vanilla", "SR*")) for i in range(20)]
    rows += [dict(dataset=d, model="vgg", method=m, metric="zero_fraction", value=0.25 * k)
             for d in ("CIFAR-10", "CIFAR-100") for k, m in enumerate(("Vanilla", "SR*"))]
    data = P.grad_hist_panels(_frame(rows))
    assert data.titles == ["CIFAR-10", "CIFAR-100"]
    panel = data.panel("CIFAR-100")
    assert panel.kind == "step" and panel.yscale == "log"
    assert panel.labels == ["Vanilla (zeros 0.0%)", "SR* (zeros 25.0%)"] and all(len(s.points) == 20
                                                                                 for s in panel.series)


def test_grad_heatmap_image_row_then_one_row_per_method():
    rows = [dict(model="vgg", method=m, seed=s, metric=k, sample=i, label=i + 1, row=r, col=c, value=float(r + c))
            for m in ("Vanilla", "SR") for s in (0, 1) for k in ("heatmap", "image") for i in range(3)
            for r in range(4) for c in range(5)]
    data = P.grad_heatmap_panels(_frame(rows))
    assert data.ncols == 3 and len(data.panels) == 9 and all(p.kind == "image" for p in data.panels)
    assert [p.ylabel for p in data.panels[::3]] == ["image", "Vanilla", "SR"]
    assert data.panels[0].cmap == "gray" and data.panels[0].title == "sample 0 (label 1)"
    assert data.panels[4].image.shape == (4, 5) and data.panels[4].image.max() == 1.0
    assert any("seed 0" in n for n in data.notes)


# --- measurements and drawing ----------------------------------------------------------------------------------

def test_clean_row_of_a_run_comes_from_its_largest_subset():
    rows = _frame([dict(dataset="d", model="m", method="v", seed=0, attack=a, eps=8 / 255, n=n, clean_acc=c,
                        robust_acc=10.0) for a, n, c in (("fgsm", 64, 90.0), ("pgd", 32, 80.0), ("pgd2", 64, 90.0))])
    found = attack_measurements(rows, "attacks")
    clean = found[found["attack"] == "clean"]
    assert clean["value"].tolist() == [90.0] and clean["n_eval"].tolist() == [64]
    assert found.loc[found["attack"] == "pgd", "n_eval"].tolist() == [32]


FIXTURES = {"eps_sweep": _eps_rows, "random_vs_fgsm": lambda: _fig1_rows(n_evals=(64, 32)),
            "lambda_sweep": _lambda_rows}


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_registered_figure_draws_its_panels(tmp_path, kind):
    assert kind in FIGURES and kind in P.PANELS
    out = FIGURES.get(kind)(FIXTURES[kind](), tmp_path / f"{kind}.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lambda_sweep_draws_only_datasets_run_at_every_lambda_of_the_sweep():
    """Fig. 3 is one dataset's λ sweep: a dataset trained at two λ only (Tab. 2's stand-in) is no panel row."""
    other = _lambda_rows()
    other = other[other["lam"].isin([0.0, 0.008])].assign(dataset="DVS")
    data = P.lambda_sweep_panels(pd.concat([_lambda_rows(), other]))
    assert data.titles == ["CIFAR-10 · accuracy", "CIFAR-10 · gradient norms"]
    assert any(n.startswith("DVS: 2 λ values") for n in data.notes)
