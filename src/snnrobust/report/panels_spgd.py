"""What the Spiking-PGD paper's cost figure shows, as data (``panels.FigureData``), from attack measurements.

* ``accuracy_vs_cost`` (Fig. 5, Sec. 5.1-5.2): accuracy under attack (%) against the relative computation cost,
  one curve per attack family (PGD, I-FGSM, MI-FGSM, Spiking-PGD), one panel per dataset. The cost is Sec. 5.1's:
  T/T0 for an iterative attack of T iterations, with T0 the largest iteration count among the figure's runs (the
  paper's T0 = 20); for Spiking-PGD the share of the layer work it did, ``forward_share`` × T/T0 (the gated
  Conv/Linear forwards computed over those requested, ``Cost.shares``). Beside each cost panel, the same accuracies
  against the attack's wall-clock seconds (``wall_s``): strength per operation and strength per second can differ,
  since the gate itself costs time.

The frame is the tidy measurements of a study (``reproduced.measurements``): one row per (attack job, metric) with
``attack`` (config id or paper name), ``attack_name`` (registry name), ``steps``, ``metric`` (accuracy,
forward_share, wall_s) and ``value``; clean rows and other attacks are left out.

* ``spgd_ablation`` (Fig. 9, Sec. 5.4): Spiking-PGD's ablations from the same attack rows: (a) accuracy under
  attack and relative cost over the threshold ρ, (b) with and without the virtual surrogate gradient
  (``virtual_grad``: false gives a reused layer a zero input gradient), (c) one curve per attack radius ε, PGD's
  beside it. Fig. 5 (``accuracy_vs_cost``) draws the paper's attack only: rows with ``virtual_grad`` false are
  ablation rows and stay out of it.

* ``redundancy_heatmap`` (Fig. 1 right, Appendix A Tables 1-2): the ``redundancy`` analysis's relative change
  between consecutive PGD iterates, a heatmap of layer × iteration, one panel per run (model · method) and statistic
  (activation, then gradient); rows ``metric`` (the statistic), ``layer``, ``iteration``, ``value``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.report.pairing import without_virtual_grad
from snnrobust.report.panels import (RUN_COLUMNS, FigureData, Panel, _figure, _metric, _name, _numeric, _ordered,
                                     _split, _varying, curves, eps_text, require)

#: Attack family (registry name, or the paper's name case-folded) → the paper's legend name, in legend order.
FAMILIES = {"pgd": "PGD", "ifgsm": "I-FGSM", "mifgsm": "MI-FGSM", "spiking_pgd": "Spiking-PGD",
            "topology": "PGD"}  # Fig. 6: on graphs the paper's PGD is Xu et al.'s topology attack (ε: edge-budget share)
_BY_NAME = {**FAMILIES, **{v.casefold(): v for v in FAMILIES.values()}}
#: The family whose cost is scaled by the share of layer work it did.
GATED = "Spiking-PGD"
#: Columns that identify one attack job's measurement (its metrics are joined on them).
JOB = ("dataset", "model", "method", "seed", "threat", "attack", "eps", "steps", "n_eval")
#: Columns that tell curves apart besides the family (a series is named by those that vary).
WHO = (*RUN_COLUMNS[1:], "threat", "eps_text")
ACCURACY = "accuracy under attack (%)"


def family_of(rows: pd.DataFrame) -> pd.Series:
    """Each row's attack family in the paper's words (None for attacks outside the figure: clean, FGSM, …), from
    ``attack_name`` where the row has one, else from ``attack``."""
    name = rows["attack_name"] if "attack_name" in rows else pd.Series(None, index=rows.index, dtype=object)
    name = name.where(name.notna(), rows["attack"]) if "attack" in rows else name
    return name.map(lambda v: _BY_NAME.get(str(v).casefold()) if isinstance(v, str) else None)


def cost_points(df: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]]:
    """One row per attack job of the figure's families: its keys (with ``rho`` and ``virtual_grad`` where rows
    have them), ``family``, ``accuracy``, ``forward_share``, ``wall_s`` and ``cost`` (% of T0, seeds of one job
    averaged so they share an x); with T0 and notes."""
    data = df.assign(family=family_of(df))
    data = data[data["family"].notna() & data["metric"].isin(("accuracy", "forward_share", "wall_s"))]
    if data.empty:
        raise SnnRobustError("figure accuracy_vs_cost: the data has no rows of PGD, I-FGSM, MI-FGSM or Spiking-PGD")
    data = data.assign(steps=_numeric(data["steps"]), value=_numeric(data["value"]),
                       eps_text=data["eps"].map(lambda e: f"ε={eps_text(e)}") if "eps" in data else "")
    keys = [c for c in (*JOB, "rho", "virtual_grad", "eps_text", "family") if c in data]
    wide = data.groupby([*keys, "metric"], dropna=False, sort=False)["value"].mean().unstack("metric").reset_index()
    wide.columns.name = None
    notes = []
    if "accuracy" in wide:
        wide = wide.dropna(subset=["accuracy"])
    if "accuracy" not in wide or wide.empty:
        raise SnnRobustError("figure accuracy_vs_cost: the data has no accuracy under PGD, I-FGSM, MI-FGSM or "
                             "Spiking-PGD")
    for column in ("forward_share", "wall_s"):
        if column not in wide:
            wide[column] = float("nan")
    gated = wide["family"] == GATED
    unshared = gated & wide["forward_share"].isna()
    if unshared.any():
        notes.append(f"{int(unshared.sum())} Spiking-PGD run(s) without forward_share left out")
        wide = wide[~unshared]
        gated = wide["family"] == GATED
    wide = wide.dropna(subset=["steps"])
    t0 = int(wide["steps"].max())
    share = wide["forward_share"].where(gated, 1.0)
    wide = wide.assign(cost=100.0 * share * wide["steps"] / t0)
    same_job = [c for c in keys if c != "seed"]
    wide["cost"] = wide.groupby(same_job, dropna=False, sort=False)["cost"].transform("mean")
    wide["wall_x"] = wide.groupby(same_job, dropna=False, sort=False)["wall_s"].transform("mean")
    order = {f: i for i, f in enumerate(dict.fromkeys(FAMILIES.values()))}
    wide = wide.assign(_order=wide["family"].map(order)).sort_values(["_order", "cost"], kind="stable")
    return wide.drop(columns="_order").reset_index(drop=True), t0, notes


def _panel_series(rows: pd.DataFrame, who: list[str], x: str, what: str) -> tuple[list, list[str]]:
    """One curve per (run, family) over the x column ``x`` (accuracy as y)."""
    return curves(rows.assign(value=rows["accuracy"]), [*who, "family"], x, what, label=_name)


def _compared_runs(points: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The points of the runs (dataset, model, method) that Spiking-PGD attacked, when any run has it; other runs'
    baseline points are no comparison of the figure. Fig. 6 (no Spiking-PGD at all) keeps every run."""
    run = [c for c in RUN_COLUMNS if c in points]
    gated = points["family"] == GATED
    if not run or not gated.any():
        return points, 0
    key = points[run].astype(str).agg("\x1f".join, axis=1)
    keep = key.isin(set(key[gated]))
    return points[keep], int(key[~keep].nunique())


def accuracy_vs_cost_panels(df: pd.DataFrame, wall: bool = True) -> FigureData:
    """Spiking-PGD Fig. 5: per dataset, accuracy under attack (%) against the relative cost (% of T0 iterations;
    Spiking-PGD's scaled by its ``forward_share``), one curve per attack family, and (``wall``) beside it the same
    accuracies against wall-clock seconds. Columns: attack, steps, metric (accuracy, forward_share, wall_s), value
    (attack_name, dataset, model, method, seed, eps, n_eval optional)."""
    require(df, ("attack", "steps", "metric", "value"), "accuracy_vs_cost")
    ablation = without_virtual_grad(df)
    points, t0, notes = cost_points(_metric(df[~ablation], "accuracy", "forward_share", "wall_s"))
    if ablation.any():
        notes.append("Spiking-PGD runs without the virtual surrogate gradient are Fig. 9's ablation: not drawn here")
    points, left_out = _compared_runs(points)
    if left_out:
        notes.append(f"{left_out} run(s) with no Spiking-PGD attack (single baseline points, e.g. the inner-attack "
                     "study's models) not drawn here")
    who = [c for c in _varying(points, WHO) if c != "eps_text" and points[c].nunique(dropna=True) > 1]
    notes.append(f"relative cost = T/T0 with T0 = {t0} iterations (the figure's longest run); Spiking-PGD's is "
                 f"forward_share × T/T0 (the share of gated Conv/Linear forwards it computed)")
    panels = []
    groups = [(dataset, eps, rows) for dataset, part in _split(points, "dataset") for eps, rows in _split(part, "eps_text")]
    for dataset, eps, rows in groups:
        prefix = " · ".join(str(v) for v in (dataset, eps) if v is not None)
        prefix = f"{prefix} · " if prefix else ""
        series, found = _panel_series(rows, who, "cost", prefix + "cost")
        notes += found
        panels.append(Panel(prefix + "accuracy vs relative cost", f"relative cost (% of T0 = {t0} iterations)",
                            ACCURACY, tuple(series), ylim=(0, 100)))
        if wall:
            timed = rows.dropna(subset=["wall_x"])
            series, found = _panel_series(timed, who, "wall_x", prefix + "wall-clock")
            notes += found
            panels.append(Panel(prefix + "accuracy vs wall-clock", "wall-clock of the attack (s)", ACCURACY,
                                tuple(series), ylim=(0, 100)))
    if wall:
        notes.append("wall-clock: the attack's seconds over the evaluation subset (clean and final forwards "
                     "included), on the machine and load its job ran under")
    return _figure(panels, notes, ncols=2 if wall else None, width=5.2)


def _label(value: str) -> Callable[[tuple], str]:
    return lambda key: value


def _main_eps(rows: pd.DataFrame) -> object:
    """The ε of the most ρ points (ties: the largest ε): the setting whose ρ sweep Fig. 9a draws."""
    counts = rows.groupby("eps", dropna=True)["rho"].nunique()
    return counts[counts == counts.max()].index.max()


def _rho_panel(title: str, rows: pd.DataFrame) -> tuple[Panel | None, list[str]]:
    """Fig. 9a: accuracy under attack and relative cost (both %) over ρ."""
    rows = rows.dropna(subset=["rho"])
    if rows["rho"].nunique() < 2:
        return None, []
    both = pd.concat([rows.assign(series="accuracy under attack (%)", value=rows["accuracy"]),
                      rows.assign(series="relative cost (% of T0)", value=rows["cost"])], ignore_index=True)
    series, notes = curves(both.assign(rho=_numeric(both["rho"])), ["series"], "rho", title)
    return Panel(title, "threshold ρ", "%", tuple(series), ylim=(0, 100)), notes


def _labelled_curves(title: str, parts: list[tuple[str, pd.DataFrame]]) -> tuple[list, list[str]]:
    series, notes = [], []
    for label, rows in parts:
        found, why = curves(rows.assign(value=rows["accuracy"]), [], "cost", title, label=_label(label))
        series += found
        notes += why
    return series, notes


def spgd_ablation_panels(df: pd.DataFrame) -> FigureData:
    """Spiking-PGD Fig. 9 per dataset and model: (a) accuracy under attack and relative cost over ρ (virtual
    gradient on, the ε with the most ρ points), (b) accuracy vs relative cost with and without the virtual surrogate
    gradient (where runs without it exist; PGD at that ε beside them), (c) accuracy vs relative cost per ε
    (Spiking-PGD and PGD; where several ε were run). Columns as ``accuracy_vs_cost``, plus ``rho`` and
    ``virtual_grad``."""
    require(df, ("attack", "steps", "metric", "value", "rho"), "spgd_ablation")
    points, t0, notes = cost_points(_metric(df, "accuracy", "forward_share", "wall_s"))
    points = points.assign(off=without_virtual_grad(points), eps_x=_numeric(points["eps"]))
    notes.append(f"relative cost = T/T0 × forward_share for Spiking-PGD, T/T0 for PGD (T0 = {t0} iterations); "
                 "without the virtual surrogate gradient a reused layer passes a zero input gradient")
    panels = []
    for (dataset, model), rows in points.groupby(["dataset", "model"], sort=False, dropna=False):
        where = " · ".join(str(v) for v in (dataset, model) if not pd.isna(v))
        spiking, pgd = rows[rows["family"] == GATED], rows[rows["family"] == "PGD"]
        on = spiking[~spiking["off"]]
        if on.empty:
            continue
        main = _main_eps(on)
        panel, why = _rho_panel(f"{where} · ε={eps_text(main)} · (a) threshold ρ", on[on["eps"] == main])
        notes += why
        panels += [panel] if panel else []
        off = spiking[spiking["off"]]
        for eps in _ordered(off["eps"]):
            title = f"{where} · ε={eps_text(eps)} · (b) virtual surrogate gradient"
            series, why = _labelled_curves(title, [("Spiking-PGD, virtual gradient", on[on["eps"] == eps]),
                                                   ("Spiking-PGD, zero gradient when reused", off[off["eps"] == eps]),
                                                   ("PGD", pgd[pgd["eps"] == eps])])
            notes += why
            panels.append(Panel(title, "relative cost (% of T0)", ACCURACY, tuple(series), ylim=(0, 100)))
        radii = sorted(on["eps_x"].dropna().unique())
        if len(radii) > 1:
            title = f"{where} · (c) attack radius ε"
            parts = [(f"{family} · ε={eps_text(e)}", part[part["eps_x"] == e])
                     for e in radii for family, part in (("Spiking-PGD", on), ("PGD", pgd))]
            series, why = _labelled_curves(title, [(label, part) for label, part in parts if not part.empty])
            notes += why
            panels.append(Panel(title, "relative cost (% of T0)", ACCURACY, tuple(series), ylim=(0, 100)))
    if not panels:
        raise SnnRobustError("figure spgd_ablation: no Spiking-PGD run with the virtual gradient over two or more ρ")
    return _figure(panels, notes, width=5.2)


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    """The numbers Fig. 9 draws: one row per Spiking-PGD or PGD job (dataset, model, ε, virtual gradient, ρ,
    iterations, forward share, relative cost %, accuracy %, wall-clock s), in the figure's order."""
    points, _, _ = cost_points(_metric(df, "accuracy", "forward_share", "wall_s"))
    gated = points["family"] == GATED
    points = points.assign(virtual_grad=(~without_virtual_grad(points)).astype(object).where(gated, None),
                           eps=points["eps"].map(lambda e: eps_text(e) if not pd.isna(e) else ""))
    columns = [c for c in ("dataset", "model", "eps", "family", "virtual_grad", "rho", "steps", "forward_share",
                           "cost", "accuracy", "wall_s") if c in points]
    table = points[columns].rename(columns={"family": "attack", "cost": "relative cost (%)",
                                            "accuracy": "accuracy (%)"})
    return table.round({"forward_share": 3, "relative cost (%)": 1, "accuracy (%)": 1, "wall_s": 1})


#: The redundancy statistics (``analysis.redundancy``) in panel order, with their panel wording (Tables 1, 2).
REDUNDANCY = {"activation_relative_change": "activation relative change ‖a_t − a_{t−1}‖/‖a_t‖",
              "gradient_relative_change": "gradient relative change ‖g_t − g_{t−1}‖/‖g_t‖"}


def redundancy_cells(rows: pd.DataFrame) -> tuple[np.ndarray, list[str], list]:
    """One run's (layer × iteration) grid of mean values (seeds averaged), its layer labels (in ``layer_index``
    order where rows carry it) and its iterations (ascending)."""
    order = rows.sort_values("layer_index", kind="stable") if "layer_index" in rows else rows
    layers = list(dict.fromkeys(order["layer"]))
    iterations = sorted(_numeric(rows["iteration"]).dropna().unique().tolist())
    grid = (rows.assign(iteration=_numeric(rows["iteration"]), value=_numeric(rows["value"]))
            .pivot_table(index="layer", columns="iteration", values="value", aggfunc="mean")
            .reindex(index=layers, columns=iterations))
    return grid.to_numpy(dtype=float), [str(v) for v in layers], [int(i) for i in iterations]


def redundancy_heatmap_panels(df: pd.DataFrame) -> FigureData:
    """Spiking-PGD Fig. 1 (right) / Tables 1-2: relative change per layer (rows) and attack iteration (columns), one
    heatmap per run (model · method) and statistic, colour scale shared within a statistic. Columns: metric, layer,
    iteration, value (layer_index, dataset, model, method, seed optional)."""
    require(df, ("metric", "layer", "iteration", "value"), "redundancy_heatmap")
    data = _metric(df, *REDUNDANCY)
    if data.empty:
        raise SnnRobustError("figure redundancy_heatmap: the data has no activation_relative_change or "
                             "gradient_relative_change rows")
    who = _varying(data)
    data = data.assign(run=data[who].apply(lambda r: _name(tuple(r)), axis=1) if who else "")
    notes = ["iteration i compares the PGD iterate x_{i+1} with x_i (the paper's numbering from 0); "
             "each cell the mean over the evaluation samples" +
             (" and seeds" if "seed" in data and data["seed"].nunique() > 1 else "")]
    runs, panels = _ordered(data["run"]), []
    for statistic, wording in REDUNDANCY.items():
        part = data[data["metric"] == statistic]
        if part.empty:
            continue
        notes.append(f"{statistic}: {wording}")
        top = float(np.nanmax(_numeric(part["value"]))) if part["value"].notna().any() else 0.0
        for run in runs:
            grid, layers, iterations = redundancy_cells(part[part["run"] == run])
            panels.append(Panel(f"{run} · {statistic}" if run else statistic, "attack iteration", "layer",
                                kind="heatmap", image=grid, categories=tuple(iterations), rows=tuple(layers),
                                vmax=top or 1.0, cmap="viridis"))
    return _figure(panels, notes, ncols=max(1, len(runs)), width=5.2, height=4.0)


#: Figure kind → its pure data function (``figures_spgd`` registers the drawing of each).
SPGD_PANELS: dict[str, Callable[[pd.DataFrame], FigureData]] = {"accuracy_vs_cost": accuracy_vs_cost_panels,
                                                                 "spgd_ablation": spgd_ablation_panels,
                                                                 "redundancy_heatmap": redundancy_heatmap_panels}
