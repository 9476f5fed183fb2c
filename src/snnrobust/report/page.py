"""One report page per paper: coverage of its tables and figures, its claims, the gradient-masking checklist (where
a study runs it), then paper-vs-reproduced tables.

The page spec is a study's config ``report:`` section (``paper``, ``slots``, ``method_map``, ``attack_map``,
``dataset_names``, ``stand_ins``, ``claims``) plus ``study``, ``scale``, ``arch_map``, ``stand_in_models`` and the
``model_keys`` / ``attack_keys`` / ``method_keys`` that give config ids their paper keys. The page is one
self-contained HTML file (inline CSS, figures as inline PNG, no scripts), fit for the Snakemake report.
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.budget import with_budget_rows
from snnrobust.report.claims import Claim, evaluate, known_keys, load_claims, parse_claims
from snnrobust.report.layout import lay_out
from snnrobust.report.mathtext import to_html
from snnrobust.report.paper_values import list_papers, list_slots, paper_document, table_meta
from snnrobust.report.reproduced import VIEW_KINDS, in_paper_vocabulary, view_rows, without_epochs
from snnrobust.report.tables import eps_label, paper_vs_reproduced

#: Fields a study's report section may hold.
SECTION_FIELDS = {"paper", "slots", "method_map", "attack_map", "dataset_names", "stand_ins", "claims",
                  "model_keys", "attack_keys", "method_keys"}
#: Fields the page verb adds to the section (from the study and the config's models).
SPEC_FIELDS = SECTION_FIELDS | {"study", "scale", "arch_map", "stand_in_models", "title"}
#: The registered figure drawn for a figure slot, by the view that feeds it.
FIGURE_OF_VIEW = {"attacks": "eps_sweep", "transfer": "eps_sweep", "grad_norms": "grad_norms",
                  "analyses": "grad_norms", "training": "training_curves", "random_vs_fgsm": "random_vs_fgsm",
                  "lambda_sweep": "lambda_sweep", "grad_hist": "grad_hist", "grad_heatmap": "grad_heatmap",
                  "vulnerability": "grad_norms", "op_sparsity": "op_sparsity",
                  "sparsity_vs_weight_grad": "sparsity_vs_weight_grad", "cost": "accuracy_vs_cost",
                  "graph_cost": "accuracy_vs_cost", "ablation": "spgd_ablation", "redundancy": "redundancy_heatmap",
                  "training_curves": "training_curves"}
#: The per-epoch metrics a ``training_curves`` figure draws, in panel order, with their panel titles: the
#: Spiking-PGD paper's accuracy curves (Figs. 7, 10, 11: clean and robust) and precision curves (Figs. 8, 12, 13:
#: instantaneous and average over the epochs so far).
CURVE_METRICS = {"test_acc": "clean accuracy (%)", "robust_accuracy": "robust accuracy (%)",
                 "precision": "precision (%)", "precision_cumulative": "average precision (%)"}
NOT_PRINTED = "not printed"
CLAIM_COLUMNS = ["paper", "claim", "text", "source", "result", "reproduced", "settings", "left", "right",
                 "difference", "low", "high", "interval", "paper_result", "paper_values"]
REPRODUCED, NO_ROWS, ILLUSTRATION = "reproduced", "no reproduced rows yet", "illustration (nothing to measure)"


def _views() -> list[str]:
    return list(VIEW_KINDS)


def validate_report_section(study: str, section: Any) -> None:
    """One-line error for a report section naming an unknown paper, field, slot (a table or figure the paper
    values do not have), view, mapped method/attack name or claim term."""
    where = f"report of study {study!r}"
    if not isinstance(section, dict):
        raise SnnRobustError(f"{where}: must be a mapping")
    unknown = sorted(section.keys() - SPEC_FIELDS)
    if unknown:
        raise SnnRobustError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(SECTION_FIELDS))}")
    paper = section.get("paper")
    if paper not in list_papers():
        raise SnnRobustError(f"{where}: paper {paper!r} is not one of {', '.join(list_papers())}")
    slot_ids = [s["id"] for s in list_slots(paper)]
    slots = section.get("slots") or {}
    if not isinstance(slots, dict):
        raise SnnRobustError(f"{where}: slots must map a table/figure id to a view")
    for slot, view in slots.items():
        if slot not in slot_ids:
            raise SnnRobustError(f"{where}: slot {slot!r} is not a table or figure of paper {paper!r}; "
                                 f"choose one of: {', '.join(slot_ids)}")
        if view not in _views():
            raise SnnRobustError(f"{where}: slot {slot!r} names unknown view {view!r}; choose one of: "
                                 f"{', '.join(_views())}")
    from snnrobust.report.paper_values import paper_vocabulary

    vocabulary = paper_vocabulary(paper)
    for key, field_name in (("method", "method_map"), ("attack", "attack_map")):
        for ours, theirs in (section.get(field_name) or {}).items():
            if str(theirs).casefold() not in vocabulary[key]:
                raise SnnRobustError(f"{where}: {field_name} maps {ours!r} to {theirs!r}, which is no {key} of paper "
                                     f"{paper!r}; choose one of: {', '.join(sorted(vocabulary[key]))}")
    parse_claims(section.get("claims") or [], paper, where)


@dataclass
class Page:
    """A rendered page and its tidy companions (coverage and claims, one row each)."""

    html: str
    coverage: pd.DataFrame
    claims: pd.DataFrame


def slot_arch_map(slot: str, spec: Mapping) -> dict:
    """The arch map for one paper table: a stand-in model whose label the table never uses stands in for the
    table's architecture when the table has only one (the SR paper's Tab. 2, 6, 7 are VGG-11 only, Tab. 3, 4
    WRN-16 only); the row stays labelled a stand-in. Real models keep their own name."""
    from snnrobust.report.tables import _paper_table

    arch_map = dict(spec.get("arch_map") or {})
    table = _paper_table(slot)
    archs = set(table["arch"].dropna()) if "arch" in table else set()
    if len(archs) == 1:
        for model in spec.get("stand_in_models") or []:
            if arch_map.get(model) not in archs:
                arch_map[model] = next(iter(archs))
    return arch_map


def _slot_table(slot: str, rows: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """Paper rows beside the reproduced rows paired with them (stand-in rows carry no difference)."""
    from snnrobust.report.build import relevant_rows

    maps = {"dataset": dict(spec.get("dataset_names") or {}), "method": dict(spec.get("method_map") or {}),
            "attack": dict(spec.get("attack_map") or {})}
    joined = paper_vs_reproduced(rows, slot, stand_ins=spec.get("stand_ins") or {}, arch_map=slot_arch_map(slot, spec),
                                 value_maps=maps, stand_in_archs=spec.get("stand_in_models") or [])
    paired = joined["paper"].notna() & joined["reproduced"].notna()
    return relevant_rows(joined[paired | joined["reproduced"].isna()])


def _figure_png(view: str, rows: pd.DataFrame) -> str | None:
    """The registered figure of a view drawn from its rows, as base64 PNG (None when there is nothing to draw)."""
    from snnrobust.report.figures import FIGURES

    kind = FIGURE_OF_VIEW[view]
    data = _figure_data(view, rows)
    if data.empty:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{kind}.png"
        FIGURES.get(kind)(data, out)
        return base64.b64encode(out.read_bytes()).decode("ascii")


def _figure_data(view: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The tidy frame the view's figure expects, from the study's measurements."""
    if FIGURE_OF_VIEW[view] == "eps_sweep":
        return rows[(rows["metric"] == "accuracy") & (rows["attack"] != "clean")]
    if view == "lambda_sweep":
        return _lambda_curves(rows)
    if view == "training_curves":
        return _training_curves(rows)
    return rows  # random_vs_fgsm keeps the clean point of the runs with curves itself (panels.random_vs_fgsm_panels)


def _training_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch rows of the metrics in ``CURVE_METRICS``, in its order and under its panel titles (one curve
    per run in each panel, labelled by what tells the runs apart: the method id, and the model or dataset where
    they vary)."""
    order = {metric: i for i, metric in enumerate(CURVE_METRICS)}
    shown = rows[rows["metric"].isin(list(CURVE_METRICS))]
    shown = shown.assign(_order=shown["metric"].map(order)).sort_values("_order", kind="stable")
    return shown.drop(columns="_order").assign(metric=shown["metric"].map(CURVE_METRICS))


def _lambda_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the λ sweep's curves: every clean row, the attacks at the (attack, ε) measured at the most λ
    (attacks run on only some of the models, e.g. the Tab. 1 ensemble on λ = 0 and the main SR, are no curve), and
    every other row (gradient norms, training test_acc); the figure labels the curves."""
    if "attack" not in rows:
        return rows
    is_acc = (rows["kind"] != "analyses") & (rows["metric"] == "accuracy")
    attacked = is_acc & (rows["attack"].astype(str) != "clean")
    eps = pd.to_numeric(rows["eps"], errors="coerce").fillna(0.0).round(8) if "eps" in rows else 0.0
    curve = rows["attack"].astype(str) + "@" + pd.Series(eps, index=rows.index).astype(str)
    width = rows[attacked].groupby(curve[attacked])["lam"].nunique()
    return rows[~attacked | curve.isin(width[width == width.max()].index)]


def build_page(measurements: pd.DataFrame, spec: Mapping) -> Page:
    """Coverage, claims and paper-vs-reproduced tables of one study's paper, from its measurements."""
    paper = spec.get("paper")
    validate_report_section(str(spec.get("study", paper)), dict(spec))
    slots = dict(spec.get("slots") or {})
    coverage, sections = [], []
    figures: dict[str, str | None] = {}
    for slot in list_slots(paper):
        view = slots.get(slot["id"])
        rows = view_rows(measurements, view)
        status, count, body = NO_ROWS, 0, ""
        if slot["illustration"]:
            status = ILLUSTRATION
        elif view and slot["kind"] == "table" and not rows.empty:
            table = _slot_table(slot["id"], rows, spec)
            count = int(table["reproduced"].notna().sum())
            status = REPRODUCED if count else NO_ROWS
            body = _table_section(slot, table) if count else _empty_section(slot)
        elif view and slot["kind"] == "figure" and not rows.empty:
            if view not in figures:
                figures[view] = _figure_png(view, rows)
            count = len(rows)
            status = REPRODUCED if figures[view] else NO_ROWS
            body = _figure_section(slot, figures[view], _figure_table(view, rows)) if figures[view] else ""
        coverage.append({"paper": paper, "slot": slot["id"], "kind": slot["kind"], "section": slot["section"],
                         "view": view or "", "status": status, "reproduced_rows": count, "caption": slot["caption"]})
        sections.append(body)
    coverage_df = pd.DataFrame(coverage)
    claims_df = claim_table(paper, measurements, spec)
    masking = _masking_section(measurements, spec)
    page = _render(paper, spec, coverage_df, claims_df, [s for s in sections if s], masking)
    return Page(page, coverage_df, claims_df)


def claim_table(paper: str, measurements: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """Every claim of the paper (and of the study) with our verdict and the paper's, one row each; ours carries
    the difference (left − right − margin) with its 95 % interval (low, high) and what the interval is over."""
    from snnrobust.report.intervals import OutcomeStore
    from snnrobust.report.paper_values import load_paper_values

    claims: list[Claim] = load_claims(paper) + parse_claims(spec.get("claims") or [], paper, "report")
    keys = known_keys(paper)
    # training: each run's last epoch only; Spiking-PGD's low-budget points meet the baselines at equal budget
    ours = with_budget_rows(in_paper_vocabulary(without_epochs(measurements), spec))
    theirs = load_paper_values(paper)
    load = OutcomeStore()
    rows = []
    for claim in claims:
        mine, printed = evaluate(claim, ours, keys, load), evaluate(claim, theirs, keys)
        rows.append({"paper": paper, "claim": claim.id, "text": claim.text, "source": claim.source,
                     "result": mine.status, "reproduced": mine.detail, "settings": mine.settings,
                     "left": mine.left, "right": mine.right, "difference": mine.interval.diff,
                     "low": mine.interval.low, "high": mine.interval.high, "interval": mine.interval.over,
                     "paper_result": printed.status if printed.settings else NOT_PRINTED,
                     "paper_values": printed.detail if printed.settings else "the paper prints no values (a figure)"})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


_CSS = """body{font-family:sans-serif;margin:1em;max-width:80em;overflow-wrap:break-word}table{border-collapse:collapse;
font-size:13px;margin-bottom:1em;max-width:100%}td.long,code{overflow-wrap:anywhere}td.long{min-width:7em}
details{max-width:100%;overflow-x:auto}img{height:auto}math{max-width:100%}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f0f0f0}
td.num{text-align:right}.holds{background:#e3f6e3}.fails{background:#fbe3e3}.within-noise{background:#fbf5dc}
.not-yet-run{color:#777}.pass{background:#e3f6e3}.fail{background:#fbe3e3}.not-run{color:#777}
.paper-layout{margin-bottom:.3em}.paper-layout th{text-align:center}.layout-note{margin:.15em 0;font-size:.9em}
tr.ours-only td{font-style:italic}details{margin:.5em 0}
.coverage{font-size:1.2em;font-weight:bold}img{max-width:100%}"""


#: Columns whose text may hold ``$...$`` TeX (paper captions, claim texts, notes): rendered as MathML.
MATH_COLUMNS = frozenset({"caption", "text", "note", "notes"})


def _cell(value: Any, math: bool = False) -> str:
    """A cell's HTML: numbers to 4 digits, missing as '—', text escaped (``$...$`` as MathML when ``math``)."""
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.4g}"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return to_html(value) if math else html.escape(str(value))


#: A word of 20 characters or more that is a path, hash, job name or option (hex, or holding / \ = : or .).
_LONG_WORD = re.compile(r"(?<!\S)(?=\S{20,})(?:[0-9a-f]+(?!\S)|\S*[/\\=:.]\S*)")


def td(value: Any, math: bool = False) -> str:
    """A table cell; one holding a path, hash or command gets class ``long``, which may wrap anywhere, so a table
    of them still fits the window (ids and words keep wrapping at spaces only)."""
    cls = ' class="long"' if isinstance(value, str) and _LONG_WORD.search(value) else ""
    return f"<td{cls}>{_cell(value, math)}</td>"


def th(name: Any) -> str:
    """A header cell whose name may wrap after each underscore (``paper_<wbr>dataset``), not only at spaces."""
    return f"<th>{html.escape(str(name)).replace('_', '_<wbr>')}</th>"


def _html_table(df: pd.DataFrame, css_class: str, status_col: str | None = None) -> str:
    head = "".join(th(c) for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cls = f' class="{row[status_col].replace(" ", "-")}"' if status_col else ""
        body.append(f"<tr{cls}>" + "".join(td(v, c in MATH_COLUMNS) for c, v in row.items()) + "</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def long_form(table: pd.DataFrame) -> pd.DataFrame:
    """The tidy rows of one paper table (one per number), without the columns that say nothing here: the
    difference only where some row has one."""
    shown = table.drop(columns=[c for c in ("reproduced_std", "stand_in") if c in table])
    if "diff" in shown and shown["diff"].isna().all():
        shown = shown.drop(columns="diff")
    return shown.dropna(axis=1, how="all").reset_index(drop=True)


def _csv_link(frame: pd.DataFrame, name: str) -> str:
    """A download link carrying ``frame`` as CSV in a data URI (pages are self-contained files in the report)."""
    data = base64.b64encode(frame.to_csv(index=False).encode("utf-8")).decode("ascii")
    return f'<a download="{html.escape(name)}.csv" href="data:text/csv;base64,{data}">{html.escape(name)}.csv</a>'


def _table_section(slot: dict, table: pd.DataFrame) -> str:
    """One paper table in the paper's layout (cells: reproduced (paper)); its tidy long form folded below, with a
    CSV download of it."""
    tidy = long_form(table)
    shown = tidy.assign(eps=tidy["eps"].map(eps_label)) if "eps" in tidy else tidy
    meta = table_meta(slot["id"])
    notes = "".join(f"<li>{to_html(n)}</li>" for n in meta.get("notes", []))
    return (f'<section class="slot" id="{slot["id"]}"><h3>{to_html(slot["caption"])}</h3>'
            f"<p>Section {html.escape(slot['section'])}. Our numbers beside the paper's, paired on every key the "
            f"paper row declares, in the paper's rows and columns.</p>{lay_out(table, slot['id']).html}"
            f"<details><summary>long form (tidy rows)</summary><p>{_csv_link(tidy, slot['id'])}</p>"
            f"{_html_table(shown, 'paper-vs-reproduced')}</details><ul class='notes'>{notes}</ul></section>")


def _empty_section(slot: dict) -> str:
    return (f'<section class="slot" id="{slot["id"]}"><h3>{to_html(slot["caption"])}</h3>'
            f"<p>No reproduced rows yet: no result of this study determines every key of this table's rows.</p>"
            "</section>")


def _figure_table(view: str, rows: pd.DataFrame) -> str:
    """The numbers drawn, as a table under the figure, for the views that have one (Theorem 4.4's, Fig. 9's)."""
    from snnrobust.report.panels_spgd import ablation_table
    from snnrobust.report.panels_trail import theorem44_table

    tables = {"sparsity_vs_weight_grad": theorem44_table, "ablation": ablation_table}
    if view not in tables:
        return ""
    table = tables[view](rows)
    return _html_table(table, "figure-table") if not table.empty else ""


def _figure_section(slot: dict, png: str, table: str = "") -> str:
    return (f'<section class="slot" id="{slot["id"]}"><h3>{to_html(slot["caption"])}</h3>'
            f"<p>Section {html.escape(slot['section'])}: the reproduced counterpart (the paper prints no numbers).</p>"
            f'<img alt="{slot["id"]}" src="data:image/png;base64,{png}">{table}</section>')


def difference_cells(claims: pd.DataFrame) -> pd.Series:
    """'+0.9 [−1.2, +3.0]' per claim (the difference alone without an interval, '—' for a claim not run)."""
    from snnrobust.report.intervals import Interval

    def cell(row) -> str:
        if pd.isna(row.get("difference")):
            return "—"
        return Interval(float(row["difference"]), float(row.get("low", float("nan"))),
                        float(row.get("high", float("nan")))).text()

    return claims.apply(cell, axis=1) if len(claims) else pd.Series([], dtype=object)


def coverage_line(coverage: pd.DataFrame) -> str:
    """'k of n tables/figures reproduced' (illustrations listed but not counted)."""
    counted = coverage[coverage["status"] != ILLUSTRATION]
    done = int((counted["status"] == REPRODUCED).sum())
    extra = len(coverage) - len(counted)
    tail = f" ({extra} illustrations listed, nothing to measure)" if extra else ""
    return f"{done} of {len(counted)} tables/figures reproduced{tail}"


def _masking_section(measurements: pd.DataFrame, spec: Mapping) -> str:
    """The gradient-masking checklist section (``report.masking``), or nothing when no run was checked."""
    from snnrobust.report.masking import checklist_html, checklist_rows, masking_checklist

    if checklist_rows(measurements).empty:
        return ""
    return checklist_html(masking_checklist(measurements), spec)


def _render(paper: str, spec: Mapping, coverage: pd.DataFrame, claims: pd.DataFrame, sections: list[str],
            masking: str = "") -> str:
    title = paper_document(paper)["paper"]["title"]
    study, scale = spec.get("study", paper), spec.get("scale", "?")
    stand_in = (f"<p>At the {html.escape(str(scale))} scale some rows run on stand-ins "
                f"({html.escape(', '.join(f'{a} → {b}' for a, b in (spec.get('stand_ins') or {}).items()) or 'models')}"
                "): their numbers check the pipeline and the papers' orderings, so the claims carry the result and "
                "no difference to the paper is shown for them.</p>") if spec.get("stand_ins") or spec.get(
                "stand_in_models") else ""
    slots = coverage[["slot", "kind", "section", "view", "status", "reproduced_rows", "caption"]]
    claim_cols = pd.concat([claims[["claim", "text", "source", "result"]],
                            difference_cells(claims).rename("difference (95 % interval)"),
                            claims[["interval", "reproduced", "paper_result", "paper_values"]]], axis=1)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body><h1>{html.escape(title)}</h1>"
        f"<p>Study <b>{html.escape(str(study))}</b>, {html.escape(str(scale))} scale.</p>"
        f'<p class="coverage">{coverage_line(coverage)}</p>{stand_in}'
        f"<h2>Tables and figures</h2>{_html_table(slots, 'coverage-table')}"
        f"<h2>Claims</h2><p>Each claim compares two reproduced quantities like for like (same dataset, model, "
        f"attack settings except what the claim varies). The difference left − right has a 95 % interval from a "
        f"paired bootstrap over the evaluation samples (and the seeds, where several were trained): the claim holds "
        f"or fails when the interval lies on one side of 0, and is <i>within noise</i> when it contains 0. The "
        f"paper's own values, where printed, give its verdict.</p>"
        f"{_html_table(claim_cols, 'claims-table', status_col='result')}{masking}"
        f"<h2>Paper vs reproduced</h2>{''.join(sections) or '<p>No reproduced rows yet.</p>'}"
        "</body></html>\n"
    )


def write_page(study: str, attacks: list[str], transfer: list[str], analyses: list[str], training: list[str],
               spec: Mapping, out: str, out_csv: str, out_coverage: str | None = None) -> Page:
    """The `page` verb: check the spec, read the study's results, write the page, its claims CSV and (optionally)
    its coverage CSV; everything is built in memory first, so a failure leaves no output behind."""
    from snnrobust.io import atomic_path
    from snnrobust.report.reproduced import measurements

    spec = {**spec, "study": spec.get("study", study)}
    validate_report_section(study, spec)
    page = build_page(measurements(attacks, transfer, analyses, training, spec), spec)
    with atomic_path(out) as tmp:
        tmp.write_text(page.html, encoding="utf-8")
    with atomic_path(out_csv) as tmp:
        page.claims.to_csv(tmp, index=False, float_format="%.6g")
    if out_coverage:
        with atomic_path(out_coverage) as tmp:
            page.coverage.to_csv(tmp, index=False)
    return page
