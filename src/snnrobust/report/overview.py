"""The report's first page: every table, figure and claim of the three papers with its status at this scale.

Built from the per-study coverage and claims CSVs the `page` verb writes; a paper whose study this run did
not build is still listed, from its paper-values file, with every slot and claim "not yet run". Each paper's
verdicts are counted (holds, fails, within noise, not yet run), and each claim shows its difference with the
95 % interval beside the paper's own verdict.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.claims import VERDICTS, load_claims
from snnrobust.report.page import _CSS, ILLUSTRATION, _html_table, coverage_line, difference_cells
from snnrobust.report.paper_values import list_papers, list_slots, paper_document

NOT_RUN = "not yet run"
#: Columns of the overview's claims CSV (a study CSV lacking one, as an older one may, leaves it empty).
CLAIM_COLUMNS = ["paper", "claim", "text", "source", "result", "difference", "low", "high", "interval",
                 "paper_result"]


def _read(paths: list[str], what: str) -> dict[str, pd.DataFrame]:
    """Study CSVs by paper (the ``paper`` column of claims, or the file name's study for coverage)."""
    out: dict[str, pd.DataFrame] = {}
    for path in paths:
        if not Path(path).is_file():
            raise SnnRobustError(f"{what} file not found: {path}")
        frame = pd.read_csv(path)
        if "paper" not in frame:
            raise SnnRobustError(f"{what} file {path} has no 'paper' column")
        for paper, part in frame.groupby("paper", sort=False):
            out[str(paper)] = part
    return out


def _unrun_coverage(paper: str) -> pd.DataFrame:
    return pd.DataFrame([{"paper": paper, "slot": s["id"], "kind": s["kind"], "section": s["section"],
                          "status": ILLUSTRATION if s["illustration"] else NOT_RUN, "caption": s["caption"]}
                         for s in list_slots(paper)])


def _unrun_claims(paper: str) -> pd.DataFrame:
    return pd.DataFrame([{"paper": paper, "claim": c.id, "text": c.text, "source": c.source, "result": NOT_RUN}
                         for c in load_claims(paper)])


def overview_frames(coverage_csvs: list[str], claims_csvs: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(coverage, claims) of every paper: the run's rows where its study ran, 'not yet run' elsewhere."""
    coverage, claims = _read(coverage_csvs, "coverage"), _read(claims_csvs, "claims")
    cov = [coverage.get(p, _unrun_coverage(p)) for p in list_papers()]
    cl = [claims.get(p, _unrun_claims(p)) for p in list_papers()]
    return pd.concat(cov, ignore_index=True), pd.concat(cl, ignore_index=True).reindex(columns=CLAIM_COLUMNS)


def verdict_counts(claims: pd.DataFrame) -> pd.DataFrame:
    """How many claims of each paper get each verdict: one row per paper, one column per verdict, and a total."""
    unknown = sorted(set(claims["result"].astype(str)) - set(VERDICTS))
    if unknown:
        raise SnnRobustError(f"claims CSV has unknown verdict(s) {', '.join(map(repr, unknown))}; "
                             f"expected one of: {', '.join(VERDICTS)}")
    counts = pd.crosstab(claims["paper"], claims["result"]).reindex(index=list_papers(), columns=list(VERDICTS),
                                                                    fill_value=0).fillna(0).astype(int)
    return counts.assign(total=counts.sum(axis=1)).rename_axis(index="paper", columns=None).reset_index()


def render_overview(coverage: pd.DataFrame, claims: pd.DataFrame, scale: str) -> str:
    counts = verdict_counts(claims)
    summary = ", ".join(f"{int(counts[k].sum())} {k}" for k in VERDICTS)
    parts = []
    for paper in list_papers():
        title = paper_document(paper)["paper"]["title"]
        cov = coverage[coverage["paper"] == paper]
        cl = claims[claims["paper"] == paper]
        mine = counts.set_index("paper").loc[paper]
        tally = ", ".join(f"{int(mine[k])} {k}" for k in VERDICTS)
        shown = pd.concat([cl[["claim", "text", "source", "result"]],
                           difference_cells(cl).rename("difference (95 % interval)"),
                           cl[["interval", "paper_result"]]], axis=1)
        parts.append(
            f'<section id="{paper}"><h2>{html.escape(title)}</h2><p class="coverage">{coverage_line(cov)}</p>'
            f"{_html_table(cov[['slot', 'kind', 'section', 'status', 'caption']], 'coverage-table')}"
            f'<p class="verdicts">Claims: {tally}.</p>'
            f"{_html_table(shown, 'claims-table', status_col='result')}</section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Overview</title>'
            f"<style>{_CSS}</style></head>\n<body><h1>What reproduces, paper by paper</h1>"
            f"<p>{html.escape(scale)} scale. Claims: {summary}. A claim holds or fails when the 95 % interval of "
            f"its difference (a paired bootstrap over the evaluation samples and seeds) lies on one side of 0, and "
            f"is within noise when it contains 0. Each paper's own page has the paper-vs-reproduced tables.</p>"
            f"{_html_table(counts, 'verdict-counts')}{''.join(parts)}</body></html>\n")


def write_overview(coverage_csvs: list[str], claims_csvs: list[str], scale: str, out: str, out_csv: str) -> None:
    from snnrobust.io import atomic_path

    coverage, claims = overview_frames(coverage_csvs, claims_csvs)
    page = render_overview(coverage, claims, scale)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(out_csv) as tmp:
        claims[CLAIM_COLUMNS].to_csv(tmp, index=False, float_format="%.6g")
