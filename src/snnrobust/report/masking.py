"""The gradient-masking checklist of a study (Carlini et al. 2019; Athalye et al. 2018): per model run and item,
pass / fail / not run with the numbers behind the verdict, failing runs flagged.

Three items come from the ``masking_checklist`` analysis rows (``snnrobust.analysis.masking``); the fourth,
``transfer_weaker_than_white_box``, from the study's attack rows: a black-box (transfer) attack leaving *less*
accuracy than the same attack at the same ε run white-box on the same model means the white-box gradient is worse
than a stranger's, a sign of masking (Athalye Sec. 3.1, Carlini Sec. 5.2). A pure function of the tidy frame.
"""

from __future__ import annotations

import html
from typing import Mapping

import pandas as pd

from snnrobust.analysis.masking import ITEMS
from snnrobust.report.reproduced import RUN_KEYS, analysis_measurements

ANALYSIS = "masking_checklist"
TRANSFER_ITEM = "transfer_weaker_than_white_box"
#: Every item of the checklist, in report order.
CHECKLIST_ITEMS = (*ITEMS, TRANSFER_ITEM)
PASS, FAIL, NOT_RUN = "pass", "fail", "not run"
COLUMNS = [*RUN_KEYS, "item", "verdict", "detail", "measured_pct", "threshold_pct"]
#: Keys an attack row and its black-box twin must share besides the run and the attack id.
TWIN_KEYS = ("eps", "steps", "space", "mode", "loss", "n_eval")
#: The suspicion each paper voices that the checklist tests: (quote, where in the paper).
PAPER_SUSPICIONS = {
    "sparsity_trail": ("For FGSM attacks, SEW-ResNet50 yields a competitive 21.27% accuracy, which is only 4.59% below "
                       "SNN-RAT and nearly equivalent to the performance of Hire-SNN, leading us to suspect that the "
                       "benchmarking result was affected by obfuscated gradient (Athalye et al., 2018a).",
                       "Sec. 4.2 (Table 1)"),
}


def checklist_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``check_<item>`` rows of the masking analysis in a measurement frame (metric/value form)."""
    if frame.empty or not {"kind", "analysis_name", "metric"} <= set(frame):
        return frame.iloc[0:0]
    hit = (frame["kind"] == "analyses") & (frame["analysis_name"] == ANALYSIS)
    return frame[hit & frame["metric"].astype(str).str.startswith("check_")]


def _as_measurements(rows: pd.DataFrame | None) -> pd.DataFrame:
    """Analysis rows as result files hold them (statistic/mean) or already as measurements (metric/value)."""
    if rows is None or rows.empty:
        return pd.DataFrame()
    if "metric" in rows and "value" in rows:
        return rows
    return analysis_measurements(rows.assign(analysis_name=rows.get("analysis_name", ANALYSIS)))


def _value_key(value) -> object:
    """A run key value as one spelling (seed 0, 0.0 and '0' alike), so analysis and attack rows meet."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def _run(row) -> tuple:
    return tuple(_value_key(row[k]) for k in RUN_KEYS)


def _percent(fraction) -> float | None:
    """An analysis fraction in percent (None where the row has none)."""
    value = pd.to_numeric(pd.Series([fraction]), errors="coerce").iloc[0]
    return None if pd.isna(value) else 100.0 * float(value)


def _analysis_verdicts(checks: pd.DataFrame) -> dict[tuple, dict]:
    """(run, item) → the verdict row of each analysis check (a run checked twice: the failing row wins)."""
    out: dict[tuple, dict] = {}
    for _, row in checks.iterrows():
        item = row.get("item") if isinstance(row.get("item"), str) else str(row["metric"])[len("check_"):]
        verdict = NOT_RUN if pd.isna(row["value"]) else (PASS if float(row["value"]) >= 1.0 else FAIL)
        entry = {"verdict": verdict, "detail": row.get("detail"), "measured_pct": _percent(row.get("measured")),
                 "threshold_pct": _percent(row.get("threshold"))}
        key = (_run(row), item)
        if key not in out or (verdict == FAIL and out[key]["verdict"] != FAIL):
            out[key] = entry
    return out


def _accuracy_rows(frame: pd.DataFrame, threat: str) -> pd.DataFrame:
    if frame.empty or "threat" not in frame:
        return frame.iloc[0:0]
    keep = (frame["metric"] == "accuracy") & (frame["threat"] == threat) & (frame["attack"].astype(str) != "clean")
    return frame[keep]


def _join_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Text join keys (NaN-safe, ε rounded) of accuracy rows, plus the run key and the accuracy (``value``)."""
    keys = {"attack": frame["attack"].astype(str)}
    for k in TWIN_KEYS:
        if k in frame:
            values = pd.to_numeric(frame[k], errors="coerce").round(8) if k == "eps" else frame[k]
            keys[k] = values.astype(str)
    return pd.DataFrame(keys, index=frame.index).assign(run=frame.apply(_run, axis=1), value=frame["value"],
                                                        eps_value=pd.to_numeric(frame.get("eps"), errors="coerce"))


def _transfer_verdicts(frame: pd.DataFrame, tol_pp: float) -> dict[tuple, dict]:
    """run → the transfer item: fails where a black-box row leaves less accuracy than its white-box twin − tol."""
    black, white = _accuracy_rows(frame, "black-box"), _accuracy_rows(frame, "white-box")
    if black.empty:
        return {}
    black = _join_keys(black)
    white = _join_keys(white) if not white.empty else black.iloc[0:0]
    on = ["run", "attack", *(k for k in TWIN_KEYS if k in black and k in white)]
    paired = black.merge(white[[*on, "value"]], on=on, suffixes=("", "_white"))
    out: dict[tuple, dict] = {}
    for run in dict.fromkeys(black["run"]):
        mine = paired[paired["run"] == run]
        if mine.empty:
            out[run] = {"verdict": NOT_RUN, "detail": "no white-box run of the same attack and ε to compare with",
                        "measured_pct": None, "threshold_pct": None}
            continue
        gap = mine["value"] - mine["value_white"]  # black-box minus white-box accuracy, percentage points
        worst = mine.loc[gap.idxmin()]
        at = f" at ε = {worst['eps_value'] * 255:.3g}/255" if pd.notna(worst["eps_value"]) else ""
        out[run] = {"verdict": PASS if gap.min() >= -tol_pp else FAIL, "measured_pct": float(gap.min()),
                    "threshold_pct": -float(tol_pp) if tol_pp else 0.0,
                    "detail": f"{worst['attack']}{at}: black-box {worst['value']:.1f} %, white-box "
                              f"{worst['value_white']:.1f} % ({len(mine)} pair(s), the worst shown)"}
    return out


def masking_checklist(frame: pd.DataFrame, checklist: pd.DataFrame | None = None, tol_pp: float = 0.0) -> pd.DataFrame:
    """One row per model run × checklist item: verdict (pass / fail / not run), a sentence with the numbers, and
    ``measured_pct`` / ``threshold_pct`` in percent (the analysis's accuracy or paired difference; for transfer the
    black-box minus white-box accuracy gap, in points).

    ``frame`` is the study's tidy measurement frame (``reproduced.measurements``); ``checklist`` optionally adds
    masking analysis rows (as result files hold them, or as measurements). A black-box row fails its run when it
    leaves more than ``tol_pp`` points less accuracy than its white-box twin. Runs listed: those with checklist
    rows or black-box rows."""
    checks = pd.concat([checklist_rows(frame), checklist_rows(_as_measurements(checklist))], ignore_index=True)
    by_item = _analysis_verdicts(checks)
    transfer = _transfer_verdicts(frame, tol_pp) if not frame.empty and "metric" in frame else {}
    runs = list(dict.fromkeys([run for run, _ in by_item] + list(transfer)))
    rows = []
    for run in runs:
        for item in CHECKLIST_ITEMS:
            found = transfer.get(run) if item == TRANSFER_ITEM else by_item.get((run, item))
            found = found or {"verdict": NOT_RUN, "detail": None, "measured_pct": None, "threshold_pct": None}
            rows.append({**dict(zip(RUN_KEYS, run)), "item": item, **found})
    return pd.DataFrame(rows, columns=COLUMNS)


def failing_runs(table: pd.DataFrame) -> dict[tuple, list[str]]:
    """run → its failing items (runs with none left out)."""
    fails = table[table["verdict"] == FAIL]
    return {run: list(rows["item"]) for run, rows in fails.groupby(list(RUN_KEYS), sort=False, dropna=False)}


def checklist_html(table: pd.DataFrame, spec: Mapping) -> str:
    """The page section: the paper's suspicion (where it voices one), failing runs flagged, the checklist table."""
    from snnrobust.report.page import _html_table

    quote = PAPER_SUSPICIONS.get(str(spec.get("paper")))
    cite = (f"<blockquote>“{html.escape(quote[0])}”</blockquote><p>— the paper, {html.escape(quote[1])}. The "
            "checklist below tests that suspicion on every checked model.</p>") if quote else ""
    fails = failing_runs(table)
    flagged = ("<p><b>Failing:</b></p><ul>" + "".join(
        f"<li class='fail'>{html.escape(' / '.join(str(v) for v in run))}: {html.escape(', '.join(items))}</li>"
        for run, items in fails.items()) + "</ul>") if fails else "<p>No checked model fails an item.</p>"
    return (f'<section id="masking-checklist"><h2>Gradient-masking checklist</h2>{cite}'
            "<p>Carlini et al. (2019) and Athalye et al. (2018): an unbounded PGD must reach (near) zero accuracy, "
            "more PGD steps must not help the model, uniform noise must be weaker than PGD, and a black-box transfer "
            "attack weaker than the white-box one. A failing item suggests the robustness is gradient masking.</p>"
            f"{flagged}{_html_table(table, 'masking-table', status_col='verdict')}</section>")
