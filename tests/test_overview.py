"""The report's first page lists every table, figure and claim of the three papers with its status."""

import pandas as pd

from conftest import run_cli
from snnrobust.report.claims import load_claims
from snnrobust.report.paper_values import list_papers, list_slots


def test_overview_lists_every_slot_and_claim_of_all_papers(tmp_path):
    cov = tmp_path / "sr_coverage.csv"
    claims = tmp_path / "sr_claims.csv"
    sr_slots = list_slots("sr")
    pd.DataFrame([{"paper": "sr", "slot": s["id"], "kind": s["kind"], "section": s["section"],
                   "status": "reproduced" if i == 0 else "no reproduced rows yet", "caption": s["caption"]}
                  for i, s in enumerate(sr_slots)]).to_csv(cov, index=False)
    sr_claims = load_claims("sr")
    pd.DataFrame([{"paper": "sr", "claim": c.id, "text": c.text, "source": c.source,
                   "result": "holds" if i == 0 else "fails"} for i, c in enumerate(sr_claims)]).to_csv(claims, index=False)
    out, out_csv = tmp_path / "overview.html", tmp_path / "overview.csv"
    run_cli("overview", "--coverage", str(cov), "--claims", str(claims), "--scale", "default",
            "--out", str(out), "--out-csv", str(out_csv))
    page = out.read_text()
    for paper in list_papers():
        for slot in list_slots(paper):
            assert slot["id"] in page
    table = pd.read_csv(out_csv)
    assert set(table["paper"]) == set(list_papers())
    assert len(table) == sum(len(load_claims(p)) for p in list_papers())
    # the study that ran keeps its verdicts; the papers it did not build are "not yet run"
    assert table.loc[table["paper"] == "sr", "result"].tolist() == ["holds"] + ["fails"] * (len(sr_claims) - 1)
    assert set(table.loc[table["paper"] != "sr", "result"]) == {"not yet run"}
    assert "1 of " in page and "tables/figures reproduced" in page


def test_overview_with_a_missing_input_fails_in_one_line(tmp_path):
    proc = run_cli("overview", "--coverage", str(tmp_path / "nope.csv"), "--claims", "--scale", "default",
                   "--out", str(tmp_path / "o.html"), "--out-csv", str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "not found" in proc.stderr
    assert not (tmp_path / "o.html").exists()
