"""The ``training_curves`` report view: every epoch of every training run (the Spiking-PGD paper's accuracy and
precision curves, Figs. 7-8 and 10-13), with the running mean of precision, while the ``training`` view, the tables
and the claims keep seeing each run's last epoch only."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from snnrobust.errors import SnnRobustError
from snnrobust.report.page import FIGURE_OF_VIEW, build_page, validate_report_section
from snnrobust.report.reproduced import VIEW_KINDS, measurements, view_rows

EPOCHS = (1, 2, 3)
#: per-epoch values of the two runs: PGD-AT without precision, Spiking-PGD-AT with it (robust_acc not due at epoch 2)
CLEAN = {"pgd_at": (50.0, 60.0, 70.0), "spgd_at": (40.0, 55.0, 65.0)}
ROBUST = {"pgd_at": (20.0, None, 30.0), "spgd_at": (10.0, None, 28.0)}
PRECISION = (30.0, 60.0, 100.0)

SPEC = {"paper": "spiking_pgd", "study": "spiking_pgd", "scale": "default",
        "slots": {"spiking_pgd_figure7": "training_curves"}, "stand_ins": {"digits": "CIFAR-10"},
        "method_map": {"pgd_at": "PGD-AT", "spgd_at": "Spiking-PGD-AT"},
        "claims": [{"id": "pgd_at_cleaner", "text": "PGD-AT ends with the higher clean accuracy",
                    "left": {"method": "PGD-AT", "metric": "test_acc"}, "op": ">",
                    "right": {"method": "Spiking-PGD-AT", "metric": "test_acc"}}]}


def _metrics_csv(path, method: str, precision: bool):
    rows = []
    for i, epoch in enumerate(EPOCHS):
        row = dict(dataset="digits", method=method, model="tiny", seed=0, epoch=epoch, lr=0.1, train_loss=1.0 / epoch,
                   train_acc=40.0 + epoch, test_loss=1.0 / epoch, test_acc=CLEAN[method][i],
                   robust_acc=ROBUST[method][i])
        if precision:
            row.update(rho=0.1 / epoch, precision=PRECISION[i], precision_flops=PRECISION[i] - 1.0)
        rows.append(row)
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.fixture()
def frame(tmp_path) -> pd.DataFrame:
    files = [_metrics_csv(tmp_path / "pgd_at" / "metrics.csv", "pgd_at", precision=False),
             _metrics_csv(tmp_path / "spgd_at" / "metrics.csv", "spgd_at", precision=True)]
    return measurements([], [], [], files, SPEC)


def test_view_holds_every_epoch_of_both_runs(frame):
    assert VIEW_KINDS["training_curves"] and FIGURE_OF_VIEW["training_curves"] == "training_curves"
    rows = view_rows(frame, "training_curves")
    for method in CLEAN:
        clean = rows[(rows["method"] == method) & (rows["metric"] == "test_acc")].sort_values("epoch")
        assert list(clean["epoch"]) == list(EPOCHS) and tuple(clean["value"]) == CLEAN[method]
        robust = rows[(rows["method"] == method) & (rows["metric"] == "robust_accuracy")].sort_values("epoch")
        assert list(robust["epoch"]) == [1, 3]  # not evaluated at epoch 2: no point there
    assert set(rows.loc[rows["method"] == "pgd_at", "metric"]).isdisjoint({"precision", "precision_cumulative"})
    assert "lr" not in set(rows["metric"])


def test_cumulative_precision_is_the_running_mean(frame):
    rows = view_rows(frame, "training_curves")
    ours = rows[rows["metric"] == "precision_cumulative"].sort_values("epoch")
    running = [sum(PRECISION[:e]) / e for e in EPOCHS]
    assert list(ours["method"]) == ["spgd_at"] * 3
    assert list(ours["epoch"]) == list(EPOCHS)
    assert ours["value"].tolist() == pytest.approx(running)
    instant = rows[rows["metric"] == "precision"].sort_values("epoch")
    assert instant["value"].tolist() == pytest.approx(PRECISION)


def test_training_view_and_claims_see_only_the_last_epoch(frame):
    last = view_rows(frame, "training")
    assert "epoch" not in last
    assert set(last["kind"]) == {"training"}
    clean = last[last["metric"] == "test_acc"].set_index("method")["value"]
    assert clean.to_dict() == {"pgd_at": CLEAN["pgd_at"][-1], "spgd_at": CLEAN["spgd_at"][-1]}
    assert "precision_cumulative" not in set(last["metric"])  # the last-epoch rows are as they were
    for view in set(VIEW_KINDS) - {"training_curves"}:
        assert "training_epochs" not in set(view_rows(frame, view).get("kind", pd.Series(dtype=object)))
    claim = build_page(frame, SPEC).claims.set_index("claim").loc["pgd_at_cleaner"]
    assert claim["settings"] == 1  # one setting: the last epoch, not one per epoch
    assert claim["left"] == CLEAN["pgd_at"][-1] and claim["right"] == CLEAN["spgd_at"][-1]
    assert claim["result"] == "holds"


def test_page_draws_the_curves_for_a_figure_slot(frame):
    page = build_page(frame, SPEC)
    coverage = page.coverage.set_index("slot")
    assert coverage.loc["spiking_pgd_figure7", "view"] == "training_curves"
    assert coverage.loc["spiking_pgd_figure7", "status"] == "reproduced"
    found = re.search(r'<img alt="spiking_pgd_figure7" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page.html)
    assert found and base64.b64decode(found.group(1)).startswith(b"\x89PNG")


def test_figure_data_has_one_panel_per_metric_one_curve_per_run(frame):
    from snnrobust.report.page import CURVE_METRICS, _figure_data
    from snnrobust.report.panels import training_curves_panels

    data = training_curves_panels(_figure_data("training_curves", view_rows(frame, "training_curves")))
    assert data.titles == list(CURVE_METRICS.values())
    assert data.panel("clean accuracy (%)").labels == ["pgd_at", "spgd_at"]
    assert data.panel("robust accuracy (%)").labels == ["pgd_at", "spgd_at"]
    assert data.panel("average precision (%)").labels == ["spgd_at"]
    curve = data.panel("clean accuracy (%)").get("spgd_at").points
    assert curve["x"].tolist() == list(EPOCHS) and tuple(curve["y"]) == CLEAN["spgd_at"]


def test_unknown_view_in_slots_is_one_line_error():
    section = {**SPEC, "slots": {"spiking_pgd_figure7": "training_curve"}}
    with pytest.raises(SnnRobustError, match="unknown view 'training_curve'") as err:
        validate_report_section("spiking_pgd", section)
    assert "\n" not in str(err.value) and "training_curves" in str(err.value)
    validate_report_section("spiking_pgd", SPEC)  # the view itself is accepted for a figure slot


def test_last_epoch_precision_is_the_whole_trainings_as_table_3_prints_it(frame):
    """Table 3's precision is the share of the whole training's inner-attack forwards (λ = 2: "under 30 %"), so the
    last-epoch rows carry the mean over epochs as ``precision`` and the last epoch's own as ``precision_last``."""
    last = view_rows(frame, "training")
    spgd = last[last["method"] == "spgd_at"].set_index("metric")["value"]
    assert spgd["precision"] == pytest.approx(sum(PRECISION) / len(PRECISION))
    assert spgd["precision_last"] == PRECISION[-1]
    assert "precision" not in set(last.loc[last["method"] == "pgd_at", "metric"])
