"""Report layer: paper values load, validate and match the papers' markdown; joins; figures write PNGs."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from snnrobust.errors import SnnRobustError
from snnrobust.report import paper_values as pv
from snnrobust.report.figures import FIGURES
from snnrobust.report.tables import eps_label, paper_vs_reproduced, to_html

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get("SNNROBUST_PAPERS", ""), ROOT / "shared" / "papers", "/work/shared/papers"]
PAPERS = next((Path(p) for p in _CANDIDATES if p and Path(p).is_dir()), None)
needs_papers = pytest.mark.skipif(PAPERS is None, reason="paper markdown not available (set SNNROBUST_PAPERS)")

ROW_COUNTS = {
    "sr_table1": 81, "sr_table2": 20, "sr_table3": 48, "sr_table4": 6, "sr_table5": 15, "sr_table6": 9,
    "sr_table7": 5, "sparsity_trail_table1": 33, "sparsity_trail_table2": 45, "sparsity_trail_table3": 54,
    "spiking_pgd_table1": 360, "spiking_pgd_table2": 360, "spiking_pgd_table3": 84,
}


@pytest.fixture(scope="module")
def values() -> pd.DataFrame:
    return pv.load_paper_values()


def _md(name: str) -> str:
    return (PAPERS / name).read_text(encoding="utf-8")


def _line(name: str, prefix: str) -> list[str]:
    """Cells of the one markdown line that starts with ``prefix`` (tab-separated tables)."""
    hits = [ln for ln in _md(name).splitlines() if ln.startswith(prefix)]
    assert len(hits) == 1, f"{prefix!r} matches {len(hits)} lines of {name}"
    return hits[0].split("\t")


def _numbers_in_tables(name: str) -> Counter:
    """Every number printed in a tab-separated table line of a paper, as a multiset of magnitudes."""
    found: Counter = Counter()
    grid = False  # inside an 'Iteration \ Layer' grid, the header and first cells are iteration/layer labels
    for ln in _md(name).splitlines():
        grid = ln.startswith("Iteration") or (grid and re.match(r"\d+\t", ln) is not None)
        if "\t" not in ln or ln.startswith("Iteration"):
            continue
        for cell in ln.split("\t")[1 if grid else 0:]:
            cell = re.sub(r"</?b>", "", cell).strip()
            with_change = re.fullmatch(r"([\d.]+) \([↓↑]([\d.]+)\)", cell)  # '45.71 (↓1.28)'
            for token in with_change.groups() if with_change else [cell]:
                if re.fullmatch(r"\d+(\.\d+)?(e-\d+)?s?", token):
                    found[round(float(token.rstrip("s")), 10)] += 1
    return found


# --- loading and validation -------------------------------------------------------------------------------

def test_tables_and_row_counts(values):
    assert sorted(pv.list_tables()) == sorted(ROW_COUNTS)
    assert pv.list_tables("sr") == [f"sr_table{i}" for i in range(1, 8)]
    assert values.groupby("table").size().to_dict() == ROW_COUNTS
    assert pv.list_papers() == ["sparsity_trail", "spiking_pgd", "sr"]


def test_every_row_is_complete(values):
    assert values[["paper", "table", "metric", "value"]].notna().all().all()
    assert values["value"].dtype == float
    assert values["eps"].dropna().map(pv.parse_eps).between(0, 1).all()
    assert str(values["steps"].dtype) == "Int64"


def test_table_meta():
    meta = pv.table_meta("sr_table2")
    assert meta["caption"].startswith("Table 2") and meta["section"] == "5.2"
    with pytest.raises(SnnRobustError, match="unknown table"):
        pv.table_meta("sr_table99")


def _doc(rows: str, table: str = "bad_table1", pid: str = "bad") -> str:
    """A minimal paper-values file with one table."""
    return f"paper: {{id: {pid}, title: t, source_file: f}}\ntables: {{{table}: {{caption: c, section: s, rows: {rows}}}}}"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("tables: {}", "needs a 'paper'"),
        (_doc("[{value: 1}]"), "has no 'metric'"),
        (_doc("[{metric: a, value: x}]"), "is not a number"),
        (_doc("[{metric: a, value: 1}, {metric: a, value: 2}]"), "repeats"),
        (_doc("[{metric: a, eps: 9/x, value: 1}]"), "eps"),
        (_doc("[]"), "non-empty"),
        (_doc("[{metric: a, value: 1}]", table="other_table1"), "must start with"),
        (_doc("[{metric: a, value: 1}]", pid="other"), "does not match"),
        ("paper: [unclosed", "invalid YAML"),
    ],
)
def test_validation_errors_are_one_line(tmp_path, monkeypatch, text, problem):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    monkeypatch.setattr(pv, "_files", lambda: {"bad": bad})
    with pytest.raises(SnnRobustError, match=problem) as err:
        pv.load_paper_values()
    assert "\n" not in str(err.value)


def test_unknown_paper():
    with pytest.raises(SnnRobustError, match="choose one of"):
        pv.load_paper_values("nope")


# --- transcription against the papers' markdown -------------------------------------------------------------

@needs_papers
@pytest.mark.parametrize(
    "paper, source",
    [("sr", "sr-sparse-gradients-snn.md"), ("sparsity_trail", "sparsity-trail-journal.md"),
     ("spiking_pgd", "spiking-pgd-fine-grained-attacks.md")],
)
def test_every_printed_number_is_transcribed_once(values, paper, source):
    """The multiset of numbers in the paper's table lines equals that of the YAML values (magnitudes)."""
    ours = Counter(round(abs(v), 10) for v in values.loc[values["paper"] == paper, "value"])
    assert ours == _numbers_in_tables(source)


@needs_papers
def test_conference_version_is_contained_in_journal(values):
    journal = Counter(round(abs(v), 10) for v in values.loc[values["paper"] == "sparsity_trail", "value"])
    assert not _numbers_in_tables("sparsity-trail-conference.md") - journal


def _values(values, table, **keys) -> list[float]:
    rows = values[values["table"] == table]
    for k, v in keys.items():
        rows = rows[rows[k] == v]
    return rows["value"].tolist()


@needs_papers
@pytest.mark.parametrize("prefix, dataset, arch", [("CIFAR-10\tVGG-11\tRAT", "CIFAR-10", "VGG-11"),
                                                    ("CIFAR-100\tWRN-16\tRAT", "CIFAR-100", "WRN-16")])
def test_sr_table1_rows(values, prefix, dataset, arch):
    printed = [float(c) for c in _line("sr-sparse-gradients-snn.md", prefix)[3:]]
    assert _values(values, "sr_table1", dataset=dataset, arch=arch, method="RAT") == printed


@needs_papers
def test_sr_spot_values(values):
    dvs = [float(c) for c in _line("sr-sparse-gradients-snn.md", "SR*\t75.60")[1:]]
    assert _values(values, "sr_table2", method="SR*") == dvs  # clean, WB FGSM, WB PGD50, BB FGSM, BB PGD50
    rand = [float(c) for c in _line("sr-sparse-gradients-snn.md", "CIFAR-100\t26.270")[1:]]
    assert _values(values, "sr_table4", dataset="CIFAR-100") == rand
    cost = re.findall(r"(\d+)s", "\t".join(_line("sr-sparse-gradients-snn.md", "65s")))
    assert _values(values, "sr_table7") == [float(c) for c in cost]


@needs_papers
def test_sparsity_trail_spot_values(values):
    sew50 = [float(c) for c in _line("sparsity-trail-journal.md", "\tSEW-ResNet50 (Fang et al., 2021a)\t48.52")[2:]]
    assert _values(values, "sparsity_trail_table2", dataset="CIFAR10-DVS", arch="SEW-ResNet50") == sew50
    cell = _line("sparsity-trail-journal.md", "\tSEW-ResNet34\t20.07")[3]  # CIFAR-100 avg-pool SEW34 PGD
    acc, delta = re.fullmatch(r"([\d.]+) \(↓([\d.]+)\)", cell).groups()
    pgd = dict(table="sparsity_trail_table3", dataset="CIFAR-100", arch="SEW-ResNet34", attack="PGD")
    assert _values(values, metric="accuracy", **pgd) == [float(acc)]
    assert _values(values, metric="accuracy_change_vs_table2", **pgd) == [-float(delta)]


@needs_papers
def test_spiking_pgd_spot_values(values):
    text = _md("spiking-pgd-fine-grained-attacks.md")
    lam3 = re.search(r"\$\\lambda = 3\.0\$\t([\d.]+)\t([\d.]+)\t<b>([\d.]+)</b>\t([\d.]+)", text).groups()
    assert _values(values, "spiking_pgd_table3", schedule="exponential", **{"lambda": 3.0}) == [float(v) for v in lam3]
    # Table 2, robust model, iteration 8: the last block of 'Iteration 8' lines in the appendix.
    row = [ln for ln in text.splitlines() if ln.startswith("8\t")][-1].split("\t")[1:]
    got = _values(values, "spiking_pgd_table2", method="Robust", iteration=8)
    assert got == [float(c) for c in row if c]


def test_sparsity_trail_table3_changes_match_table2(values):
    """Printed changes equal Table 3 minus Table 2, except two CIFAR-100 FGSM arrows the paper prints wrong."""
    key = ["dataset", "arch", "attack"]
    t2 = values[values["table"] == "sparsity_trail_table2"].set_index(key)["value"]
    t3 = values[values["table"] == "sparsity_trail_table3"]
    acc = t3[t3["metric"] == "accuracy"].set_index(key)["value"]
    change = t3[t3["metric"] != "accuracy"].set_index(key)
    off = (acc - t2.reindex(acc.index) - change["value"]).abs() > 0.006
    assert set(off[off].index) == {("CIFAR-100", "SEW-ResNet34", "FGSM"), ("CIFAR-100", "SEW-ResNet50", "FGSM")}
    assert change.loc[off[off].index, "note"].str.contains("recorded as printed").all()


def test_sr_ablation_repeats_table1_except_noted(values):
    key = ["dataset", "method", "attack", "steps"]
    t1 = values[(values["table"] == "sr_table1") & (values["arch"] == "WRN-16") & (values["threat"] != "black-box")]
    t3 = values[(values["table"] == "sr_table3") & values["method"].isin(["AT", "SR*"])]
    both = t3.merge(t1, on=key, suffixes=("", "_t1"))
    differ = both[both["value"] != both["value_t1"]]
    assert len(both) == 16 and differ[key].values.tolist() == [["CIFAR-100", "AT", "PGD", 50]]
    assert "7.86" in differ["note"].iloc[0]


# --- eps parsing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("printed, expected", [("8/255", 8 / 255), ("2 / 255", 2 / 255), ("0.031", 0.031),
                                               ("0", 0.0), (0.1, 0.1), (4 / 255, 4 / 255)])
def test_parse_eps(printed, expected):
    assert math.isclose(pv.parse_eps(printed), expected)


@pytest.mark.parametrize("bad", ["eight", "8/0", "300/255", True])
def test_parse_eps_rejects(bad):
    with pytest.raises(SnnRobustError):
        pv.parse_eps(bad)


# --- paper vs reproduced -----------------------------------------------------------------------------------

def _rep(**over) -> dict:
    row = dict(dataset="digits", arch="vgg_small", method="at", threat="white-box", ensemble=True,
               attack_variant="ensemble (Sec. 5)", attack="pgd", eps=8 / 255, steps=10, metric="accuracy", value=20.0)
    return row | over


STAND_IN = dict(stand_ins={"digits": "CIFAR-10"}, arch_map={"vgg_small": "VGG-11"},
                value_maps={"method": {"at": "AT"}, "attack": {"pgd": "PGD", "fgsm": "FGSM"}})


def test_join_with_stand_ins_and_one_sided_rows():
    rep = pd.DataFrame([
        _rep(value=20.0), _rep(value=22.0, steps=10.0),          # two seeds, steps spelled differently
        _rep(attack="clean", eps=0.0, steps=0, threat=None, ensemble=None, value=95.0),
        _rep(attack="fgsm", steps=1, value=50.0),                 # the paper has no FGSM column
    ])
    out = paper_vs_reproduced(rep, "sr_table1", **STAND_IN)
    assert len(out) == 81 + 1
    pgd = out[(out["reproduced"].notna()) & (out["paper_attack"] == "PGD")].iloc[0]
    assert (pgd["paper"], pgd["reproduced"], pgd["n"]) == (18.18, 21.0, 2)
    assert math.isnan(pgd["diff"])  # a stand-in row: the paper value beside ours, no difference
    names = (pgd["dataset"], pgd["paper_dataset"], pgd["arch"], pgd["paper_arch"])
    assert names == ("digits", "CIFAR-10", "vgg_small", "VGG-11")
    assert pgd["stand_in"] and pgd["stand_in_for"] == "digits → CIFAR-10; vgg_small → VGG-11"
    assert pgd["threat"] == "white-box" and math.isclose(pgd["eps"], 8 / 255)
    clean = out[(out["paper_attack"] == "clean") & out["reproduced"].notna()].iloc[0]
    assert (clean["paper"], clean["reproduced"]) == (89.97, 95.0)
    fgsm = out[out["attack"] == "fgsm"].iloc[0]
    assert math.isnan(fgsm["paper"]) and fgsm["reproduced"] == 50.0 and fgsm["paper_dataset"] == "CIFAR-10"
    paper_only = out[out["reproduced"].isna()]
    assert len(paper_only) == 81 - 2 and paper_only["dataset"].isna().all() and not paper_only["stand_in"].any()
    assert paper_only["paper_dataset"].notna().all() and paper_only["diff"].isna().all()


def test_join_like_for_like_has_a_difference():
    rep = pd.DataFrame([_rep(dataset="CIFAR-10", arch="VGG-11", method="SR*", attack="PGD", threat="black-box",
                             value=50.0)])
    row = paper_vs_reproduced(rep, "sr_table1").dropna(subset=["reproduced"]).iloc[0]
    assert row["paper"] == 51.21 and not row["stand_in"] and row["stand_in_for"] == ""
    assert math.isclose(row["diff"], 50.0 - 51.21)


def test_join_renames_are_not_stand_ins():
    rep = pd.DataFrame([_rep(dataset="cifar10", arch="snn_vgg11")])
    out = paper_vs_reproduced(rep, "sr_table1", arch_map={"snn_vgg11": "VGG-11"}, stand_in_archs=[],
                              value_maps={"dataset": {"cifar10": "CIFAR-10"}, **STAND_IN["value_maps"]})
    row = out.dropna(subset=["reproduced"]).iloc[0]
    assert row["paper"] == 18.18 and not row["stand_in"] and math.isclose(row["diff"], 20.0 - 18.18)


def test_join_value_maps_and_table_keys():
    rep = pd.DataFrame([dict(dataset="CIFAR-10", arch="ResNet-18", method="normal", iteration=0, layer=1,
                             metric="activation_relative_change", value=0.02)])
    out = paper_vs_reproduced(rep, "spiking_pgd_table1", value_maps={"method": {"normal": "Normal"}})
    row = out.dropna(subset=["reproduced"]).iloc[0]
    assert row["paper"] == 0.012 and row["paper_method"] == "Normal" and row["method"] == "normal"
    assert len(out) == 360
    # a row that does not say which layer it measured pairs with none of them
    unlocated = paper_vs_reproduced(rep.drop(columns="layer"), "spiking_pgd_table1",
                                    value_maps={"method": {"normal": "Normal"}})
    assert unlocated["paper"].notna().sum() == 360 and len(unlocated) == 361


def test_join_maps_attack_names_and_detects_clean_in_paper_vocabulary():
    rep = pd.DataFrame([_rep(attack="none", eps=float("nan"), steps=None, threat=None, ensemble=None, value=80.0),
                        _rep(attack="pgd", value=30.0)])
    maps = {**STAND_IN, "value_maps": {"attack": {"none": "clean", "pgd": "PGD"}, "method": {"at": "AT"}}}
    out = paper_vs_reproduced(rep, "sr_table1", **maps)
    got = out.dropna(subset=["reproduced"]).set_index("paper_attack")
    assert got.loc["clean", ["attack", "paper", "reproduced"]].tolist() == ["none", 89.97, 80.0]
    assert pd.isna(got.loc["clean", "threat"]) and got.loc["PGD", "threat"] == "white-box"
    assert got.loc["PGD", "paper"] == 18.18 and len(out) == 81


# --- strict pairing: the mispairings the first matcher made ---------------------------------------------------

def _sew(pooling: str | None, attack: str = "PGD", value: float = 30.0) -> dict:
    row = dict(dataset="CIFAR-10", arch="SEW-ResNet18", method="Vanilla", threat="white-box", ensemble=False,
               attack=attack, eps=8 / 255, steps=7 if attack == "PGD" else 1, pooling=pooling, metric="accuracy",
               value=value)
    return {k: v for k, v in row.items() if v is not None}


def _paired(out: pd.DataFrame) -> pd.DataFrame:
    return out[out["paper"].notna() & out["reproduced"].notna()]


def test_maxpool_sew_row_never_pairs_with_the_avgpool_table3():
    maxpool = pd.DataFrame([_sew("max")])
    assert _paired(paper_vs_reproduced(maxpool, "sparsity_trail_table3")).empty
    assert _paired(paper_vs_reproduced(maxpool, "sparsity_trail_table2"))["paper"].tolist() == [34.33]
    avgpool = pd.DataFrame([_sew("avg")])
    assert _paired(paper_vs_reproduced(avgpool, "sparsity_trail_table3"))["paper"].tolist() == [25.72]
    assert _paired(paper_vs_reproduced(avgpool, "sparsity_trail_table2")).empty
    unknown = pd.DataFrame([_sew(None)])  # pooling not determined: pairs with neither table
    for table in ("sparsity_trail_table2", "sparsity_trail_table3"):
        assert _paired(paper_vs_reproduced(unknown, table)).empty


def test_single_surrogate_pgd_never_pairs_with_the_sr_ensemble_numbers():
    single = pd.DataFrame([_rep(ensemble=False)])
    for table in ("sr_table1", "sr_table3"):
        assert _paired(paper_vs_reproduced(single, table, **STAND_IN)).empty
    undetermined = pd.DataFrame([_rep()]).drop(columns="ensemble")
    assert _paired(paper_vs_reproduced(undetermined, "sr_table1", **STAND_IN)).empty
    got = _paired(paper_vs_reproduced(single, "sr_table6", **STAND_IN, stand_in_archs=[]))
    assert got.empty  # Table 6 also needs attack_variant: a bare single-surrogate row does not say which
    named = pd.DataFrame([_rep(ensemble=False, attack_variant="triangle surrogate only (w/o ensemble)")])
    assert _paired(paper_vs_reproduced(named, "sr_table6", **STAND_IN))["paper"].tolist() == [21.32]
    assert _paired(paper_vs_reproduced(pd.DataFrame([_rep()]), "sr_table1", **STAND_IN))["paper"].tolist() == [18.18]


def test_white_box_row_never_pairs_with_a_black_box_value():
    white = _paired(paper_vs_reproduced(pd.DataFrame([_rep(threat="white-box")]), "sr_table1", **STAND_IN))
    black = _paired(paper_vs_reproduced(pd.DataFrame([_rep(threat="black-box")]), "sr_table1", **STAND_IN))
    assert white["paper"].tolist() == [18.18] and black["paper"].tolist() == [44.02]
    untold = pd.DataFrame([_rep()]).drop(columns="threat")
    assert _paired(paper_vs_reproduced(untold, "sr_table1", **STAND_IN)).empty


def test_join_errors():
    with pytest.raises(SnnRobustError, match="unknown table"):
        paper_vs_reproduced(pd.DataFrame([_rep()]), "sr_table42")
    with pytest.raises(SnnRobustError, match="lack column 'value'"):
        paper_vs_reproduced(pd.DataFrame([_rep()]).drop(columns="value"), "sr_table1")


def test_to_html_is_self_contained():
    out = paper_vs_reproduced(pd.DataFrame([_rep()]), "sr_table2")
    page = to_html(out, "SR Table 2 <DVS>", caption="digits stands in for CIFAR10-DVS")
    assert page.startswith("<!DOCTYPE html>") and "<table" in page and "SR Table 2 &lt;DVS&gt;" in page
    assert "<script" not in page and "—" in page and "76.80" in page
    assert "<td>0.031</td>" in page and "<td>8/255</td>" in page  # printed eps, and ours as k/255


@pytest.mark.parametrize("eps, label", [(8 / 255, "8/255"), (0.031, "0.031"), (0.0, "0"), (float("nan"), "—")])
def test_eps_label(eps, label):
    assert eps_label(eps) == label


# --- figures -----------------------------------------------------------------------------------------------

SYNTHETIC = {
    "eps_sweep": pd.DataFrame([dict(model=m, attack=a, eps=e / 255, value=90 - 5 * e - (a == "pgd") * 3)
                               for m in ("vgg", "sew") for a in ("fgsm", "pgd") for e in (0, 2, 4, 8)]),
    "attack_bars": pd.DataFrame([dict(model=m, attack=a, source=s, value=v - (s == "paper") * 2)
                                 for m in ("vgg", "sew") for a, v in (("clean", 90), ("FGSM", 40), ("PGD", 20))
                                 for s in ("paper", "reproduced")]),
    "grad_norms": pd.DataFrame([dict(model=m, metric=k, value=v) for m in ("vgg", "sew")
                                for k, v in (("l2", 2.0), ("l1", 30.0), ("l0_fraction", 0.6))]),
    "training_curves": pd.DataFrame([dict(epoch=e, model=m, loss=1 / (e + 1), acc=50 + 10 * e)
                                     for m in ("vgg", "sew") for e in range(4)]),
}


def test_every_registered_figure_has_synthetic_data():
    # the SR paper's four figures are drawn from synthetic frames in tests/test_figures_sr.py, Spiking-PGD's cost
    # figure in tests/test_spgd_panels.py, its redundancy heatmap in tests/test_redundancy.py
    assert set(FIGURES.names()) == set(SYNTHETIC) | {"random_vs_fgsm", "lambda_sweep", "grad_hist", "grad_heatmap",
                                                      "op_sparsity", "sparsity_vs_weight_grad", "accuracy_vs_cost",
                                                      "redundancy_heatmap",  # tests/test_redundancy.py
                                                      "spgd_ablation"}  # tests/test_spgd_panels.py


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_figure_writes_png(tmp_path, name):
    out = tmp_path / "sub" / f"{name}.png"
    assert FIGURES.get(name)(SYNTHETIC[name], out) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000


def test_attack_bars_without_source_and_tidy_training_metrics(tmp_path):
    FIGURES.get("attack_bars")(SYNTHETIC["attack_bars"].drop(columns="source"), tmp_path / "a.png")
    tidy = SYNTHETIC["training_curves"].melt(id_vars=["epoch", "model"], var_name="metric")
    FIGURES.get("training_curves")(tidy, tmp_path / "t.png")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "t.png").stat().st_size > 0


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_figure_rejects_missing_columns(tmp_path, name):
    with pytest.raises(SnnRobustError, match=f"figure {name}"):
        FIGURES.get(name)(SYNTHETIC[name].drop(columns="model"), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
