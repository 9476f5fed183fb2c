"""Paper-vs-reproduced tables: reported numbers beside our measurements, with the difference and stand-ins.

A reproduction often runs on a stand-in (the embedded ``digits`` set for CIFAR-10, a small VGG for VGG-11);
the output keeps both names so a reader never mistakes a stand-in number for a like-for-like replication.
"""

from __future__ import annotations

import html
import re
from typing import Mapping, Sequence

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report import mathtext
from snnrobust.report.pairing import key_columns, pair, translate
from snnrobust.report.paper_values import load_paper_values, parse_eps


def _paper_table(table_id: str) -> pd.DataFrame:
    """The rows of one paper table, without the columns it never sets."""
    values = load_paper_values()
    if table_id not in set(values["table"]):
        raise SnnRobustError(f"unknown table {table_id!r}; choose one of: {', '.join(dict.fromkeys(values['table']))}")
    return values[values["table"] == table_id].dropna(axis=1, how="all").reset_index(drop=True)


def _stand_in_label(rows: pd.DataFrame, stand_ins: Mapping[str, str], stand_in_archs: set) -> pd.Series:
    """'digits → CIFAR-10; vgg_small → VGG-11' for rows on a stand-in dataset or model, else ''."""
    parts = []
    for key, chosen in (("dataset", set(stand_ins)), ("arch", stand_in_archs)):
        if key in rows and f"paper_{key}" in rows:
            hit = rows[key].isin(chosen)
            parts.append((rows[key].astype(str) + " → " + rows[f"paper_{key}"].astype(str)).where(hit, ""))
    if not parts:
        return pd.Series("", index=rows.index, dtype=object)
    joined = pd.concat(parts, axis=1)
    return joined.apply(lambda r: "; ".join(v for v in r if v), axis=1).astype(object)


def _as_eps(col: pd.Series) -> pd.Series:
    return col.map(lambda v: parse_eps(v) if pd.notna(v) else float("nan")).astype(float)


def paper_vs_reproduced(
    reproduced: pd.DataFrame,
    table_id: str,
    stand_ins: Mapping[str, str] | None = None,
    arch_map: Mapping[str, str] | None = None,
    value_maps: Mapping[str, Mapping[str, str]] | None = None,
    stand_in_archs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Outer-join reproduced tidy rows (eps as float, value in %) with one paper table, pairing on every key each
    paper row declares (see ``pairing``).

    ``stand_ins`` maps a stand-in dataset → the paper dataset it stands for, ``arch_map`` reproduced arch → paper
    arch, ``value_maps`` renames any key (``{"method": {"vanilla": "Vanilla"}, "dataset": {"cifar10": "CIFAR-10"}}``);
    ``stand_in_archs`` are the reproduced archs that stand in for the paper's (default: every arch ``arch_map``
    renames). Seeds are averaged (``n``, ``reproduced_std``). Output: keys (mapped ones as reproduced, plus
    ``paper_<key>``), ``paper``, ``reproduced``, ``diff`` (reproduced − paper; empty on stand-in rows, where a
    numeric difference means nothing), ``stand_in`` (bool), ``stand_in_for`` ("digits → CIFAR-10").
    """
    paper = _paper_table(table_id)
    if "value" not in reproduced:
        raise SnnRobustError(f"reproduced rows lack column 'value' needed to compare with {table_id}")
    keys = key_columns(paper)
    arch_map = dict(arch_map or {})
    maps = {k: dict(v) for k, v in (value_maps or {}).items()}
    maps["dataset"] = {**maps.get("dataset", {}), **(stand_ins or {})}
    maps["arch"] = {**maps.get("arch", {}), **arch_map}
    mapped = [k for k in keys if k in maps and k in reproduced]
    plain = [k for k in keys if k not in mapped]
    archs = set(stand_in_archs) if stand_in_archs is not None else {a for a, b in arch_map.items() if a != b}

    rep = translate(reproduced.assign(value=pd.to_numeric(reproduced["value"], errors="raise")),
                    {k: maps[k] for k in mapped})
    groups = [c for c in (*plain, *mapped, *(f"paper_{k}" for k in mapped)) if c in rep]
    agg = rep.groupby(groups, dropna=False, sort=False).agg(
        reproduced=("value", "mean"), reproduced_std=("value", "std"), n=("value", "size")).reset_index()
    vocab = agg.drop(columns=mapped).rename(columns={f"paper_{k}": k for k in mapped})
    pairs = pair(paper, vocab, keys)

    side = paper.drop(columns=["paper", "table"]).rename(columns={"value": "paper", **{k: f"paper_{k}" for k in mapped}})
    side["_row"] = range(len(side))  # keeps the paper's row order; reproduced-only rows go last
    ours = agg.assign(_rep=range(len(agg)))
    both = pairs.merge(side, left_on="_paper", right_on="_row").merge(
        ours, on="_rep", suffixes=("", "_rep")).drop(columns=["_paper", "_rep"])
    for col in (*plain, *(f"paper_{k}" for k in mapped)):  # the paper's label where the paper row sets it
        if f"{col}_rep" in both:
            both[col] = both[col].where(both[col].notna(), both.pop(f"{col}_rep"))
    paper_only = side[~side["_row"].isin(pairs["_paper"])]
    rep_only = ours[~ours["_rep"].isin(pairs["_rep"])].drop(columns="_rep")
    out = pd.concat([both, paper_only, rep_only], ignore_index=True)
    out = out.sort_values("_row", kind="stable", na_position="last")
    if "eps" in out:
        out["eps"] = _as_eps(out["eps"])
    out["n"] = out["n"].fillna(0).astype(int)
    out["stand_in_for"] = _stand_in_label(out, stand_ins or {}, archs)
    out.loc[out["reproduced"].isna(), "stand_in_for"] = ""
    out["stand_in"] = out["stand_in_for"].ne("")
    out["diff"] = (out["reproduced"] - out["paper"]).where(~out["stand_in"])
    extra = [c for c in side if c not in (*keys, *(f"paper_{k}" for k in mapped), "paper", "_row")]
    order = [*keys, *(f"paper_{k}" for k in mapped), "paper", "reproduced", "diff", "n", "reproduced_std",
             "stand_in", "stand_in_for", *extra]
    return out.reindex(columns=order).reset_index(drop=True)


def eps_label(eps: float) -> str:
    """Readable ε: ``8/255`` when ε is a whole number of 1/255 steps, else the number itself."""
    if pd.isna(eps):
        return "—"
    steps = float(eps) * 255
    return f"{round(steps)}/255" if abs(steps - round(steps)) < 1e-6 and eps else f"{float(eps):g}"


_CSS = """body{font-family:sans-serif;margin:1em;overflow-wrap:break-word}table{border-collapse:collapse;font-size:12px;
max-width:100%}
th,td{border:1px solid #ccc;padding:3px 5px;text-align:right}th{background:#f0f0f0}
td:nth-child(-n+4){text-align:left}caption{caption-side:top;font-weight:bold;padding:4px}"""


def to_html(df: pd.DataFrame, title: str, caption: str | None = None) -> str:
    """A small self-contained HTML page (inline CSS, no scripts) showing ``df``, for the Snakemake report; names
    (headers, model ids) may wrap after an underscore, so a wide table fits the window."""
    formatters = {"eps": eps_label} if "eps" in df else None
    table = df.to_html(index=False, na_rep="—", float_format=lambda x: f"{x:.2f}", formatters=formatters,
                       border=0, escape=True)
    table = re.sub(r"<(t[hd])>([^<]*)</t[hd]>", lambda m: f"<{m[1]}>{m[2].replace('_', '_<wbr>')}</{m[1]}>", table)
    note = f"<p>{mathtext.to_html(caption)}</p>" if caption else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body><h2>{html.escape(title)}</h2>{note}\n{table}\n</body></html>\n"
    )
