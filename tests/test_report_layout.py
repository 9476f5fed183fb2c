"""Paper tables in the paper's layout (report.layout): SR Tab. 1 as the paper prints it (rows dataset × arch ×
method, a column per threat × attack, Clean first, cells 'reproduced (paper)', stand-ins stated once); every
table of every paper has a valid layout; a bad layout fails in one line; the page keeps the tidy long form
folded below the grid, downloadable as CSV."""

from __future__ import annotations

import base64
import io
import re

import pandas as pd
import pytest

from snnrobust.errors import SnnRobustError
from snnrobust.report import paper_values as pv
from snnrobust.report.build import relevant_rows
from snnrobust.report.layout import LEGEND, lay_out
from snnrobust.report.page import _table_section, long_form
from snnrobust.report.tables import paper_vs_reproduced

EPS = 8 / 255
STAND_IN = dict(stand_ins={"digits": "CIFAR-10"}, arch_map={"snn_vgg_tiny": "VGG-11"},
                value_maps={"method": {"at": "AT", "sr_star": "SR*"}, "attack": {"pgd": "PGD", "apgd": "APGD"}})
SR1_COLUMNS = ["Clean", "white-box PGD10", "white-box PGD30", "white-box PGD50", "white-box APGD10",
               "black-box PGD10", "black-box PGD30", "black-box PGD50", "black-box APGD10"]


def _rep(**over) -> dict:
    """One reproduced SR Tab. 1 row on the stand-ins (white-box ensemble PGD10 of AT unless ``over`` says)."""
    row = dict(dataset="digits", arch="snn_vgg_tiny", method="at", threat="white-box", ensemble=True,
               attack_variant="ensemble (Sec. 5)", attack="pgd", eps=EPS, steps=10, metric="accuracy", value=57.8)
    return row | over


def _clean(method: str, value: float, **over) -> dict:
    return _rep(**(dict(method=method, attack="clean", eps=0.0, steps=0, threat=None, ensemble=None,
                        attack_variant=None, value=value) | over))


def _joined(rows: list[dict], table: str = "sr_table1", **maps) -> pd.DataFrame:
    """What the page lays out: paired rows plus the paper rows of the settings we ran (as page._slot_table)."""
    joined = paper_vs_reproduced(pd.DataFrame(rows), table, **(maps or STAND_IN))
    paired = joined["paper"].notna() & joined["reproduced"].notna()
    return relevant_rows(joined[paired | joined["reproduced"].isna()])


@pytest.fixture()
def sr1() -> pd.DataFrame:
    return _joined([_rep(), _rep(threat="black-box", value=61.0), _rep(attack="apgd", value=40.04),
                    _clean("at", 90.0, threat="white-box"),  # a clean row naming a threat still lands in Clean
                    _clean("sr_star", 80.0), _rep(method="sr_star", value=33.0)])


# --- SR Tab. 1 as the paper prints it -------------------------------------------------------------------------

def test_sr_table1_rows_columns_and_cells(sr1):
    wide = lay_out(sr1, "sr_table1").wide
    assert wide.columns.tolist() == ["dataset", "arch", "method", *SR1_COLUMNS]
    assert wide[["dataset", "arch", "method"]].values.tolist() == [["CIFAR-10", "VGG-11", "AT"],
                                                                 ["CIFAR-10", "VGG-11", "SR*"]]
    at = wide.iloc[0]
    assert at["Clean"] == "90.0 (90.0)" and at["white-box PGD10"] == "57.8 (18.2)"
    assert at["white-box APGD10"] == "40.0 (10.4)" and at["black-box PGD10"] == "61.0 (44.0)"
    assert at["white-box PGD30"] == "— (14.8)"  # the paper's number where we have none
    assert wide.iloc[1]["Clean"] == "80.0 (85.9)" and wide.iloc[1]["white-box PGD10"] == "33.0 (30.5)"


def test_sr_table1_html_grouped_header_and_lines_once(sr1):
    out = lay_out(sr1, "sr_table1").html
    head = out.split("</thead>")[0]
    assert '<th rowspan="2">Clean</th>' in head and '<th colspan="4">white-box</th>' in head
    assert head.index("Clean") < head.index("white-box") < head.index("black-box")
    assert re.findall(r"<th>([^<]+)</th>", head.split("</tr>")[1]) == ["PGD10", "PGD30", "PGD50", "APGD10"] * 2
    assert out.count("ours run on stand-ins") == 1 and "digits → CIFAR-10; snn_vgg_tiny → VGG-11" in out
    assert out.count("digits → CIFAR-10") == 1  # stated once per table, not per cell
    assert "<td>AT†</td>" in out and "<td>SR*†</td>" in out
    assert LEGEND in out and "ε 8/255 · accuracy (%)" in out and "ensemble attacks" in out
    assert "57.8 (18.2)" in out


def test_sr_table1_fits_in_twelve_columns(sr1):
    laid = lay_out(sr1, "sr_table1")
    assert laid.wide.shape[1] <= 12
    body = laid.html.split("<tbody>")[1]
    assert all(row.count("<td") <= 12 for row in body.split("</tr>"))


def test_reproduced_only_rows_come_last_marked_and_never_share_a_paper_cell():
    joined = paper_vs_reproduced(pd.DataFrame([_rep(), _rep(ensemble=False, value=40.0)]), "sr_table1", **STAND_IN)
    laid = lay_out(joined[joined["reproduced"].notna()], "sr_table1")
    assert laid.wide["white-box PGD10"].tolist() == ["57.8 (18.2)", "40.0 (—)"]  # single-surrogate: no pairing
    last = laid.html.split("<tbody>")[1].split("</tr>")[-2]
    assert last.startswith('<tr class="ours-only">') and "AT†‡" in last and "reproduced only" in laid.html


# --- the same code serves every paper ----------------------------------------------------------------------------

def test_spiking_pgd_grid_is_iteration_by_layer():
    rep = [dict(dataset="CIFAR-10", arch="ResNet-18", method="normal", iteration=0, layer=1,
                metric="activation_relative_change", value=0.02)]
    laid = lay_out(_joined(rep, "spiking_pgd_table1", value_maps={"method": {"normal": "Normal"}}),
                   "spiking_pgd_table1")
    assert laid.wide.columns.tolist() == ["method", "iteration", *map(str, range(1, 19))]
    assert laid.wide.loc[0, "1"] == "0.02 (0.012)" and laid.wide.loc[0, "2"] == "— (0.042)"
    assert laid.wide["iteration"].tolist() == list(range(10))  # the Normal block's rows, in printed order
    assert "activation_relative_change (ratio)" in laid.html and "ours run on stand-ins" not in laid.html


@pytest.mark.parametrize("table", pv.list_tables())
def test_every_table_has_a_layout_that_places_each_number_once(table):
    layout = pv.table_meta(table)["layout"]
    joined = paper_vs_reproduced(pd.DataFrame([{"metric": "nothing", "value": 0.0}]), table)
    wide = lay_out(joined[joined["paper"].notna()], table).wide
    cells = wide.drop(columns=layout["rows"]).to_numpy().ravel()
    printed = [c for c in cells if c]
    assert len(printed) == len(joined[joined["paper"].notna()])  # one cell per printed number
    assert not any(" / " in c for c in printed)  # no two printed numbers share a cell
    assert wide[layout["rows"]].drop_duplicates().shape[0] == len(wide)


# --- a bad layout fails on load, in one line -------------------------------------------------------------------

def _doc(layout: str) -> str:
    return ("paper: {id: bad, title: t, source_file: f}\ntables: {bad_table1: {caption: c, section: s, "
            f"layout: {layout}, rows: [{{dataset: d, metric: a, value: 1}}, {{dataset: e, metric: a, value: 2}}]}}}}")


@pytest.mark.parametrize("layout, problem", [
    ("{rows: [dataset], columns: [nope]}", "layout names 'nope', no key of this table"),
    ("{rows: [dataset], columns: [dataset]}", "layout names 'dataset' twice"),
    ("{rows: [value], columns: [metric]}", "layout names 'value', no key"),
    ("{rows: [dataset]}", "layout must be {rows: [keys], columns: [keys]}"),
    ("{rows: [], columns: [metric]}", "layout must be"),
])
def test_bad_layout_is_one_line(tmp_path, monkeypatch, layout, problem):
    bad = tmp_path / "bad.yaml"
    bad.write_text(_doc(layout))
    monkeypatch.setattr(pv, "_files", lambda: {"bad": bad})
    with pytest.raises(SnnRobustError, match=re.escape(problem)) as err:
        pv.load_paper_values()
    assert "\n" not in str(err.value)


# --- the page: grid first, tidy long form folded below with a CSV download -----------------------------------

def test_page_section_keeps_the_long_form_as_csv(sr1):
    section = _table_section({"id": "sr_table1", "caption": "Table 1", "section": "5.1"}, sr1)
    assert section.index('class="paper-layout"') < section.index("<details><summary>long form (tidy rows)</summary>")
    assert section.index("<details>") < section.index('class="paper-vs-reproduced"')
    data = re.search(r'<a download="sr_table1\.csv" href="data:text/csv;base64,([A-Za-z0-9+/=]+)"', section).group(1)
    got = pd.read_csv(io.StringIO(base64.b64decode(data).decode("utf-8")))
    tidy = long_form(sr1)
    assert got.columns.tolist() == tidy.columns.tolist() and len(got) == len(tidy)
    pd.testing.assert_series_equal(got["paper"], tidy["paper"], check_dtype=False)
    pd.testing.assert_series_equal(got["reproduced"], tidy["reproduced"], check_dtype=False)
    assert got["paper_method"].tolist() == tidy["paper_method"].tolist()
