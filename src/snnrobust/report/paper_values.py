"""The papers' reported numbers, read from ``paper_values/<paper>.yaml`` (data, not code) into one tidy frame.

Each YAML file holds ``paper: {id, title, source_file}`` and ``tables: {<paper>_tableN: {caption, section,
columns, layout?, notes?, defaults?, rows}}`` (``layout: {rows: [keys], columns: [keys]}``: the keys of the
paper's printed rows and columns, for the report's grid); a row is one printed number (``value``) plus the keys
that locate it (dataset, arch, method, threat, attack, ensemble, eps as printed, steps, pooling, metric, unit,
note, ...).
``defaults`` hold keys shared by every row of a table. Optional ``figures`` (``<paper>_figureN: {caption,
section, illustration?}``: slots without printed numbers), ``vocabulary`` (extra method/attack/metric terms)
and ``claims`` (see ``claims.py``). Files are validated on load so a typo fails in one line, not in a plot.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from snnrobust.errors import SnnRobustError

#: Key columns in display order; tables may add their own keys (iteration, layer, rho, ...), appended after.
KEYS = ("dataset", "arch", "method", "threat", "attack", "eps", "steps", "metric", "value", "unit", "note")
#: Row columns that describe a printed number rather than locate it; every other column is a pairing key.
NON_KEYS = ("paper", "table", "value", "unit", "note", "label")
_TABLE_FIELDS = {"caption", "section", "columns", "layout", "notes", "defaults", "rows"}
_FIGURE_FIELDS = {"caption", "section", "notes", "illustration"}
_DOC_FIELDS = {"paper", "tables", "figures", "vocabulary", "claims"}
VOCABULARY_KEYS = ("method", "attack", "metric")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _files() -> dict[str, Any]:
    """Paper id → YAML resource, from the package data directory."""
    folder = resources.files("snnrobust.report").joinpath("paper_values")
    return {f.name.removesuffix(".yaml"): f for f in folder.iterdir() if f.name.endswith(".yaml")}


def list_papers() -> list[str]:
    """Ids of the papers with reference values (one YAML file each)."""
    return sorted(_files())


def parse_eps(eps: Any) -> float:
    """Perturbation budget in [0, 1] pixel units from a printed value: ``"8/255"``, ``"0.031"``, ``0``, ``8/255``."""
    if isinstance(eps, numbers.Real) and not isinstance(eps, bool):
        value = float(eps)
    else:
        text = str(eps).strip()
        match = re.fullmatch(r"([0-9.]+)\s*/\s*([0-9.]+)", text)
        try:
            value = float(match.group(1)) / float(match.group(2)) if match else float(text)
        except (ValueError, ZeroDivisionError):
            raise SnnRobustError(f"cannot parse eps {eps!r}; expected a number or a fraction like '8/255'") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise SnnRobustError(f"eps {eps!r} is outside [0, 1] pixel units")
    return value


def _fail(where: str, problem: str) -> None:
    raise SnnRobustError(f"paper values {where}: {problem}")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v)


def _table_rows(paper: str, table_id: str, table: Any, where: str) -> list[dict]:
    """Validate one table and return its rows with defaults merged in."""
    if not isinstance(table, dict):
        _fail(where, "is not a mapping")
    if not table_id.startswith(f"{paper}_table"):
        _fail(where, f"table id must start with '{paper}_table'")
    missing = {"caption", "section", "rows"} - table.keys()
    unknown = table.keys() - _TABLE_FIELDS
    if missing or unknown:
        _fail(where, f"missing {sorted(missing)}" if missing else f"unknown fields {sorted(unknown)}")
    defaults = table.get("defaults") or {}
    if not isinstance(table["rows"], list) or not table["rows"]:
        _fail(where, "rows must be a non-empty list")
    rows, seen = [], set()
    for i, raw in enumerate(table["rows"]):
        if not isinstance(raw, dict):
            _fail(f"{where} row {i}", "is not a mapping")
        row = {**defaults, **raw}
        for key in ("metric", "value"):
            if key not in row:
                _fail(f"{where} row {i}", f"has no {key!r}")
        if not _is_number(row["value"]):
            _fail(f"{where} row {i}", f"value {row['value']!r} is not a number")
        if "eps" in row:
            parse_eps(row["eps"])
        ident = tuple(sorted((k, str(v)) for k, v in row.items() if k not in ("value", "note")))
        if ident in seen:
            _fail(f"{where} row {i}", "repeats the keys of an earlier row")
        seen.add(ident)
        rows.append({"paper": paper, "table": table_id, **row})
    if "layout" in table:
        _check_layout(table["layout"], rows, where)
    return rows


def _check_layout(layout: Any, rows: list[dict], where: str) -> None:
    """``layout: {rows: [keys], columns: [keys]}``: non-empty, disjoint lists of the table's key columns."""
    if not isinstance(layout, dict) or set(layout) != {"rows", "columns"} or not all(
            isinstance(v, list) and v and all(isinstance(k, str) for k in v) for v in layout.values()):
        _fail(where, "layout must be {rows: [keys], columns: [keys]} with non-empty lists of key names")
    keys = dict.fromkeys(k for row in rows for k in row if k not in NON_KEYS)
    named = layout["rows"] + layout["columns"]
    unknown = [k for k in named if k not in keys]
    if unknown:
        _fail(where, f"layout names {', '.join(map(repr, unknown))}, no key of this table; keys: {', '.join(keys)}")
    twice = sorted({k for k in named if named.count(k) > 1})
    if twice:
        _fail(where, f"layout names {', '.join(map(repr, twice))} twice (rows and columns must be disjoint)")


def _check_figures(paper: str, figures: Any, where: str) -> None:
    """Figure slots: ``<paper>_figureN: {caption, section, illustration?}``."""
    if not isinstance(figures, dict):
        _fail(where, "figures must be a mapping")
    for fig_id, fig in figures.items():
        if not str(fig_id).startswith(f"{paper}_figure"):
            _fail(f"{where} {fig_id}", f"figure id must start with '{paper}_figure'")
        if not isinstance(fig, dict) or {"caption", "section"} - fig.keys() or fig.keys() - _FIGURE_FIELDS:
            _fail(f"{where} {fig_id}", f"needs caption and section, may have {sorted(_FIGURE_FIELDS)}")


def _check_vocabulary(vocabulary: Any, where: str) -> None:
    if not isinstance(vocabulary, dict) or set(vocabulary) - set(VOCABULARY_KEYS) or not all(
            isinstance(v, list) for v in vocabulary.values()):
        _fail(where, f"vocabulary must map some of {list(VOCABULARY_KEYS)} to lists of terms")


def _document(paper: str, resource: Any) -> dict:
    """Parse and validate one paper file (the table rows, figures and vocabulary; claims in claims.py)."""
    text = resource.read_text(encoding="utf-8")
    return _parse(paper, resource.name, text)


@functools.lru_cache(maxsize=16)
def _parse(paper: str, where: str, text: str) -> dict:
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SnnRobustError(f"paper values {where}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("paper"), dict) or not isinstance(doc.get("tables"), dict):
        _fail(where, "needs a 'paper' mapping and a 'tables' mapping")
    if doc.keys() - _DOC_FIELDS:
        _fail(where, f"unknown top-level fields {sorted(doc.keys() - _DOC_FIELDS)}")
    meta = doc["paper"]
    if {"id", "title", "source_file"} - meta.keys():
        _fail(where, "paper needs id, title and source_file")
    if meta["id"] != paper:
        _fail(where, f"paper id {meta['id']!r} does not match the file name")
    rows = []
    for table_id, table in doc["tables"].items():
        rows += _table_rows(paper, str(table_id), table, f"{where} {table_id}")
    _check_figures(paper, doc.get("figures") or {}, where)
    _check_vocabulary(doc.get("vocabulary") or {}, where)
    return {**doc, "rows": rows}


def _read(paper: str, resource: Any) -> list[dict]:
    """Parse and validate one paper file into row dicts."""
    return _document(paper, resource)["rows"]


def _tidy(rows: list[dict]) -> pd.DataFrame:
    """Rows → frame with paper, table, the known keys, then extra keys; integer keys as nullable Int64."""
    columns = dict.fromkeys(k for row in rows for k in row)
    whole = {c for c in columns if c != "value" and all(
        isinstance(row[c], int) and not isinstance(row[c], bool) for row in rows if c in row)}
    df = pd.DataFrame(rows)
    extra = sorted(c for c in columns if c not in KEYS and c not in ("paper", "table"))
    df = df.reindex(columns=["paper", "table", *KEYS, *extra])
    df["value"] = df["value"].astype(float)
    return df.astype({c: "Int64" for c in whole})


def load_paper_values(paper: str | None = None) -> pd.DataFrame:
    """All reported numbers (or one paper's) as a tidy frame: one row per printed number, missing keys NaN."""
    files = _files()
    if paper is not None and paper not in files:
        raise SnnRobustError(f"unknown paper {paper!r}; choose one of: {', '.join(sorted(files))}")
    chosen = [paper] if paper is not None else sorted(files)
    return _tidy([row for p in chosen for row in _read(p, files[p])])


def list_tables(paper: str | None = None) -> list[str]:
    """Table ids (e.g. ``sr_table1``) with reference values, optionally of one paper."""
    return list(dict.fromkeys(load_paper_values(paper)["table"]))


def table_meta(table_id: str) -> dict:
    """Caption, section, printed columns and notes of one table, for report captions."""
    paper = table_id.split("_table")[0]
    if paper not in _files():
        raise SnnRobustError(f"unknown table {table_id!r}; choose one of: {', '.join(list_tables())}")
    doc = _document(paper, _files()[paper])
    if table_id not in doc["tables"]:
        raise SnnRobustError(f"unknown table {table_id!r}; choose one of: {', '.join(doc['tables'])}")
    meta = {k: v for k, v in doc["tables"][table_id].items() if k not in ("rows", "defaults")}
    return {"paper": paper, "title": doc["paper"]["title"], "notes": [], **meta}


def paper_document(paper: str) -> dict:
    """The validated YAML document of one paper (``paper``, ``tables``, ``figures``, ``vocabulary``, ``claims``)."""
    files = _files()
    if paper not in files:
        raise SnnRobustError(f"unknown paper {paper!r}; choose one of: {', '.join(sorted(files))}")
    return _document(paper, files[paper])


def list_slots(paper: str) -> list[dict]:
    """Every table and figure of a paper in order: ``{id, kind, caption, section, illustration}``."""
    doc = paper_document(paper)
    tables = [{"id": t, "kind": "table", "caption": v["caption"], "section": str(v["section"]), "illustration": False}
              for t, v in doc["tables"].items()]
    figures = [{"id": f, "kind": "figure", "caption": v["caption"], "section": str(v["section"]),
                "illustration": bool(v.get("illustration", False))} for f, v in (doc.get("figures") or {}).items()]
    return tables + figures


def paper_vocabulary(paper: str) -> dict[str, set[str]]:
    """The method, attack and metric terms a paper's rows and declared vocabulary use (case-folded)."""
    doc = paper_document(paper)
    terms: dict[str, set[str]] = {k: set() for k in VOCABULARY_KEYS}
    for row in doc["rows"]:
        for key in VOCABULARY_KEYS:
            if key in row:
                terms[key].add(str(row[key]).casefold())
    for key, extra in (doc.get("vocabulary") or {}).items():
        terms[key] |= {str(t).casefold() for t in extra}
    return terms
