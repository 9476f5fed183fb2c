"""Paper-vs-reproduced tables: reported numbers beside our measurements, with the difference and stand-ins.

A reproduction often runs on a stand-in (the embedded ``digits`` set for CIFAR-10, a small VGG for VGG-11);
the output keeps both names so a reader never mistakes a stand-in number for a like-for-like replication.
"""

from __future__ import annotations

import html
import numbers
from typing import Mapping, Sequence

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.paper_values import load_paper_values, parse_eps

#: Columns that locate a number; those a table never sets are dropped per table.
DEFAULT_KEYS = ("dataset", "arch", "method", "threat", "attack", "eps", "steps", "metric")
#: Values assumed for key columns the reproduced frame lacks (applied to attacked rows, not to clean ones).
ASSUMED = {"threat": "white-box"}
_MISSING = "<missing>"


def _comparable(value: object) -> str:
    """One matchable spelling: numbers as floats (10 == 10.0), text stripped and case-folded."""
    if pd.isna(value):
        return _MISSING
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value))
    return str(value).strip().casefold()


def _clean(frame: pd.DataFrame, names: Mapping[str, str]) -> pd.Series:
    """Rows measuring clean accuracy (attack 'clean' in the paper's vocabulary)."""
    if "attack" not in names or names["attack"] not in frame:
        return pd.Series(False, index=frame.index)
    return frame[names["attack"]].map(_comparable).eq("clean")


def _match_columns(frame: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """Comparable forms of the keys (``names``: key → column in the paper's vocabulary); eps is parsed
    ("8/255" == 0.0314) and clean rows count as eps 0, steps 0 whatever either side wrote there."""
    clean = _clean(frame, names)
    out = {}
    for key, name in names.items():
        col = frame[name].astype(object)
        if key == "eps":
            col = col.map(lambda v: round(parse_eps(v), 6) if pd.notna(v) else v)
        elif key == "steps":
            col = pd.to_numeric(col, errors="coerce").astype(object)
        if key in ("eps", "steps"):
            col = col.where(~clean, 0)
        out[f"_m_{key}"] = col.map(_comparable)
    return pd.DataFrame(out, index=frame.index)


def _paper_table(table_id: str) -> pd.DataFrame:
    """The rows of one paper table, without the columns it never sets."""
    values = load_paper_values()
    if table_id not in set(values["table"]):
        raise SnnRobustError(f"unknown table {table_id!r}; choose one of: {', '.join(dict.fromkeys(values['table']))}")
    return values[values["table"] == table_id].dropna(axis=1, how="all").reset_index(drop=True)


def _stand_in_label(rep: pd.DataFrame, mapped: Sequence[str]) -> pd.Series:
    """'digits → CIFAR-10; vgg_small → VGG-11' for rows whose mapped keys differ, else ''."""
    label = pd.Series("", index=rep.index, dtype=object)
    for key in mapped:
        ours, theirs = rep[key].astype(str), rep[f"paper_{key}"].astype(str)
        part = (ours + " → " + theirs).where(ours != theirs, "")
        label = (label + "; " + part).where(label.ne("") & part.ne(""), label + part)
    return label


def _as_eps(col: pd.Series) -> pd.Series:
    return col.map(lambda v: parse_eps(v) if pd.notna(v) else float("nan")).astype(float)


def paper_vs_reproduced(
    reproduced: pd.DataFrame,
    table_id: str,
    stand_ins: Mapping[str, str] | None = None,
    arch_map: Mapping[str, str] | None = None,
    keys: Sequence[str] = DEFAULT_KEYS,
    value_maps: Mapping[str, Mapping[str, str]] | None = None,
    assumed: Mapping[str, object] = ASSUMED,
) -> pd.DataFrame:
    """Outer-join reproduced tidy rows (eps as float, value in %) with one paper table.

    ``stand_ins`` maps reproduced dataset → paper dataset, ``arch_map`` reproduced arch → paper arch,
    ``value_maps`` any other key (e.g. ``{"method": {"vanilla": "Vanilla"}}``). Matching ignores case and
    parses printed eps ("8/255"); rows on one side only are kept with NaN on the other. Seeds are averaged
    (``n``, ``reproduced_std``). Output: keys (mapped ones as reproduced, plus ``paper_<key>``), ``paper``,
    ``reproduced``, ``diff`` (reproduced − paper), ``stand_in`` (bool), ``stand_in_for`` ("digits → CIFAR-10").
    """
    paper = _paper_table(table_id)
    keys = [k for k in keys if k in paper]
    maps = {"dataset": dict(stand_ins or {}), "arch": dict(arch_map or {}), **(value_maps or {})}
    mapped = [k for k in keys if k in maps]
    plain = [k for k in keys if k not in maps]
    names = {k: f"paper_{k}" if k in mapped else k for k in keys}  # key → column in the paper's vocabulary
    missing = [c for c in ("value", *keys) if c not in reproduced and (c in mapped or c not in assumed)]
    if missing:
        raise SnnRobustError(f"reproduced rows lack column(s) {missing} needed to compare with {table_id}")

    rep = reproduced.assign(**{f"paper_{k}": reproduced[k].map(lambda v, m=maps[k]: m.get(v, v)) for k in mapped})
    for key in (k for k in plain if k not in rep):  # assumed keys, e.g. threat: white-box on attacked rows
        rep[key] = pd.Series(assumed[key], index=rep.index, dtype=object).where(~_clean(rep, names))
    side = paper.drop(columns=["paper", "table"])
    side = side.rename(columns={"value": "paper", **{k: f"paper_{k}" for k in mapped}})
    side["_row"] = range(len(side))  # keeps the paper's row order; reproduced-only rows go last
    match = [f"_m_{k}" for k in keys]
    side, rep = side.join(_match_columns(side, names)), rep.join(_match_columns(rep, names))
    if side.duplicated(match).any():
        raise SnnRobustError(f"keys {keys} do not identify the rows of {table_id} uniquely; add a key column")

    rep["value"] = pd.to_numeric(rep["value"], errors="raise")
    firsts = {c: (c, "first") for c in (*plain, *(f"paper_{k}" for k in mapped))}
    agg = rep.groupby(match + mapped, dropna=False, sort=False).agg(
        reproduced=("value", "mean"), reproduced_std=("value", "std"), n=("value", "size"), **firsts
    ).reset_index()
    agg["stand_in_for"] = _stand_in_label(agg, mapped)

    extra = [c for c in side if c not in (*match, *firsts, "paper", "_row")]
    out = side.merge(agg, on=match, how="outer", suffixes=("", "_rep"), sort=False)
    for col in firsts:  # the paper's label where the paper has the row, else the reproduced (mapped) one
        out[col] = out[col].where(out[col].notna(), out.pop(f"{col}_rep"))
    if "eps" in out:
        out["eps"] = _as_eps(out["eps"])
    out = out.sort_values("_row", kind="stable", na_position="last")
    out["n"] = out["n"].fillna(0).astype(int)
    out["diff"] = out["reproduced"] - out["paper"]
    out["stand_in_for"] = out["stand_in_for"].fillna("")
    out["stand_in"] = out["stand_in_for"].ne("")
    order = [*keys, *(f"paper_{k}" for k in mapped), "paper", "reproduced", "diff", "n", "reproduced_std",
             "stand_in", "stand_in_for", *extra]
    return out[order].reset_index(drop=True)


def eps_label(eps: float) -> str:
    """Readable ε: ``8/255`` when ε is a whole number of 1/255 steps, else the number itself."""
    if pd.isna(eps):
        return "—"
    steps = float(eps) * 255
    return f"{round(steps)}/255" if abs(steps - round(steps)) < 1e-6 and eps else f"{float(eps):g}"


_CSS = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}
td:nth-child(-n+4){text-align:left}caption{caption-side:top;font-weight:bold;padding:4px}"""


def to_html(df: pd.DataFrame, title: str, caption: str | None = None) -> str:
    """A small self-contained HTML page (inline CSS, no scripts) showing ``df``, for the Snakemake report."""
    formatters = {"eps": eps_label} if "eps" in df else None
    table = df.to_html(index=False, na_rep="—", float_format=lambda x: f"{x:.2f}", formatters=formatters,
                       border=0, escape=True)
    note = f"<p>{html.escape(caption)}</p>" if caption else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body><h2>{html.escape(title)}</h2>{note}\n{table}\n</body></html>\n"
    )
