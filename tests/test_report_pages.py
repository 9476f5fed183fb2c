"""Report pages: one per paper, coverage of every table and figure, claims with holds/fails/within noise/not yet run,
paper-vs-reproduced tables paired strictly; bad report sections fail in one line before any output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_cli
from snnrobust.errors import SnnRobustError
from snnrobust.report import list_slots, validate_claims, validate_report_section
from snnrobust.report.claims import HOLDS, FAILS, NOT_RUN, VERDICTS, evaluate, known_keys, load_claims, parse_claims
from snnrobust.report.page import build_page, coverage_line
from snnrobust.report.paper_values import list_papers, paper_document
from snnrobust.report.reproduced import measurements

EPS = 8 / 255
SPEC = {
    "study": "sr", "paper": "sr", "scale": "default",
    "slots": {"sr_table3": "attacks", "sr_table1": "attacks", "sr_table2": "attacks", "sr_figure4": "grad_norms"},
    "method_map": {"vanilla": "Vanilla", "at": "AT", "sr_star": "SR*"},
    "attack_map": {"fgsm": "FGSM", "pgd10": "PGD", "ens_pgd30": "PGD"},
    "stand_ins": {"digits": "CIFAR-10"}, "arch_map": {"tiny": "WRN-16"}, "stand_in_models": ["tiny"],
    "attack_keys": {"fgsm": {"ensemble": False}, "pgd10": {"ensemble": False}, "ens_pgd30": {"ensemble": True}},
}
#: robust accuracy per (method, attack); clean accuracy per method
ROBUST = {("vanilla", "pgd10"): 5.0, ("at", "pgd10"): 20.0, ("sr_star", "pgd10"): 35.0, ("vanilla", "fgsm"): 30.0,
          ("vanilla", "ens_pgd30"): 2.0}
CLEAN = {"vanilla": 95.0, "at": 90.0, "sr_star": 85.0}


def _attack_file(path: Path, method: str, attack: str, robust: float, threat: str | None = "white-box") -> Path:
    row = dict(dataset="digits", model="tiny", method=method, seed=0, attack=attack, attack_name=attack, eps=EPS,
               eps_255=8.0, steps=1 if attack == "fgsm" else int(attack[-2:]), n=64, clean_acc=CLEAN[method],
               robust_acc=robust, wall_s=1.0, forward_passes=10, backward_passes=10)
    if threat:
        row["threat"] = threat
    path.write_text(json.dumps({"kind": "attack", "rows": [row]}))
    return path


@pytest.fixture()
def results(tmp_path) -> dict[str, list[str]]:
    attacks = [str(_attack_file(tmp_path / f"{m}_{a}.json", m, a, v)) for (m, a), v in ROBUST.items()]
    transfer = [str(_attack_file(tmp_path / "t_at.json", "at", "pgd10", 60.0, threat=None)),
                str(_attack_file(tmp_path / "t_sr.json", "sr_star", "pgd10", 40.0, threat=None))]
    grads = tmp_path / "grads.json"
    grads.write_text(json.dumps({"rows": [
        dict(dataset="digits", model="tiny", method=m, seed=0, statistic=s, mean=v, std=0.1, n=64, zero_tol=0.0)
        for m, l1 in (("vanilla", 30.0), ("sr_star", 10.0)) for s, v in (("l1", l1), ("l0_fraction", 0.5))]}))
    metrics = tmp_path / "metrics.csv"
    pd.DataFrame([dict(dataset="digits", model="tiny", method="vanilla", seed=0, epoch=e, lr=0.1, train_loss=1 / e,
                       train_acc=80 + e, test_loss=1 / e, test_acc=80 + e) for e in (1, 2)]).to_csv(metrics, index=False)
    return {"attacks": attacks, "transfer": transfer, "analyses": [str(grads)], "training": [str(metrics)]}


def _page(results, spec=SPEC):
    return build_page(measurements(results["attacks"], results["transfer"], results["analyses"],
                                   results["training"], spec), spec)


# --- the page --------------------------------------------------------------------------------------------------

def test_page_lists_every_table_and_figure_with_status(results):
    page = _page(results)
    ids = [s["id"] for s in list_slots("sr")]
    assert page.coverage["slot"].tolist() == ids and len(ids) == 7 + 6
    status = page.coverage.set_index("slot")["status"]
    assert status[["sr_table1", "sr_table3", "sr_figure4"]].eq("reproduced").all()
    assert status["sr_table2"] == "no reproduced rows yet"  # a slot whose dataset was not run says so
    assert status["sr_figure2"].startswith("illustration") and status["sr_table5"] == "no reproduced rows yet"
    assert "3 of 12 tables/figures reproduced (1 illustrations" in page.html
    assert coverage_line(page.coverage) in page.html
    for slot in ids:
        assert f"<td>{slot}</td>" in page.html
    assert page.html.index('class="coverage"') < page.html.index("<h2>Claims") < page.html.index("Paper vs reproduced")
    assert "<script" not in page.html and 'src="data:image/png;base64,' in page.html


def test_claims_hold_fail_or_wait_as_the_data_says(results):
    claims = _page(results).claims.set_index("claim")
    assert claims.index.tolist() == [c.id for c in load_claims("sr")]
    assert set(claims["result"]) <= set(VERDICTS)
    # recomputed from the inputs: SR* 35 > AT 20 under white-box PGD10; black-box 60/40 > white-box 20/35
    assert claims.loc["sr_star_beats_at_white_box", "result"] == HOLDS
    assert claims.loc["sr_star_beats_at_white_box", ["left", "right"]].tolist() == [35.0, 20.0]
    assert claims.loc["sr_star_beats_at_black_box", "result"] == FAILS  # 40 < 60
    assert claims.loc["black_box_weaker_than_white_box", "result"] == HOLDS
    assert claims.loc["robustness_costs_clean_accuracy", "result"] == HOLDS  # 95 > 85
    assert claims.loc["sr_star_sparser_gradient", "result"] == HOLDS  # l1 10 < 30
    # these files store no per-sample outcomes: accuracy claims have no interval, the norms one from std and n
    assert claims.loc["sr_star_beats_at_white_box", "interval"].startswith("no interval")
    assert "normal approximation" in claims.loc["sr_star_sparser_gradient", "interval"]
    assert claims.loc["sr_star_sparser_gradient", "high"] < 0
    assert claims.loc["sr_beats_vanilla_fgsm", "result"] == NOT_RUN  # no SR model ran
    assert claims.loc["ensemble_stronger_than_single_surrogate", "result"] == NOT_RUN  # PGD10 vs PGD30 differ in steps
    assert claims["paper_result"].isin([HOLDS, FAILS, "not printed"]).all()
    assert claims.loc["sr_star_sparser_gradient", "paper_result"] == "not printed"  # a figure: no printed values
    assert claims.loc["sr_star_beats_at_white_box", "paper_result"] == HOLDS


def test_claim_is_like_for_like():
    rows = pd.DataFrame([dict(dataset="d", arch="a", method=m, attack="PGD", eps=EPS, steps=s, metric="accuracy",
                              value=v) for m, s, v in (("SR*", 10, 30.0), ("AT", 10, 20.0), ("AT", 50, 99.0))])
    claim = next(c for c in load_claims("sr") if c.id == "sr_star_beats_at_white_box")
    claim_any_threat = parse_claims([{**claim.__dict__, "left": {k: v for k, v in claim.left.items() if k != "threat"},
                                      "right": {k: v for k, v in claim.right.items() if k != "threat"},
                                      "ignore": []}], "sr", "test")[0]
    verdict = evaluate(claim_any_threat, rows, known_keys("sr"))
    assert (verdict.status, verdict.left, verdict.right, verdict.settings) == (HOLDS, 30.0, 20.0, 1)
    flipped = rows.assign(value=rows["value"].where(rows["method"] != "SR*", 10.0))
    assert evaluate(claim_any_threat, flipped, known_keys("sr")).status == FAILS
    assert evaluate(claim, rows, known_keys("sr")).status == NOT_RUN  # no row states its threat model


def test_stand_in_rows_show_paper_beside_ours_without_difference(results):
    page = _page(results)
    grid, long = page.html.split('id="sr_table3"')[1].split("</section>")[0].split("<details>")
    assert '<td>Vanilla†</td><td class="num">95.0 (93.9)</td>' in grid  # Vanilla clean: ours (paper), a stand-in
    assert '<td class="num">— (0.0)</td>' in grid  # ensemble PGD30: the paper's 0.00, no paired number of ours
    assert grid.count("ours run on stand-ins: digits → CIFAR-10; tiny → WRN-16") == 1  # once, not per cell
    assert "<th>paper</th>" in long and "<th>reproduced</th>" in long and "<th>diff</th>" not in long
    assert "<td>93.89</td>" in long and "<td>95</td>" in long  # the tidy long form keeps every row


def test_file_kind_sets_the_threat_model(results):
    ours = measurements(results["attacks"], results["transfer"], [], [], SPEC)
    attacked = ours[(ours["metric"] == "accuracy") & (ours["attack"] != "clean")]
    assert set(attacked.loc[attacked["kind"] == "transfer", "threat"]) == {"black-box"}
    assert set(attacked.loc[attacked["kind"] == "attacks", "threat"]) == {"white-box"}
    assert ours.loc[ours["attack"] == "clean", "threat"].isna().all()


def test_every_paper_has_claims_and_figures():
    for paper in list_papers():
        doc = paper_document(paper)
        assert doc["figures"] and len(load_claims(paper)) >= 5
        validate_claims(paper)


# --- the CLI verb --------------------------------------------------------------------------------------------

def _page_args(results, out: Path, spec=SPEC) -> list[str]:
    return ["page", "--study", "sr", "--attacks", *results["attacks"], "--transfer", *results["transfer"],
            "--analyses", *results["analyses"], "--training", *results["training"], "--spec", json.dumps(spec),
            "--out", str(out / "sr.html"), "--out-csv", str(out / "sr_claims.csv"),
            "--out-coverage", str(out / "sr_coverage.csv")]


def test_page_verb_writes_page_claims_and_coverage(results, tmp_path):
    run_cli(*_page_args(results, tmp_path / "pages"))
    claims = pd.read_csv(tmp_path / "pages" / "sr_claims.csv")
    coverage = pd.read_csv(tmp_path / "pages" / "sr_coverage.csv")
    assert len(claims) == len(load_claims("sr")) and len(coverage) == 13
    assert (tmp_path / "pages" / "sr.html").read_text().startswith("<!DOCTYPE html>")


def test_page_verb_runs_with_no_results(tmp_path):
    out = tmp_path / "pages"
    run_cli("page", "--study", "sr", "--attacks", "--spec", json.dumps(SPEC), "--out", str(out / "sr.html"),
            "--out-csv", str(out / "c.csv"))
    assert "0 of 12 tables/figures reproduced" in (out / "sr.html").read_text()
    assert set(pd.read_csv(out / "c.csv")["result"]) == {NOT_RUN}


@pytest.mark.parametrize("change, message", [
    ({"slots": {"sr_table9": "attacks"}}, "slot 'sr_table9' is not a table or figure of paper 'sr'"),
    ({"slots": {"sr_figure9": "attacks"}}, "slot 'sr_figure9' is not a table or figure"),
    ({"slots": {"sr_table1": "nope"}}, "unknown view 'nope'"),
    ({"paper": "nature"}, "paper 'nature' is not one of"),
    ({"method_map": {"vanilla": "Plain"}}, "maps 'vanilla' to 'Plain', which is no method"),
    ({"attack_map": {"pgd10": "PGD10"}}, "maps 'pgd10' to 'PGD10', which is no attack"),
    ({"claims": [{"id": "x", "text": "t", "left": {"method": "Magic", "metric": "accuracy"}, "op": ">",
                  "right": {"method": "AT", "metric": "accuracy"}}]}, "method 'Magic' does not exist"),
    ({"claims": [{"id": "x", "text": "t", "left": {"attack": "Laser", "metric": "accuracy"}, "op": ">",
                  "right": {"attack": "PGD", "metric": "accuracy"}}]}, "attack 'Laser' does not exist"),
    ({"claims": [{"id": "x", "text": "t", "left": {"metric": "happiness"}, "op": ">",
                  "right": {"metric": "accuracy"}}]}, "metric 'happiness' does not exist"),
    ({"claims": [{"id": "x", "text": "t", "left": {"metric": "l1"}, "op": "!=", "right": {"metric": "l1"}}]},
     "op '!=' is not one of"),
    ({"colour": "red"}, "unknown field(s) colour"),
])
def test_bad_report_section_is_one_line(change, message):
    with pytest.raises(SnnRobustError, match=re.escape(message)) as err:
        validate_report_section("sr", {**SPEC, **change})
    assert "\n" not in str(err.value)


def test_page_verb_rejects_a_bad_slot_before_any_output(results, tmp_path):
    spec = {**SPEC, "slots": {"sr_table9": "attacks"}}
    proc = run_cli(*_page_args(results, tmp_path / "pages", spec), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("snnrobust: error: report of study 'sr': slot 'sr_table9'")
    assert not (tmp_path / "pages").exists() or not any((tmp_path / "pages").iterdir())


def test_bad_paper_claim_is_one_line(monkeypatch):
    from snnrobust.report import claims as claims_module

    doc = {**paper_document("sr"), "claims": [{"id": "c", "text": "t", "left": {"method": "SR*", "metric": "l9"},
                                               "op": "<", "right": {"method": "AT", "metric": "l1"}}]}
    monkeypatch.setattr(claims_module, "paper_document", lambda paper: doc)
    with pytest.raises(SnnRobustError, match="claim c left: metric 'l9' does not exist"):
        validate_claims("sr")


# --- the paper-scale config pairs the SR paper's vanilla rows --------------------------------------------------

def _paper_scale_sr_spec() -> tuple[dict, dict]:
    """The SR study's report section of config/paper.yaml and the config it sits in."""
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    studies = config.get("studies") or {}
    found = [name for name, body in studies.items() if (body.get("report") or {}).get("paper") == "sr"]
    assert found, "config/paper.yaml declares no study whose report.paper is sr"
    return studies[found[0]]["report"], config


def test_paper_config_pairs_the_sr_vanilla_rows():
    section, config = _paper_scale_sr_spec()
    validate_report_section("sr", section)
    vanilla = [m for m, name in section.get("method_map", {}).items() if name == "Vanilla"]
    models = {k: v["paper_name"] for k, v in config["models"].items() if "paper_name" in v}
    datasets = {**section.get("dataset_names", {}), **section.get("stand_ins", {})}
    rows = pd.DataFrame([dict(dataset=d, arch=m, method=v, attack="clean", eps=0.0, steps=0, metric="accuracy",
                              value=90.0) for d in datasets for m in models for v in vanilla])
    tables = [s for s in section.get("slots", {}) if "_table" in s]
    paired = 0
    for table in tables:
        from snnrobust.report.tables import paper_vs_reproduced

        out = paper_vs_reproduced(rows, table, stand_ins=section.get("stand_ins"), arch_map=models,
                                  value_maps={"dataset": section.get("dataset_names", {}),
                                              "method": section.get("method_map", {})})
        paired += int((out["paper"].notna() & out["reproduced"].notna() & out["paper_method"].eq("Vanilla")).sum())
    assert paired > 0


# --- the README's results section comes from results/ --------------------------------------------------------

def test_readme_results_section_is_generated_from_results(results, tmp_path):
    from snnrobust.report.readme import CAVEAT, render_section, update_readme

    res = tmp_path / "res"
    for i, path in enumerate(results["attacks"]):
        target = res / "attacks" / f"run{i}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Path(path).read_text())
    (res / "benchmarks").mkdir()
    (res / "benchmarks" / "a.tsv").write_text("s\th:m:s\n60.0\t0:01:00\n")
    (res / "benchmarks" / "b.tsv").write_text("s\th:m:s\n30.0\t0:00:30\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- results:default:start -->\nold\n<!-- results:default:end -->\ntail\n")
    run_cli("readme-results", "--results", str(res), "--scale", "default", "--readme", str(readme))
    text = readme.read_text()
    assert "old" not in text and text.endswith("tail\n") and CAVEAT in text and "1.5 min" in text
    vanilla = next(line for line in text.splitlines() if "| vanilla |" in line)
    cells = [c.strip() for c in vanilla.strip("|").split("|")]
    header = [c.strip() for c in next(line for line in text.splitlines() if "| clean |" in line).strip("|").split("|")]
    got = dict(zip(header, cells))
    assert got["clean"] == f"{CLEAN['vanilla']:.1f} %" and got["pgd10 8/255"] == "5.0 %" and got["fgsm 8/255"] == "30.0 %"
    assert got["ens_pgd30 8/255"] == "2.0 %"
    update_readme(readme, "default", render_section(res, "default"))
    assert readme.read_text() == text  # same results, byte-identical section
    with pytest.raises(SnnRobustError, match="no '<!-- results:cpu:start -->'"):
        update_readme(readme, "cpu", "x")
    assert readme.read_text() == text


def test_a_stand_in_model_stands_in_for_a_single_arch_table():
    """A stand-in labelled WRN-16 pairs with the VGG-11-only Tab. 6/7 (still labelled a stand-in); a real model
    and two-arch tables keep their labels."""
    from snnrobust.report.page import slot_arch_map

    spec = {"arch_map": {"tiny": "WRN-16", "real": "WRN-16"}, "stand_in_models": ["tiny"]}
    assert slot_arch_map("sr_table6", spec) == {"tiny": "VGG-11", "real": "WRN-16"}
    assert slot_arch_map("sr_table7", spec)["tiny"] == "VGG-11"
    assert slot_arch_map("sr_table3", spec)["tiny"] == "WRN-16"  # the table's own arch already
    assert slot_arch_map("sr_table1", spec)["tiny"] == "WRN-16"  # two archs: the label decides
