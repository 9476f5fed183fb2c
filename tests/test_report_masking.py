"""The study's gradient-masking checklist table: analysis items per run, the transfer item from black-box vs
white-box rows (a run whose transfer accuracy is below its white-box accuracy is flagged), and the page section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from snnrobust.analysis import ANALYSES
from snnrobust.report.masking import (CHECKLIST_ITEMS, FAIL, NOT_RUN, PASS, PAPER_SUSPICIONS, TRANSFER_ITEM,
                                      failing_runs, masking_checklist)
from snnrobust.report.page import build_page
from snnrobust.report.reproduced import measurements

from conftest import Rounded, separable_linear

EPS = 8 / 255
RUN = dict(dataset="digits", model="tiny", seed=0)
#: (method, threat) → robust accuracy (%) of pgd10 at 8/255
ACCURACY = {("vanilla", "white-box"): 5.0, ("vanilla", "black-box"): 60.0, ("at", "white-box"): 20.0,
            ("at", "black-box"): 10.0, ("sr_star", "black-box"): 40.0}


def _attack_file(path: Path, method: str, threat: str, robust: float) -> str:
    row = dict(**RUN, method=method, attack="pgd10", attack_name="pgd", eps=EPS, eps_255=8.0, steps=10, n=48,
               clean_acc=90.0, robust_acc=robust, wall_s=1.0, forward_passes=10, backward_passes=10, threat=threat)
    path.write_text(json.dumps({"kind": "attack", "rows": [row]}))
    return str(path)


@pytest.fixture(scope="module")
def checklist_file(tmp_path_factory) -> str:
    """Real analysis rows: vanilla is a trained linear model (passes), at the same model behind rounding (masked)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores (see conftest.one_thread)
    model, x, y = separable_linear(48)
    analysis = ANALYSES.create("masking_checklist", eps_255=[8, 64], ladder_steps=5, steps=[2, 5])
    rows = []
    for method, net in (("vanilla", model), ("at", Rounded(model).eval())):
        labels = {**RUN, "method": method, "analysis": "masking_checklist", "analysis_name": "masking_checklist"}
        rows += [{**labels, **r} for r in analysis(net, [(x, y)])]
    torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("masking") / "masking.json"
    path.write_text(json.dumps({"rows": rows}))
    return str(path)


@pytest.fixture()
def frame(tmp_path, checklist_file):
    attacks = [_attack_file(tmp_path / f"{m}.json", m, t, v) for (m, t), v in ACCURACY.items() if t == "white-box"]
    transfer = [_attack_file(tmp_path / f"t_{m}.json", m, t, v) for (m, t), v in ACCURACY.items() if t == "black-box"]
    return measurements(attacks, transfer, [checklist_file], [], {})


def _verdicts(table) -> dict[tuple[str, str], str]:
    return {(r["method"], r["item"]): r["verdict"] for _, r in table.iterrows()}


def test_one_row_per_run_and_item_with_the_numbers(frame):
    table = masking_checklist(frame)
    assert len(table) == 3 * len(CHECKLIST_ITEMS)  # vanilla and at (checked), sr_star (transfer rows only)
    verdicts = _verdicts(table)
    assert all(verdicts[("vanilla", item)] == PASS for item in CHECKLIST_ITEMS)
    assert verdicts[("at", "unbounded_pgd_reaches_zero")] == FAIL
    assert table[table["verdict"] != NOT_RUN]["detail"].notna().all()


def test_transfer_below_white_box_is_flagged(frame):
    table = masking_checklist(frame)
    verdicts = _verdicts(table)
    assert verdicts[("at", TRANSFER_ITEM)] == FAIL
    row = table[(table["method"] == "at") & (table["item"] == TRANSFER_ITEM)].iloc[0]
    assert row["measured_pct"] == pytest.approx(-10.0) and "10.0 %" in row["detail"] and "20.0 %" in row["detail"]
    assert verdicts[("sr_star", TRANSFER_ITEM)] == NOT_RUN  # no white-box twin to compare with
    assert verdicts[("sr_star", "unbounded_pgd_reaches_zero")] == NOT_RUN  # not checked
    assert failing_runs(table) == {("digits", "tiny", "at", 0): ["unbounded_pgd_reaches_zero", TRANSFER_ITEM]}
    assert masking_checklist(frame, tol_pp=15.0).pipe(_verdicts)[("at", TRANSFER_ITEM)] == PASS


def test_checklist_rows_can_be_given_apart(checklist_file):
    rows = json.loads(Path(checklist_file).read_text())["rows"]
    import pandas as pd

    table = masking_checklist(pd.DataFrame(), pd.DataFrame(rows))
    assert _verdicts(table)[("at", "unbounded_pgd_reaches_zero")] == FAIL
    assert _verdicts(table)[("vanilla", TRANSFER_ITEM)] == NOT_RUN


def test_trail_page_shows_the_checklist_beside_the_papers_suspicion(frame):
    spec = {"study": "sparsity_trail", "paper": "sparsity_trail", "scale": "default", "slots": {}}
    page = build_page(frame, spec).html
    assert "Gradient-masking checklist" in page and "obfuscated gradient" in page
    assert PAPER_SUSPICIONS["sparsity_trail"][1] in page
    assert '<tr class="fail">' in page and "Failing:" in page


def test_page_without_checklist_rows_has_no_section(frame):
    spec = {"study": "sparsity_trail", "paper": "sparsity_trail", "scale": "default", "slots": {}}
    page = build_page(frame[frame["kind"] != "analyses"], spec).html
    assert "Gradient-masking checklist" not in page
