"""What the trail paper's sparsity figures show, as data (``panels.FigureData``), from ``op_sparsity`` analysis rows.

* ``op_sparsity`` (Figs. 3/5): per operation kind in network order, the zero fraction (%) and the L2 norm of the
  gradient w.r.t. the operations' inputs, each the mean over that kind's operations of a run, one bar per run
  (model; method or measuring point where they vary). The classifier's global average pool is its own category
  ("global pool"), so "pool" is the fixed-window pooling the paper swaps (max in Fig. 3, avg in Fig. 5).
* ``sparsity_vs_weight_grad`` (Theorem 4.4): per run, the zero fraction of the gradient w.r.t. the first layer's
  input (the encoded s[t] of an SNN) against that of the first layer's per-sample weight gradient, one point per
  run, with Pearson's r over the runs in the title.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.panels import (RUN_COLUMNS, FigureData, Panel, Series, _figure, _metric, _name, _numeric,
                                     _ordered, _split, _varying, curves, require)

#: Columns that tell measured runs apart in these figures: the run, then where it was measured.
WHO = (*RUN_COLUMNS[1:], "attack")
#: Columns that identify one measurement (a run's seed, subset and point): never averaged over inside a run.
MEASUREMENT = ("dataset", "model", "method", "seed", "analysis", "attack", "eps", "value_n", "n_eval", "source")


def op_category(kind: str, op_type: object) -> str:
    """The bar an operation joins: its kind, except that a global (adaptive) pool is "global pool"."""
    return "global pool" if kind == "pool" and str(op_type).startswith("Adaptive") else str(kind)


def network_order(rows: pd.DataFrame) -> tuple:
    """Categories in the order the network first calls them (``op_index``; order of appearance without it)."""
    if "op_index" not in rows:
        return tuple(_ordered(rows["category"]))
    first = rows.assign(i=_numeric(rows["op_index"])).groupby("category", sort=False)["i"].min()
    return tuple(first.sort_values(kind="stable").index)


def _per_category(rows: pd.DataFrame) -> pd.DataFrame:
    """One value per (measurement, category, metric): the mean over that category's operations (and inputs)."""
    keys = [c for c in MEASUREMENT if c in rows] + ["category", "metric"]
    return rows.groupby(keys, dropna=False, sort=False)["value"].mean().reset_index()


def _log_scale(series: list[Series]) -> bool:
    """Whether positive values span more than two decades (norms of different operations do)."""
    ys = pd.concat([s.points["y"] for s in series]) if series else pd.Series(dtype=float)
    ys = ys[ys > 0]
    return not ys.empty and ys.max() > 100 * ys.min()


#: metric → (panel title, y label, scale to the drawn unit)
OP_PANELS = {"zero_fraction": ("zero fraction", "zeros in ∇ w.r.t. the operation's input (%)", 100.0),
             "grad_norm": ("gradient norm", "mean ‖∇‖₂ w.r.t. the operation's input", 1.0)}


def op_sparsity_panels(df: pd.DataFrame) -> FigureData:
    """Trail Figs. 3/5: per dataset, bars of the zero fraction (%) and the L2 norm of the gradient w.r.t. each
    operation kind's inputs (network order), one bar per run. Columns: model, metric (zero_fraction, grad_norm),
    op_kind, value (op_type, op_index, method, attack, seed optional)."""
    require(df, ("model", "metric", "op_kind", "value"), "op_sparsity")
    data = _metric(df, *OP_PANELS)
    if data.empty:
        raise SnnRobustError("figure op_sparsity: the data has no zero_fraction or grad_norm rows")
    types = data["op_type"] if "op_type" in data else pd.Series("", index=data.index)
    data = data.assign(category=[op_category(k, t) for k, t in zip(data["op_kind"], types)])
    who = _varying(data, WHO)
    panels, notes = [], []
    for dataset, rows in _split(data, "dataset"):
        order, values = network_order(rows), _per_category(rows)
        prefix = f"{dataset} · " if dataset is not None else ""
        for metric, (title, ylabel, scale) in OP_PANELS.items():
            part = values[values["metric"] == metric]
            series, found = curves(part.assign(value=part["value"] * scale), who, "category", prefix + title)
            notes += found
            limits = (0, 100) if metric == "zero_fraction" else None
            panels.append(Panel(prefix + title, "operation (network order)", ylabel, tuple(series), kind="bar",
                                categories=order, ylim=limits, yscale="log" if _log_scale(series) else "linear"))
    return _figure(panels, notes, ncols=2, width=5.5)


def pearson(x: pd.Series, y: pd.Series) -> float | None:
    """Pearson's r of paired values (None with fewer than 3 pairs or a constant side: r would say nothing)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def first_layer_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Per measurement: the first layer's input-gradient zero fraction (``x``) beside its per-sample weight-gradient
    zero fraction (``y``), both in %, joined on the measurement and the layer (``op``)."""
    weight = _metric(df, "weight_zero_fraction")
    inputs = _metric(df, "zero_fraction")
    if "branch" in inputs:
        inputs = inputs[_numeric(inputs["branch"]).fillna(0) == 0]
    keys = [c for c in MEASUREMENT if c in df] + ["op"]
    pairs = weight[keys + ["value"]].merge(inputs[keys + ["value"]], on=keys, suffixes=("_w", "_in"))
    return pairs.assign(x=_numeric(pairs["value_in"]) * 100, y=_numeric(pairs["value_w"]) * 100)


def _points(pairs: pd.DataFrame, who: list[str], label: Callable[[tuple], str]) -> list[Series]:
    """One single-point series per run (seeds averaged)."""
    means = pairs.groupby(who, dropna=False, sort=False)[["x", "y"]].mean().reset_index()
    return [Series(label(tuple(r[who])), pd.DataFrame({"x": [r["x"]], "y": [r["y"]]})) for _, r in means.iterrows()]


def sparsity_vs_weight_grad_panels(df: pd.DataFrame) -> FigureData:
    """Trail Theorem 4.4: per dataset, the zero fraction (%) of the gradient w.r.t. the first layer's input against
    that of its per-sample weight gradient, one point per run, Pearson's r over the runs in the title. Columns:
    model, metric (zero_fraction, weight_zero_fraction), op, value (branch, method, attack, seed optional)."""
    require(df, ("model", "metric", "op", "value"), "sparsity_vs_weight_grad")
    pairs = first_layer_pairs(df)
    if pairs.empty:
        raise SnnRobustError("figure sparsity_vs_weight_grad: the data has no weight_zero_fraction row with the "
                             "zero_fraction of the same layer's input")
    who = _varying(pairs, WHO)
    panels, notes = [], []
    for dataset, rows in _split(pairs, "dataset"):
        series = _points(rows, who, _name)
        r = pearson(*(pd.Series([s.points[c].iloc[0] for s in series]) for c in ("x", "y")))
        stat = f"r = {r:.2f}" if r is not None and not math.isnan(r) else "r n/a (needs ≥ 3 runs that differ)"
        prefix = f"{dataset} · " if dataset is not None else ""
        notes.append(f"{prefix}Pearson {stat} over {len(series)} runs")
        panels.append(Panel(f"{prefix}first layer: {stat} ({len(series)} runs)",
                            "zeros in ∇ w.r.t. the first layer's input (%)",
                            "zeros in the per-sample ∇w₁ (%)", tuple(series)))
    return _figure(panels, notes, width=5.5)


def theorem44_table(df: pd.DataFrame) -> pd.DataFrame:
    """Theorem 4.4's numbers beside its figure: per run, the zeros (%) of the gradient w.r.t. the first layer's input
    and of its per-sample weight gradient, then per dataset one row with Pearson's r over the runs (empty when no
    run has both)."""
    pairs = first_layer_pairs(df)
    if pairs.empty:
        return pd.DataFrame()
    who = [c for c in ("dataset", *_varying(pairs, WHO)) if c in pairs]
    runs = pairs.groupby(who, dropna=False, sort=False)[["x", "y"]].mean().reset_index()
    runs = runs.rename(columns={"x": "zeros in ∇ first-layer input (%)", "y": "zeros in per-sample ∇w₁ (%)"})
    rows = [runs.assign(pearson_r="")]
    for dataset, part in _split(runs, "dataset"):
        r = pearson(part.iloc[:, -2], part.iloc[:, -1])
        rows.append(pd.DataFrame([{**({"dataset": dataset} if "dataset" in runs else {}), who[-1]: "all runs",
                                   "pearson_r": "n/a (needs ≥ 3 runs that differ)" if r is None else f"{r:.2f}"}]))
    out = pd.concat(rows, ignore_index=True).astype(object)
    return out.where(out.notna(), "")


#: Figure kind → its pure data function (``figures_trail`` registers the drawing of each).
TRAIL_PANELS: dict[str, Callable[[pd.DataFrame], FigureData]] = {
    "op_sparsity": op_sparsity_panels, "sparsity_vs_weight_grad": sparsity_vs_weight_grad_panels,
}
