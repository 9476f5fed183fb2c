"""A paper table in the paper's own layout: its row keys down the side, its column keys across a grouped header,
one cell ``reproduced (paper)`` per printed number.

Input is the joined frame of ``tables.paper_vs_reproduced`` (paired, paper-only and reproduced-only rows) and the
table's ``layout: {rows, columns}`` from its paper-values file. Cells sit where the paper prints the number: a
joined row's keys (in the paper's vocabulary) are matched to the paper's row and column combinations with the
pairing rule (keys a combination leaves open do not constrain it), so a reproduced clean row that names a threat
model still lands in the paper's Clean column. Reproduced rows with no paper counterpart never share a cell with
a paper number: they come last, marked. Keys constant over the table are stated once under it, and so are the
stand-ins (a dagger marks their rows).
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.pairing import comparable, comparable_frame, key_columns, pair
from snnrobust.report.paper_values import parse_eps, table_meta
from snnrobust.report.tables import _paper_table, eps_label

LEGEND = "cells: reproduced (paper)"
DAGGER, OURS_MARK = "†", "‡"
NONE = "—"
#: Keys merged into one header level: the attack's label carries its steps ("PGD10").
FUSED = {"attack": ("attack", "steps")}
#: Keys stated under the table without their name (their values say what they are).
BARE_KEYS = ("dataset", "arch", "method", "threat")


@dataclass(frozen=True)
class LaidOut:
    """The table in the paper's layout: ``wide`` (row keys + one string column per column combination) and its
    HTML (grouped header, constant keys, stand-ins and legend lines)."""

    wide: pd.DataFrame
    html: str


def lay_out(joined: pd.DataFrame, table_id: str, layout: Mapping[str, Sequence[str]] | None = None) -> LaidOut:
    """The joined frame of one paper table laid out as the paper prints it (``layout`` defaults to the table's)."""
    layout = layout or table_meta(table_id).get("layout")
    if not layout:
        raise SnnRobustError(f"paper table {table_id} has no layout (rows and columns) in its paper-values file")
    rows, cols = list(layout["rows"]), list(layout["columns"])
    paper = _paper_table(table_id)
    keys = key_columns(paper)
    joined = joined.reset_index(drop=True)
    ours = paper_keys(joined, [*keys, "unit"])
    only = joined["paper"].isna() & joined["reproduced"].notna()
    row_slot, row_show = _slots(paper, ours, rows)
    col_slot, col_show = _slots(paper, ours, cols)
    cells = _cells(joined.assign(_row=row_slot, _only=only, _col=col_slot), _unit(paper))
    labels = _column_labels(col_show, cols)
    labels = [labels[c] for c in sorted(cells["_col"].unique())]  # the column slots that hold a cell
    wide = _wide(cells, row_show, rows, labels)
    notes = [_constants_line(ours, [k for k in keys if k not in rows + cols]), _stand_in_line(joined),
             _legend(bool(only.any()))]
    body = _html_table(wide, cells, rows, labels)
    return LaidOut(wide, body + "".join(f'<p class="layout-note">{html.escape(n)}</p>' for n in notes if n))


def paper_keys(joined: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Each joined row's keys in the paper's vocabulary: ``paper_<key>`` where the join mapped the key."""
    return pd.DataFrame({k: joined[f"paper_{k}"] if f"paper_{k}" in joined else joined.get(k) for k in keys},
                        index=joined.index)


def _slots(paper: pd.DataFrame, ours: pd.DataFrame, keys: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """The slot (row or column of the grid) of each joined row, and each slot's key values: the paper's
    combinations of ``keys`` in printed order, then combinations only our rows have, in order of appearance."""
    printed = paper.loc[~comparable_frame(paper, keys).duplicated(), keys].reset_index(drop=True)
    hits = pair(printed, ours[keys], keys)
    slot = pd.Series(hits["_paper"].to_numpy(), index=hits["_rep"].to_numpy(), dtype="Int64").reindex(ours.index)
    extra = ours.loc[slot.isna(), keys]
    spelled = pd.Series([tuple(r) for r in comparable_frame(extra, keys).itertuples(index=False)], index=extra.index,
                        dtype=object)
    new_ids = {s: len(printed) + i for i, s in enumerate(dict.fromkeys(spelled))}
    slot.loc[extra.index] = [new_ids[s] for s in spelled]
    shown = pd.concat([printed, extra.loc[~spelled.duplicated()]], ignore_index=True)
    return slot.astype(int), shown


def _unit(paper: pd.DataFrame) -> str | None:
    """The table's unit where every printed number has the same one (for cells whose rows name none)."""
    units = paper["unit"].dropna().unique() if "unit" in paper else []
    return str(units[0]) if len(units) == 1 else None


def number(value: float, unit: Any) -> str:
    """A printed number: one decimal for percentages, else three significant digits; '—' when missing."""
    if pd.isna(value):
        return NONE
    return f"{value:.1f}" if unit == "%" else f"{value:.3g}"


def _values(series: pd.Series, unit: Any) -> str:
    """The distinct numbers of one side of a cell ('—' for none, several joined by ' / ')."""
    return " / ".join(dict.fromkeys(number(v, unit) for v in series.dropna())) or NONE


def _cells(frame: pd.DataFrame, unit: str | None) -> pd.DataFrame:
    """One cell per (row slot, reproduced-only, column slot): its text and whether it holds a stand-in number."""
    if "unit" not in frame:
        frame = frame.assign(unit=unit)
    elif unit is not None:
        frame = frame.assign(unit=frame["unit"].fillna(unit))

    def cell(group: pd.DataFrame) -> pd.Series:
        first = group["unit"].iloc[0]
        text = f"{_values(group['reproduced'], first)} ({_values(group['paper'], first)})"
        return pd.Series({"text": text, "stand_in": bool(group["stand_in"].fillna(False).astype(bool).any())})

    return frame.groupby(["_only", "_row", "_col"], sort=True)[["reproduced", "paper", "unit", "stand_in"]].apply(
        cell).reset_index()


def key_text(key: str, value: Any) -> str:
    """One key value as the paper prints it: ε as k/255, whole numbers without '.0', '—' when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return NONE
    if key == "eps":
        return eps_label(parse_eps(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _level_label(keys: Sequence[str], values: Mapping[str, Any]) -> str | None:
    """One header level's label: 'Clean', 'PGD10' (attack with its steps), 'ε 8/255', or the value itself."""
    present = {k: values[k] for k in keys if key_text(k, values[k]) != NONE}
    if not present:
        return None
    if "attack" in present:
        attack = str(present["attack"])
        if attack.casefold() == "clean":
            return "Clean"
        steps = key_text("steps", present.get("steps"))
        return attack + (steps if steps.isdigit() and int(steps) > 1 else "")
    if "steps" in present:
        return f"{key_text('steps', present['steps'])} steps"
    if "eps" in present:
        return f"ε {key_text('eps', present['eps'])}"
    return key_text(keys[0], present[keys[0]])


def _levels(cols: list[str]) -> list[tuple[str, ...]]:
    """The header levels of the column keys: one per key, the attack's steps folded into the attack's level."""
    fused = {k for group in FUSED.values() for k in group if all(g in cols for g in group)}
    return [FUSED[k] if k in FUSED and k in fused else (k,) for k in cols if k not in fused or k in FUSED]


def _column_labels(shown: pd.DataFrame, cols: list[str]) -> list[tuple[str | None, ...]]:
    """Per column slot, its label at each header level (None where the combination leaves that level open)."""
    levels = _levels(cols)
    return [tuple(_level_label(level, row) for level in levels) for row in shown.to_dict("records")]


def _flat(label: tuple[str | None, ...]) -> str:
    """A column's name in the wide frame: its header levels in one line ('white-box PGD10')."""
    return " ".join(part for part in label if part) or NONE


def _wide(cells: pd.DataFrame, row_show: pd.DataFrame, rows: list[str], labels: list) -> pd.DataFrame:
    """Row keys (paper vocabulary) plus one string column per column slot (``labels``, in slot order); rows in
    the paper's order, reproduced-only rows last; a slot with nothing in it is an empty string."""
    grid = cells.pivot(index=["_only", "_row"], columns="_col", values="text").sort_index()
    grid = grid.reindex(columns=sorted(grid.columns)).fillna("")
    names = _unique([_flat(label) for label in labels])
    keys = row_show.loc[grid.index.get_level_values("_row"), rows].reset_index(drop=True)
    return pd.concat([keys, pd.DataFrame(grid.to_numpy(), columns=names)], axis=1)


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (a repeat gets ' (2)', ...), so no two combinations share a column."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _header(rows: list[str], labels: list[tuple[str | None, ...]]) -> str:
    """Grouped header rows: each level's label spans (colspan) the neighbouring columns it shares, and an open
    level (the Clean column has no threat) is spanned (rowspan) by the label below it."""
    depth = len(labels[0]) if labels else 1
    spans = [_column_spans(label) for label in labels]
    tall = f' rowspan="{depth}"' if depth > 1 else ""
    lines = [[f"<th{tall}>{html.escape(k.replace('_', ' '))}</th>" for k in rows]] + [[] for _ in range(depth - 1)]
    for start in range(depth):
        c = 0
        while c < len(labels):
            span = spans[c].get(start)
            if span is None:
                c += 1
                continue
            width = 1
            while c + width < len(labels) and spans[c + width].get(start) == span and \
                    labels[c + width][:span[0] + 1] == labels[c][:span[0] + 1]:
                width += 1
            end, text = span
            attrs = (f' colspan="{width}"' if width > 1 else "") + (
                f' rowspan="{end - start + 1}"' if end > start else "")
            lines[start].append(f"<th{attrs}>{html.escape(text)}</th>")
            c += width
    return "".join(f"<tr>{''.join(cells)}</tr>" for cells in lines)


def _column_spans(label: tuple[str | None, ...]) -> dict[int, tuple[int, str]]:
    """Start level → (end level, text) of one column's header cells: open levels join the label below them."""
    spans, start = {}, 0
    for level, text in enumerate(label):
        if text is not None or level == len(label) - 1:
            spans[start] = (level, text or "")
            start = level + 1
    return spans


def _html_table(wide: pd.DataFrame, cells: pd.DataFrame, rows: list[str], labels: list) -> str:
    """The grid as HTML: repeated leading row keys blanked, stand-in rows with a dagger, reproduced-only rows
    last with their mark, numbers right-aligned."""
    flags = cells.groupby(["_only", "_row"], sort=True)["stand_in"].any()
    body, previous = [], None
    for (only, _), stand_in, (_, row) in zip(flags.index, flags, wide.iterrows()):
        shown = [key_text(k, row[k]) for k in rows]
        same = 0
        while previous is not None and same < len(rows) - 1 and shown[same] == previous[same]:
            same += 1
        previous = shown
        texts = [""] * same + shown[same:]
        texts[-1] += (DAGGER if stand_in else "") + (OURS_MARK if only else "")
        cls = ' class="ours-only"' if only else ""
        keys_html = "".join(f"<td>{html.escape(t)}</td>" for t in texts)
        values = "".join(f'<td class="num">{html.escape(v)}</td>' for v in row.iloc[len(rows):])
        body.append(f"<tr{cls}>{keys_html}{values}</tr>")
    return (f'<table class="paper-layout"><thead>{_header(rows, labels)}</thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _constants_line(ours: pd.DataFrame, keys: list[str]) -> str:
    """'ε 8/255 · accuracy (%) · ensemble attacks': the keys (and unit) with one value over the table. Clean rows
    are exempt (their ε 0, steps 0 and open threat model are conventions), unless every row is clean."""
    attack = ours["attack"].map(lambda v: comparable("attack", v)) if "attack" in ours else None
    clean = attack.eq("clean") if attack is not None else pd.Series(False, index=ours.index)
    judged = ours[~clean] if not clean.all() else ours
    found = {k: _constant(ours[k] if k == "attack" else judged[k], k) for k in [*keys, "unit"] if k in ours}
    found = {k: v for k, v in found.items() if v is not None}
    if "attack" in found and "steps" in found:  # 'attack PGD10', as the columns read
        found["attack"] = _level_label(FUSED["attack"], {**found, "steps": found.pop("steps")})
    unit = found.pop("unit", None)
    parts = [_constant_text(k, v, unit) for k, v in found.items()]
    if unit is not None and "metric" not in found:
        parts.append(f"values in {unit}")
    return " · ".join(parts)


def _constant(values: pd.Series, key: str) -> Any:
    """The one value a column takes on every row (None when it varies or some row leaves it open)."""
    spelled = values.map(lambda v: comparable(key, v))
    if spelled.isna().any() or spelled.nunique() != 1:
        return None
    return values.iloc[0]


def _constant_text(key: str, value: Any, unit: Any) -> str:
    """How a constant key reads under the table."""
    text = key_text(key, value)
    if key == "eps":
        return f"ε {text}"
    if key == "ensemble":
        return "ensemble attacks" if comparable(key, value) == "true" else "single-surrogate attacks"
    if key == "metric":
        return f"{text} ({unit})" if unit is not None else text
    if key == "steps":
        return f"{text} steps"
    return text if key in BARE_KEYS else f"{key.replace('_', ' ')} {text}"


def _stand_in_line(joined: pd.DataFrame) -> str:
    """'ours run on stand-ins: digits → CIFAR-10; snn_vgg_tiny → VGG-11 (†)', once per table ('' without)."""
    named = joined.loc[joined["stand_in"].fillna(False).astype(bool), "stand_in_for"] if "stand_in" in joined else []
    parts = dict.fromkeys(p for text in named for p in str(text).split("; ") if p)
    return f"ours run on stand-ins: {'; '.join(parts)} ({DAGGER})" if parts else ""


def _legend(ours_only: bool) -> str:
    """How to read a cell (and the reproduced-only mark, where the table has such rows)."""
    tail = f"; {OURS_MARK} reproduced only (no paper counterpart)" if ours_only else ""
    return f"{LEGEND}; {NONE} where that side has no number{tail}"
