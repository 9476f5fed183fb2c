"""A paper's headline claims as data: each compares two reproduced quantities and holds, fails or is not yet run.

A claim (``claims:`` in a paper-values YAML, or in a study's report section) is ``{id, text, source, left, op,
right, ignore?, margin?}``. ``left`` and ``right`` select rows in the paper's vocabulary (``{method: SR*, attack:
PGD, metric: accuracy}``; a list means any of). The two sides are compared like for like: rows are grouped into
settings on every key except those the selectors set differently and those in ``ignore``, and only settings
present on both sides count. The difference mean(left) − mean(right) − ``margin`` over those settings gets a 95 %
interval (``intervals``: a paired bootstrap over the evaluation samples and the seeds); the claim holds or fails
when the interval lies on the claim's side of 0 or the other, and is within noise when it contains 0. Without any
source of noise (one seed, no per-sample values: the paper's printed numbers) the point comparison decides.
The same selectors on the paper's own values give the paper's verdict, shown beside ours.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.budget import BUDGET_KEY, BUDGET_METRICS
from snnrobust.report.intervals import FAILS, HOLDS, WITHIN_NOISE, Interval, claim_interval, verdict
from snnrobust.report.pairing import KEY_ORDER, comparable, comparable_frame, key_columns
from snnrobust.report.paper_values import load_paper_values, paper_document, paper_vocabulary
from snnrobust.report.reproduced import REPRODUCED_METRICS

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_FIELDS = {"id", "text", "source", "left", "op", "right", "ignore", "margin"}
NOT_RUN = "not yet run"
#: Every verdict a claim can get, in display order.
VERDICTS = (HOLDS, FAILS, WITHIN_NOISE, NOT_RUN)


@dataclass(frozen=True)
class Claim:
    """One comparison between two selections of measurements."""

    id: str
    text: str
    source: str
    left: Mapping[str, Any]
    op: str
    right: Mapping[str, Any]
    ignore: tuple[str, ...] = ()
    margin: float = 0.0

    def varied(self) -> set[str]:
        """Keys the two sides select differently: the claim compares across them, so they are not matched."""
        keys = set(self.left) | set(self.right)
        return {k for k in keys if _terms(k, self.left.get(k)) != _terms(k, self.right.get(k))}


@dataclass
class Verdict:
    """A claim's result on one frame: status, the two means, how many matched settings they cover, and the
    difference left − right − margin with its interval."""

    status: str
    left: float = float("nan")
    right: float = float("nan")
    settings: int = 0
    agree: int = 0
    detail: str = field(default="")
    interval: Interval = field(default_factory=lambda: Interval(float("nan")))


def _terms(key: str, value: Any) -> frozenset | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return frozenset(comparable(key, v) for v in values)


def known_keys(paper: str) -> set[str]:
    """Keys a selector may use: the usual keys, every key column of the paper's rows and the equal-budget key."""
    return set(KEY_ORDER) | set(key_columns(load_paper_values(paper))) | {BUDGET_KEY}


def known_metrics() -> set[str]:
    """Metrics the reproduced frame can hold: the fixed ones plus every registered analysis's statistics."""
    from snnrobust.analysis.registry import ANALYSES

    metrics = set(REPRODUCED_METRICS) | set(BUDGET_METRICS)
    for name in ANALYSES.names():
        metrics |= set(getattr(ANALYSES.get(name), "STATISTICS", ()))
    return {m.casefold() for m in metrics}


def parse_claims(raw: Any, paper: str, where: str) -> list[Claim]:
    """Validate claim mappings against the paper's vocabulary; one-line error naming the claim and the term."""
    if not isinstance(raw, list):
        raise SnnRobustError(f"{where}: claims must be a list")
    vocabulary = paper_vocabulary(paper)
    vocabulary["metric"] = vocabulary["metric"] | known_metrics()
    keys = known_keys(paper)
    claims, seen = [], set()
    for i, item in enumerate(raw):
        name = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        here = f"{where} claim {name}"
        if not isinstance(item, dict) or {"id", "text", "left", "op", "right"} - item.keys():
            raise SnnRobustError(f"{here}: needs id, text, left, op and right")
        if item.keys() - _FIELDS:
            raise SnnRobustError(f"{here}: unknown field(s) {', '.join(sorted(item.keys() - _FIELDS))}")
        if item["op"] not in OPS:
            raise SnnRobustError(f"{here}: op {item['op']!r} is not one of {', '.join(OPS)}")
        if name in seen:
            raise SnnRobustError(f"{here}: id repeats an earlier claim")
        seen.add(name)
        for side in ("left", "right"):
            _check_selector(item[side], vocabulary, keys, f"{here} {side}")
        ignore = item.get("ignore") or []
        if not isinstance(ignore, list) or set(ignore) - keys:
            raise SnnRobustError(f"{here}: ignore must list known keys; unknown: {sorted(set(ignore) - keys)}")
        claims.append(Claim(id=str(name), text=str(item["text"]), source=str(item.get("source", "")),
                            left=dict(item["left"]), op=item["op"], right=dict(item["right"]),
                            ignore=tuple(ignore), margin=float(item.get("margin", 0.0))))
    return claims


def _check_selector(selector: Any, vocabulary: dict, keys: set, where: str) -> None:
    if not isinstance(selector, dict) or not selector:
        raise SnnRobustError(f"{where}: a selector is a non-empty mapping of key → value")
    if "metric" not in selector:
        raise SnnRobustError(f"{where}: names no metric")
    for key, value in selector.items():
        if key not in keys:
            raise SnnRobustError(f"{where}: unknown key {key!r}")
        if key in vocabulary:
            for term in value if isinstance(value, list) else [value]:
                if str(term).casefold() not in vocabulary[key]:
                    raise SnnRobustError(f"{where}: {key} {term!r} does not exist; choose one of: "
                                         f"{', '.join(sorted(vocabulary[key]))}")


def load_claims(paper: str) -> list[Claim]:
    """The headline claims of a paper, validated."""
    return parse_claims(paper_document(paper).get("claims") or [], paper, f"paper values {paper}.yaml")


def validate_claims(paper: str, extra: Any = None) -> None:
    """One-line error for a paper's claim (or an ``extra`` study claim) naming a method, attack or metric that
    does not exist in the paper's vocabulary or among the reproduced metrics."""
    load_claims(paper)
    if extra is not None:
        parse_claims(extra, paper, f"report of paper {paper}")


def _select(frame: pd.DataFrame, selector: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, value in selector.items():
        if key not in frame:
            return frame.iloc[0:0]
        mask &= frame[key].map(lambda v, k=key: comparable(k, v)).isin(_terms(key, value))
    return frame[mask]


def _setting_labels(rows: pd.DataFrame, keys: list[str]) -> pd.Series:
    """One label per row naming its setting (the comparable spelling of every matched key)."""
    forms = comparable_frame(rows, keys).fillna("<none>")
    if not keys:
        return pd.Series("", index=rows.index, dtype=object)
    return forms[keys].astype(str).agg("\x1f".join, axis=1)


def evaluate(claim: Claim, frame: pd.DataFrame, keys: set[str],
             load: Callable[[object], Any] | None = None) -> Verdict:
    """Evaluate a claim on tidy rows in the paper's vocabulary (columns: keys, ``metric``, ``value``); settings
    are matched on the columns among ``keys`` (usually ``known_keys(paper)``) that either side determines.
    ``load`` reads a row's per-sample values from its ``outcomes_from`` reference (``intervals.OutcomeStore``);
    without it only seeds and stored per-sample stds give the interval."""
    if frame.empty or "value" not in frame:
        return Verdict(NOT_RUN, detail="no measurements")
    left, right = _select(frame, claim.left), _select(frame, claim.right)
    if left.empty or right.empty:
        return Verdict(NOT_RUN, detail=f"no rows for the {'left' if left.empty else 'right'} side")
    skip = claim.varied() | set(claim.ignore)
    keys = [k for k in key_columns(frame) if k in keys and k not in skip]
    keys = [k for k in keys if left[k].notna().any() or right[k].notna().any()]
    left, right = left.assign(setting=_setting_labels(left, keys)), right.assign(setting=_setting_labels(right, keys))
    lhs = left["value"].astype(float).groupby(left["setting"]).mean()
    rhs = right["value"].astype(float).groupby(right["setting"]).mean()
    common = lhs.index.intersection(rhs.index)
    if common.empty:
        return Verdict(NOT_RUN, detail="no setting measured on both sides")
    lv, rv = lhs.loc[common], rhs.loc[common]
    agree = int(sum(OPS[claim.op](a, b + claim.margin) for a, b in zip(lv, rv)))
    left_mean, right_mean = float(lv.mean()), float(rv.mean())
    held = OPS[claim.op](left_mean, right_mean + claim.margin)
    matched = pd.concat([left[left["setting"].isin(common)].assign(side="left"),
                         right[right["setting"].isin(common)].assign(side="right")], ignore_index=True)
    interval = claim_interval(matched, claim.margin, load)
    margin = f" {claim.margin:+g}" if claim.margin else ""
    detail = f"{left_mean:.4g} {claim.op} {right_mean:.4g}{margin} ({agree} of {len(common)} settings agree)"
    return Verdict(verdict(claim.op, interval, held), left_mean, right_mean, len(common), agree, detail, interval)
