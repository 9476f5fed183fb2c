"""A claim's difference with a 95 % interval: a paired bootstrap over the evaluation samples (and over seeds).

Every run is evaluated on the same fixed subset, so both sides of a claim were measured on the same images: one
replicate draws the seeds of each setting with replacement (shared where the seed sets agree, so seed k pairs with
seed k), then one set of sample indices per evaluation subset (dataset, n), shared by every run on that subset.
A measurement with stored per-sample values (an attack's 0/1 outcomes) moves with those indices; one with only a
per-sample std and n (an analysis statistic) moves by a normal draw of its standard error, unpaired; one with
neither (a cost, a training metric) stays fixed and varies only through its seed. Draws come from a fixed seed,
so a report is byte-identical across reruns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from snnrobust.errors import SnnRobustError

LEVEL = 0.95
REPLICATES = 2000
SEED = 20240521
#: Columns of a measurement that carry its spread (see ``reproduced``): a ``path#field`` reference to per-sample
#: values in a result file, and the per-sample std and count of an analysis statistic.
OUTCOMES, SPREAD_STD, SPREAD_N = "outcomes_from", "value_std", "value_n"
#: Per-sample fields of an attack result file: 0/1 flags, while the row's accuracy is a percentage.
PERCENT_FIELDS = {"clean_correct": 100.0, "adv_correct": 100.0}
HOLDS, FAILS, WITHIN_NOISE = "holds", "fails", "within noise"
_CHUNK = 250  # replicates drawn at once (bounds the index matrix to _CHUNK × n)


@dataclass(frozen=True)
class Interval:
    """A difference left − right − margin, its interval (NaN bounds: no source of noise) and what it is over."""

    diff: float
    low: float = float("nan")
    high: float = float("nan")
    over: str = ""

    @property
    def exists(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self) -> str:
        """'+0.9 [−1.2, +3.0]' (or the difference alone when there is no interval)."""
        if not self.exists:
            return f"{self.diff:+.3g}"
        return f"{self.diff:+.3g} [{self.low:+.3g}, {self.high:+.3g}]"


class OutcomeStore:
    """Per-sample values behind ``path#field`` references, read once per result file; values in the row's units."""

    def __init__(self) -> None:
        self._files: dict[str, dict] = {}

    def __call__(self, ref: object) -> np.ndarray | None:
        """The values of one reference, or None (no reference, or a file that stores no per-sample values)."""
        if not isinstance(ref, str) or "#" not in ref:
            return None
        path, field = ref.rsplit("#", 1)
        if path not in self._files:
            try:
                self._files[path] = json.loads(Path(path).read_text()).get("samples") or {}
            except (OSError, json.JSONDecodeError, AttributeError):
                raise SnnRobustError(f"cannot read per-sample outcomes from {path}") from None
        values = self._files[path].get(field)
        if values is None:
            return None
        return np.asarray(values, dtype=float) * PERCENT_FIELDS.get(field, 1.0)


def verdict(op: str, interval: Interval, held: bool) -> str:
    """holds / fails when the interval lies on one side of 0, within noise when it contains 0; without an
    interval, the point comparison ``held`` decides."""
    if not interval.exists:
        return HOLDS if held else FAILS
    if interval.low <= 0.0 <= interval.high:
        return WITHIN_NOISE
    above = interval.low > 0.0
    return HOLDS if above == (op in (">", ">=")) else FAILS


def claim_interval(rows: pd.DataFrame, margin: float = 0.0, load: Callable[[object], np.ndarray | None] | None = None,
                   replicates: int = REPLICATES, seed: int = SEED) -> Interval:
    """Bootstrap interval of mean(left settings) − mean(right settings) − ``margin``.

    ``rows``: one row per measurement with ``setting`` (a label shared by the two sides), ``side`` ("left" or
    "right"), ``value``, and where known ``seed``, ``dataset``, ``outcomes_from``, ``value_std``, ``value_n``.
    Each side of a setting is the mean of its rows, as the point verdict takes it.
    """
    rows = rows.reset_index(drop=True)
    values = rows["value"].astype(float).to_numpy()
    seeds = _column(rows, "seed").map(lambda s: "" if _missing(s) else str(s))
    groups = rows["setting"].astype(str) + "\x1f" + rows["side"].astype(str)
    settings = {side: sorted(set(rows.loc[rows["side"] == side, "setting"].astype(str))) for side in ("left", "right")}
    diff = _point(values, groups, rows, settings) - margin

    load = load or (lambda ref: None)
    outcomes = [load(ref) for ref in _column(rows, OUTCOMES)]
    se = _standard_errors(rows)
    sampled = [i for i, o in enumerate(outcomes) if o is not None]
    normal = [i for i in range(len(rows)) if outcomes[i] is None and not math.isnan(se[i])]
    seed_sets = {g: tuple(sorted(set(seeds[groups == g]))) for g in dict.fromkeys(groups)}
    several = max((len(s) for s in seed_sets.values()), default=0) > 1
    if not (sampled or normal or several):
        return Interval(diff, over="no interval: one seed and no per-sample values")

    rng = np.random.default_rng(seed)
    moved = np.tile(values, (replicates, 1))  # replicate × row
    subsets: dict[tuple, list[int]] = {}
    for i in sampled:
        subsets.setdefault((str(_column(rows, "dataset")[i]), len(outcomes[i])), []).append(i)
    for (_, n), members in sorted(subsets.items()):
        block = np.stack([outcomes[i] for i in members], axis=1)  # sample × member
        base = block.mean(axis=0)
        for start in range(0, replicates, _CHUNK):
            stop = min(start + _CHUNK, replicates)
            picks = rng.integers(0, n, size=(stop - start, n))
            counts = np.bincount((np.arange(stop - start)[:, None] * n + picks).ravel(),
                                 minlength=(stop - start) * n).reshape(stop - start, n)
            moved[start:stop, members] += counts @ block / n - base
    if normal:
        moved[:, normal] += rng.standard_normal((replicates, len(normal))) * se[normal]

    weights = np.zeros_like(moved)
    draws = {s: _seed_counts(rng, len(s), replicates) for s in sorted(set(seed_sets.values()))}
    for g, s in seed_sets.items():
        for j, label in enumerate(s):
            hit = np.flatnonzero((groups == g).to_numpy() & (seeds == label).to_numpy())
            weights[:, hit] = draws[s][:, [j]]
    replicated = _replicated(moved, weights, groups, settings) - margin
    low, high = np.percentile(replicated, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    return Interval(diff, float(low), float(high), _describe(rows, outcomes, sampled, normal, seed_sets))


def _column(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows else pd.Series([None] * len(rows), index=rows.index, dtype=object)


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def _standard_errors(rows: pd.DataFrame) -> np.ndarray:
    """std / √n of each row's per-sample values where both are stored (NaN elsewhere)."""
    std = pd.to_numeric(_column(rows, SPREAD_STD), errors="coerce").to_numpy(dtype=float)
    n = pd.to_numeric(_column(rows, SPREAD_N), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, std / np.sqrt(n), np.nan)


def _seed_counts(rng: np.random.Generator, k: int, replicates: int) -> np.ndarray:
    """How often each of k seeds is drawn in each replicate (k draws with replacement; all 1 for one seed)."""
    if k == 1:
        return np.ones((replicates, 1))
    picks = rng.integers(0, k, size=(replicates, k))
    return np.stack([(picks == j).sum(axis=1) for j in range(k)], axis=1).astype(float)


def _point(values: np.ndarray, groups: pd.Series, rows: pd.DataFrame, settings: dict) -> float:
    means = pd.Series(values).groupby(groups.to_numpy()).mean()
    side = {s: np.mean([means[f"{k}\x1f{s}"] for k in settings[s]]) for s in ("left", "right")}
    return float(side["left"] - side["right"])


def _replicated(moved: np.ndarray, weights: np.ndarray, groups: pd.Series, settings: dict) -> np.ndarray:
    """Per replicate: mean over settings of each side's seed-weighted mean, left − right."""
    out = {}
    for side in ("left", "right"):
        parts = []
        for setting in settings[side]:
            hit = np.flatnonzero((groups == f"{setting}\x1f{side}").to_numpy())
            w = weights[:, hit]
            parts.append((moved[:, hit] * w).sum(axis=1) / w.sum(axis=1))
        out[side] = np.mean(parts, axis=0)
    return out["left"] - out["right"]


def _describe(rows: pd.DataFrame, outcomes: Sequence, sampled: list[int], normal: list[int], seed_sets: dict) -> str:
    """What the interval is over, in words."""
    parts = []
    if sampled:
        sizes = "/".join(str(n) for n in sorted({len(outcomes[i]) for i in sampled}))
        parts.append(f"paired bootstrap over {sizes} samples")
    if normal:
        parts.append("normal approximation from each value's per-sample std and n "
                     "(sides unpaired: no per-sample values stored)")
    most = max(len(s) for s in seed_sets.values())
    if most > 1:
        parts.append(f"{most} seeds resampled")
    fixed = len(rows) - len(sampled) - len(normal)
    if fixed and (sampled or normal):
        parts.append(f"{fixed} of {len(rows)} values without per-sample spread held fixed")
    elif fixed:
        parts[-1] += " (no per-sample values)"
    return f"{int(LEVEL * 100)} % interval: " + "; ".join(parts)
