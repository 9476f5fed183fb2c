"""Pair reproduced rows with paper rows on every key the paper row declares.

A paper row declares the keys it sets (dataset, arch, method, threat, attack, ensemble, eps, steps, pooling, …);
a reproduced row pairs with it only if it determines every one of them to the same value. A reproduced row that
leaves a declared key open (a missing ``threat``, an unknown pooling) never pairs: a MaxPool SEW-ResNet is not
the paper's AvgPool row, a single-surrogate PGD is not the SR paper's ensemble number, a white-box row is not a
black-box value. Keys a paper row does not declare (``threat`` of a clean row) do not constrain it.
"""

from __future__ import annotations

import numbers
from typing import Iterable, Mapping

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.paper_values import NON_KEYS, parse_eps

#: The usual key columns in display order; a table's own keys (iteration, layer, pooling, ...) follow. ``space``
#: (pixel | spike: where the attack perturbs) and ``mode`` (eval | train: the model's mode while it differentiates)
#: are columns of every attack row (``Attack.columns``), so claims and paper rows can select on them; ``op_kind``
#: (conv, bn, pool, neuron, add, linear, input) is a column of the ``op_sparsity`` analysis rows; ``virtual_grad``
#: (Spiking-PGD's virtual surrogate gradient on or off, Fig. 9b) of Spiking-PGD's rows.
KEY_ORDER = ("dataset", "arch", "method", "threat", "attack", "space", "mode", "ensemble", "eps", "steps",
             "virtual_grad", "pooling", "T", "coding", "op_kind", "metric")
MISSING = None


def key_columns(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The key columns of a frame in display order (everything but value-like and ``exclude`` columns)."""
    skip = set(NON_KEYS) | set(exclude)
    cols = [c for c in frame.columns if c not in skip]
    return [k for k in KEY_ORDER if k in cols] + [c for c in cols if c not in KEY_ORDER]


def comparable(key: str, value: object) -> str | None:
    """One matchable spelling of a key value (None when undetermined): eps parsed ("8/255" == 0.0314), numbers as
    floats (10 == 10.0), booleans as true/false, text stripped and case-folded."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, bool):
        return str(value).casefold()
    if key == "eps":
        return repr(round(parse_eps(value), 6))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    text = str(value).strip().casefold()
    if key == "steps":
        try:
            return repr(float(text))
        except ValueError:
            return text
    return {"yes": "true", "no": "false"}.get(text, text)


def without_virtual_grad(rows: pd.DataFrame) -> pd.Series:
    """True for the rows of a Spiking-PGD run without the virtual surrogate gradient (Fig. 9b's ablation, not the
    paper's attack): ``virtual_grad`` spelled false in any form :func:`comparable` reads."""
    if "virtual_grad" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["virtual_grad"].map(lambda v: comparable("virtual_grad", v) in ("false", "0", "0.0"))


def comparable_frame(frame: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Comparable forms of ``keys`` (missing columns all undetermined); clean rows count as eps 0, steps 0."""
    out = pd.DataFrame(index=frame.index)
    for key in keys:
        out[key] = frame[key].map(lambda v, k=key: comparable(k, v)) if key in frame else MISSING
    if "attack" in out:
        clean = out["attack"].eq("clean")
        for key in ("eps", "steps"):
            if key in out:
                out.loc[clean, key] = repr(0.0)
    return out


def pair(paper: pd.DataFrame, reproduced: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """(paper index, reproduced index) of every pairing; both frames speak the paper's vocabulary in ``keys``.

    Each reproduced row pairs with at most one paper row: the one declaring the most keys among those it matches
    (two equally specific matches are an error: the paper table needs another key).
    """
    keys = list(keys)
    ours, theirs = comparable_frame(reproduced, keys), comparable_frame(paper, keys)
    declared = theirs.notna()
    found = []
    signatures = declared.apply(lambda row: "".join("1" if on else "0" for on in row), axis=1)
    for signature, group in theirs.groupby(signatures, sort=False):
        cols = [k for k, on in zip(keys, signature) if on == "1"]
        able = ours[cols].notna().all(axis=1) if cols else pd.Series(True, index=ours.index)
        left = group[cols].reset_index(names="_paper")
        right = ours.loc[able, cols].reset_index(names="_rep")
        hits = left.merge(right, on=cols, how="inner") if cols else left.merge(right, how="cross")
        found.append(hits[["_paper", "_rep"]].assign(_n=len(cols)))
    if not found:
        return pd.DataFrame(columns=["_paper", "_rep"], dtype=int)
    hits = pd.concat(found, ignore_index=True)
    best = hits[hits["_n"] == hits.groupby("_rep")["_n"].transform("max")]
    if best["_rep"].duplicated().any():
        rep = best.loc[best["_rep"].duplicated(), "_rep"].iloc[0]
        raise SnnRobustError(f"reproduced row {rep} matches several paper rows equally well; add a key to the paper table")
    return best[["_paper", "_rep"]].reset_index(drop=True)


def translate(frame: pd.DataFrame, maps: Mapping[str, Mapping]) -> pd.DataFrame:
    """Add ``paper_<key>`` columns: each mapped key's value in the paper's vocabulary (unmapped values kept)."""
    return frame.assign(**{f"paper_{k}": frame[k].map(lambda v, m=m: m.get(v, v)) for k, m in maps.items()
                           if k in frame})
