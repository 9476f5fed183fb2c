"""SR paper figures (Fig. 1, 3/6, 4, 5): each draws a PNG from a small tidy frame shaped like the report's
measurements, fails in one line when a needed column is missing, and accepts the analyses' own rows."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from snnrobust.analysis import ANALYSES
from snnrobust.errors import SnnRobustError
from snnrobust.report.figures import FIGURES
from snnrobust.report.reproduced import analysis_measurements

METHODS = ("Vanilla", "AT", "SR*")


def _random_vs_fgsm() -> pd.DataFrame:
    rows = [dict(model="vgg", method=m, attack="clean", eps=0.0, metric="accuracy", value=90.0) for m in METHODS]
    rows += [dict(model="vgg", method=m, attack=a, eps=e / 255, metric="accuracy",
                  value=90 - e * (0.5 if a == "random" else 6) + 3 * i)
             for i, m in enumerate(METHODS) for a in ("random", "FGSM") for e in (2, 4, 8, 16)]
    rows += [dict(model="vgg", method="Vanilla", attack="FGSM", eps=8 / 255, metric="wall_s", value=3.0)]
    return pd.DataFrame(rows)


def _lambda_sweep() -> pd.DataFrame:
    lams = (0.0, 0.002, 0.008, 0.032)
    rows = [dict(model="wrn", lam=lam, attack=a, metric="accuracy", value=v - 100 * lam * (a == "clean"))
            for lam in lams for a, v in (("clean", 92.0), ("PGD", 20 + 300 * lam))]
    rows += [dict(model="wrn", lam=lam, attack=None, metric=k, value=s / (1 + 100 * lam))
             for lam in lams for k, s in (("l1", 40.0), ("l2", 1.5))]
    rows += [dict(model="wrn", lam=lam, attack=None, metric="test_acc", value=91.0) for lam in lams]
    frame = pd.DataFrame(rows)
    frame["lam"] = frame["lam"].astype(object)  # as with_row_keys leaves a key column
    return frame


def _grad_hist() -> pd.DataFrame:
    edges = [i / 10 for i in range(-10, 11)]
    rows = [dict(model="vgg", method=m, metric="hist", bin=i, bin_left=edges[i], bin_right=edges[i + 1],
                 value=(10.0 if i == 10 else 0.1) * (k + 1))
            for k, m in enumerate(METHODS) for i in range(20)]
    rows += [dict(model="vgg", method=m, metric="zero_fraction", value=0.1 * k) for k, m in enumerate(METHODS)]
    return pd.DataFrame(rows)


def _grad_heatmap() -> pd.DataFrame:
    rows = [dict(model="vgg", method=m, metric=k, sample=s, label=s + 1, row=r, col=c, value=float((r * c + s) % 5))
            for m in ("Vanilla", "SR") for k in ("heatmap", "image") for s in range(3)
            for r in range(6) for c in range(6)]
    return pd.DataFrame(rows)


SR_FIGURES = {"random_vs_fgsm": _random_vs_fgsm, "lambda_sweep": _lambda_sweep, "grad_hist": _grad_hist,
              "grad_heatmap": _grad_heatmap}
NEEDED = {"random_vs_fgsm": ("model", "attack", "eps", "value"), "lambda_sweep": ("lam", "metric", "value"),
          "grad_hist": ("model", "metric", "bin_left", "bin_right", "value"),
          "grad_heatmap": ("model", "metric", "sample", "row", "col", "value")}


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


@pytest.mark.parametrize("name", sorted(SR_FIGURES))
def test_sr_figure_writes_png(tmp_path, name):
    assert name in FIGURES
    out = tmp_path / "sub" / f"{name}.png"
    assert FIGURES.get(name)(SR_FIGURES[name](), out) == out and _is_png(out)


@pytest.mark.parametrize("name, column", [(n, c) for n, cols in NEEDED.items() for c in cols])
def test_sr_figure_missing_column_is_one_line_error(tmp_path, name, column):
    with pytest.raises(SnnRobustError, match=f"figure {name}: the data lacks column") as err:
        FIGURES.get(name)(SR_FIGURES[name]().drop(columns=column), tmp_path / "x.png")
    assert "\n" not in str(err.value) and column in str(err.value)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name, keep, message", [
    ("random_vs_fgsm", lambda f: f[f["attack"] == "clean"], "no accuracy rows under an attack"),
    ("grad_hist", lambda f: f[f["metric"] != "hist"], "no hist rows"),
    ("grad_heatmap", lambda f: f[f["metric"] == "image"], "no heatmap rows"),
    ("lambda_sweep", lambda f: f.assign(lam=None), "no accuracy, test_acc, l1 or l2 rows"),
])
def test_sr_figure_without_its_rows_is_one_line_error(tmp_path, name, keep, message):
    with pytest.raises(SnnRobustError, match=message):
        FIGURES.get(name)(keep(SR_FIGURES[name]()), tmp_path / "x.png")


def test_figures_draw_from_the_analyses_rows(tmp_path, toy_model):
    """The analyses' rows, through the report's analysis_measurements, are what grad_hist/grad_heatmap draw."""
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    rows = []
    for method, scale in (("vanilla", 1.0), ("sr", 0.1)):
        labels = dict(dataset="digits", model="toy", method=method, seed=0)
        for name, opts in (("grad_hist", {"bins": 11}), ("grad_heatmap", {"samples": 2})):
            found = ANALYSES.create(name, **opts)(toy_model, [(x * scale, y)])
            rows += [{**labels, "analysis_name": name, **r} for r in found]
    frame = analysis_measurements(pd.DataFrame(rows))
    for name in ("grad_hist", "grad_heatmap"):
        out = FIGURES.get(name)(frame[frame["analysis_name"] == name], tmp_path / f"{name}.png")
        assert _is_png(out)
