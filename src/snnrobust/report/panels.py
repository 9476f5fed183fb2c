"""What each figure shows, as data: one pure function per figure kind turns a tidy frame into ``FigureData``.

A figure is panels; a panel is series; a series is points ``(x, y[, low, high])``. The drawing in ``figures.py``
draws exactly these, so what a figure claims is tested here, on frames, without looking at pixels.

All kinds aggregate through :func:`aggregate`, which makes every averaging explicit:

* the same measurement read from several files (the clean accuracy of a model recorded in every attack file of
  it) counts once;
* rows from different evaluation subsets (``n_eval`` / ``n`` / ``value_n``) are never averaged: each point keeps
  its largest subset, and the figure's notes say what was left out;
* seeds are averaged, and a band (min–max over seeds) appears only where a point has several; otherwise a band
  comes only from given ``low``/``high`` interval columns;
* rows with ``source == "paper"`` are printed values: their own series, drawn as hollow markers labelled "paper".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from snnrobust.errors import SnnRobustError

#: Columns that give the size of the evaluation subset a row was measured on (first present wins).
SUBSET_COLUMNS = ("n_eval", "n", "value_n")
#: Preferred panel order for gradient statistics; other metrics follow in order of appearance.
GRAD_METRICS = ("l0_fraction", "l1", "l2")
#: Columns that tell runs apart; a series is named by those among them that vary.
RUN_COLUMNS = ("dataset", "model", "method")
PAPER = "paper"
EPS_LABEL = "ε (×1/255)"


@dataclass(frozen=True)
class Series:
    """One legend entry: points (columns x, y and, with a band, low/high) and how they are drawn."""

    label: str
    points: pd.DataFrame
    band: str = ""  # what low/high span, e.g. "min–max over 2 seeds"; "" when there is no band
    paper: bool = False  # values printed in the paper: hollow markers
    axis: str = "left"  # "right": a twin y axis (the ℓ2 norm beside the ℓ1 norm)

    @property
    def legend(self) -> str:
        """The legend text: the label, and what the band spans where there is one."""
        return f"{self.label} (band: {self.band})" if self.band else self.label


@dataclass(frozen=True)
class Panel:
    """One axes: its series, labels and scales. ``categories`` makes x categorical (drawn evenly spaced, in this
    order); an ``image`` panel shows one array scaled to [0, 1] instead of series, a ``heatmap`` panel one labelled
array (rows × categories) with a colour bar from 0 to ``vmax``."""

    title: str
    xlabel: str = ""
    ylabel: str = ""
    series: tuple[Series, ...] = ()
    kind: str = "line"  # line | step | bar | image | heatmap
    categories: tuple | None = None
    xscale: str = "linear"
    linthresh: float | None = None  # symlog: the linear range around 0
    yscale: str = "linear"
    ylim: tuple | None = None
    right_label: str = ""
    image: np.ndarray | None = None
    cmap: str = "magma"
    rows: tuple | None = None  # heatmap: the row labels (``categories`` are its column labels)
    vmax: float = 1.0  # heatmap: the top of the colour scale (0 at the bottom)

    def get(self, label: str) -> Series:
        """The series with this label (KeyError naming the labels there are)."""
        for s in self.series:
            if s.label == label:
                return s
        raise KeyError(f"no series {label!r} in panel {self.title!r}; it has {[s.label for s in self.series]}")

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.series]


@dataclass(frozen=True)
class FigureData:
    """A figure's panels in reading order (``ncols`` per row), the size of one panel, and notes on what the
    aggregation left out or averaged (drawn under the panels)."""

    panels: tuple[Panel, ...]
    ncols: int = 1
    width: float = 4.8
    height: float = 3.6
    notes: tuple[str, ...] = field(default=())

    def panel(self, title: str) -> Panel:
        """The panel with this title (KeyError naming the titles there are)."""
        for p in self.panels:
            if p.title == title:
                return p
        raise KeyError(f"no panel {title!r}; panels: {[p.title for p in self.panels]}")

    @property
    def titles(self) -> list[str]:
        return [p.title for p in self.panels]


# --- small frame helpers ------------------------------------------------------------------------------------

def require(df: pd.DataFrame, columns: Sequence[str], figure: str) -> None:
    """Fail in one line when the frame is empty or lacks a column the figure needs."""
    missing = [c for c in columns if c not in df]
    if missing or df.empty:
        problem = f"lacks column(s) {missing}" if missing else "is empty"
        raise SnnRobustError(f"figure {figure}: the data {problem}; it needs {list(columns)}")


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _ordered(values: pd.Series, first: Sequence = ()) -> list:
    """Distinct values in order of appearance, with any of ``first`` moved to the front."""
    seen = list(dict.fromkeys(values.dropna()))
    return [v for v in first if v in seen] + [v for v in seen if v not in first]


def _metric(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    """The rows of the given metrics (all rows when the frame has no ``metric`` column)."""
    return df[df["metric"].isin(names)] if "metric" in df else df


def _varying(df: pd.DataFrame, candidates: Sequence[str] = RUN_COLUMNS) -> list[str]:
    """The candidate columns whose values vary in the frame (series are told apart by them); the first present
    candidate when none varies, so a series always has a name."""
    present = [c for c in candidates if c in df]
    varying = [c for c in present if df[c].nunique(dropna=True) > 1]
    return varying or present[:1]


def _name(values: Sequence) -> str:
    """' · '-joined text of a series' key values (missing and empty ones skipped)."""
    return " · ".join(str(v) for v in values if not (v is None or v == "" or (isinstance(v, float) and math.isnan(v))))


def _split(df: pd.DataFrame, column: str | None) -> list[tuple[object, pd.DataFrame]]:
    """(value, rows) per distinct value of ``column`` in order of appearance; one group when it does not vary."""
    if column is None or column not in df or df[column].nunique(dropna=True) < 2:
        return [(None, df)]
    return [(v, df[df[column] == v]) for v in _ordered(df[column])]


def _eps255(eps: pd.Series) -> pd.Series:
    """ε in units of 1/255, rounded so 8/255 read from different files is one x value."""
    return (_numeric(eps).fillna(0.0) * 255).round(6)


def eps_text(eps: float) -> str:
    """'8/255' for ε in [0, 1] pixel units (shortest form of the multiple of 1/255)."""
    return f"{round(float(eps) * 255, 2):g}/255"


# --- the shared aggregation -----------------------------------------------------------------------------------

def _subset_sizes(df: pd.DataFrame) -> pd.Series:
    """The evaluation-subset size of each row (0 where the frame does not say)."""
    column = next((c for c in SUBSET_COLUMNS if c in df), None)
    return _numeric(df[column]).fillna(0.0) if column else pd.Series(0.0, index=df.index)


def aggregate(df: pd.DataFrame, keys: Sequence[str], x: str | None, what: str = "") -> tuple[pd.DataFrame, list[str]]:
    """One point per (``keys``, ``x``) from tidy rows with a ``value``: columns keys…, x, y, low, high, seeds.

    Rows of one (point, seed, subset) are one measurement read from several files: counted once. Each point keeps
    only its largest evaluation subset (the others are named in the notes). Seeds are then averaged, with their
    min–max as low/high; a single seed keeps given ``low``/``high`` columns, else has no band."""
    point = [*keys, *([x] if x else [])] or ["_all"]
    data = df.assign(_all="", y=_numeric(df["value"]), _seed=df["seed"].astype(str) if "seed" in df else "",
                     _subset=_subset_sizes(df),
                     **{c: _numeric(df[c]) if c in df else np.nan for c in ("low", "high")})
    data = data.dropna(subset=["y"])
    if data.empty:
        return pd.DataFrame(columns=[*point, "y", "low", "high", "seeds"]), []
    once = data.groupby([*point, "_seed", "_subset"], dropna=False, sort=False).agg(
        y=("y", "mean"), low=("low", "first"), high=("high", "first"), rows=("y", "size"),
        spread=("y", lambda v: v.max() - v.min())).reset_index()
    notes = []
    differing = once[once["spread"] > 1e-9]
    if len(differing):
        notes.append(f"{what}: {len(differing)} point(s) average rows that disagree within one seed and subset")
    largest = once.groupby(point, dropna=False, sort=False)["_subset"].transform("max")
    dropped = once[once["_subset"] < largest]
    kept = once[once["_subset"] == largest]
    if len(dropped):
        sizes = ", ".join(f"{n:g}" for n in sorted(set(dropped["_subset"])))
        kept_sizes = ", ".join(f"{n:g}" for n in sorted(set(kept["_subset"])))
        notes.append(f"{what}: {len(dropped)} measurement(s) on a smaller evaluation subset (n = {sizes}) left out; "
                     f"each point keeps its largest (n = {kept_sizes})")
    points = kept.groupby(point, dropna=False, sort=False).agg(
        y=("y", "mean"), seed_low=("y", "min"), seed_high=("y", "max"), seeds=("_seed", "nunique"),
        low=("low", "first"), high=("high", "first"), subset=("_subset", "first")).reset_index()
    several = points["seeds"] > 1
    points["low"] = points["seed_low"].where(several, points["low"])
    points["high"] = points["seed_high"].where(several, points["high"])
    return points.drop(columns=["seed_low", "seed_high"]), notes


def _band(points: pd.DataFrame) -> str:
    """What a series' low/high span: seeds where a point has several, a given interval, or nothing."""
    seeds = int(points["seeds"].max()) if len(points) else 0
    if seeds > 1:
        return f"min–max over {seeds} seeds"
    return "interval (low–high)" if points[["low", "high"]].notna().any().any() else ""


def _series_of(points: pd.DataFrame, keys: Sequence[str], x: str | None, label: Callable[[tuple], str],
               **style) -> list[Series]:
    """One Series per key combination of aggregated points (sorted by a numeric x)."""
    groups = points.groupby(list(keys), dropna=False, sort=False) if keys else [((), points)]
    out = []
    for key, rows in groups:
        key = key if isinstance(key, tuple) else (key,)
        pts = rows.rename(columns={x: "x"}) if x else rows.assign(x=0)
        if pd.api.types.is_numeric_dtype(pts["x"]):
            pts = pts.sort_values("x", kind="stable")
        band = _band(pts)
        cols = ["x", "y", "low", "high"] if band else ["x", "y"]
        out.append(Series(label(key), pts[cols].reset_index(drop=True), band, **style))
    return out


def curves(df: pd.DataFrame, keys: Sequence[str], x: str | None, what: str = "",
           label: Callable[[tuple], str] = _name, **style) -> tuple[list[Series], list[str]]:
    """The series of a panel: reproduced rows aggregated per (keys, x), then the paper's printed rows
    (``source == "paper"``) as hollow-marker series labelled "paper"; series without points are absent."""
    printed = df["source"].astype(str) == PAPER if "source" in df else pd.Series(False, index=df.index)
    ours, notes = aggregate(df[~printed], keys, x, what)
    theirs, _ = aggregate(df[printed], keys, x, what)
    series = _series_of(ours, keys, x, label, **style)
    series += _series_of(theirs, keys, x, lambda k: _name((PAPER, label(k) if keys else "")), paper=True, **style)
    return [s for s in series if len(s.points)], notes


def _figure(panels: Sequence[Panel], notes: Sequence[str], ncols: int | None = None, **size) -> FigureData:
    """FigureData with at most three panels a row unless ``ncols`` is given, and the distinct notes."""
    ncols = ncols or max(1, min(len(panels), 3))
    return FigureData(tuple(panels), ncols, notes=tuple(dict.fromkeys(n for n in notes if n)), **size)


# --- one pure function per figure kind ----------------------------------------------------------------------

def eps_sweep_panels(df: pd.DataFrame) -> FigureData:
    """Accuracy (%) under attack vs ε (×1/255): one panel per attack swept over several ε (per dataset where
    there are several; single-ε attacks are left to the tables), one curve per run (model, method, threat)."""
    require(df, ("model", "attack", "eps", "value"), "eps_sweep")
    data = _metric(df, "accuracy")
    data = data[data["attack"].astype(str) != "clean"].assign(eps255=lambda d: _eps255(d["eps"]))
    if data.empty:
        raise SnnRobustError("figure eps_sweep: the data has no accuracy rows under an attack")
    widths = data.groupby("attack", sort=False)["eps255"].nunique()
    swept = [a for a in _ordered(data["attack"]) if widths[a] > 1] or _ordered(data["attack"])
    notes = [f"attacks run at one ε only (see the tables): {', '.join(map(str, widths.index.difference(swept)))}"
             ] if len(swept) < len(widths) else []
    who = _varying(data, (*RUN_COLUMNS[1:], "threat"))
    panels = []
    for dataset, rows in _split(data[data["attack"].isin(swept)], "dataset"):
        for attack in _ordered(rows["attack"]):
            title = _name((dataset, attack))
            series, found = curves(rows[rows["attack"] == attack], who, "eps255", title)
            notes += found
            panels.append(Panel(title, EPS_LABEL, "accuracy under attack (%)", tuple(series), ylim=(0, 100)))
    return _figure(panels, notes)


def attack_bars_panels(df: pd.DataFrame) -> FigureData:
    """Accuracy (%) per model as bars, one panel per attack (clean first); the paper's values (``source``
    paper) as hollow markers on the reproduced bars."""
    require(df, ("model", "attack", "value"), "attack_bars")
    data = df.assign(model=df["model"].astype(str))
    models = tuple(_ordered(data["model"]))
    panels, notes = [], []
    for attack in _ordered(data["attack"], first=("clean",)):
        series, found = curves(data[data["attack"] == attack], [], "model", str(attack), label=lambda k: "reproduced")
        notes += found
        panels.append(Panel(str(attack), "", "accuracy (%)", tuple(series), kind="bar", categories=models,
                            ylim=(0, 100)))
    return _figure(panels, notes, ncols=len(panels), width=3.8)


def grad_norms_panels(df: pd.DataFrame) -> FigureData:
    """Input-gradient statistics of ∇x f_y per run (L0 fraction, L1, L2 …) as bars, one panel per statistic."""
    require(df, ("model", "metric", "value"), "grad_norms")
    who = _varying(df)
    data = df.assign(run=df[who].apply(lambda r: _name(tuple(r)), axis=1))
    runs = tuple(_ordered(data["run"]))
    panels, notes = [], []
    for metric in _ordered(data["metric"], first=GRAD_METRICS):
        series, found = curves(data[data["metric"] == metric], [], "run", str(metric), label=lambda k: "reproduced")
        notes += found
        panels.append(Panel(str(metric), "", "", tuple(series), kind="bar", categories=runs))
    return _figure(panels, notes, ncols=len(panels), width=3.6)


def _long_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Training metrics as (epoch, run…, metric, value): tidy input passes, a wide CSV is melted."""
    if {"metric", "value"} <= set(df.columns):
        return df
    ids = [c for c in ("epoch", *RUN_COLUMNS, "seed", "split") if c in df]
    numeric = [c for c in df.select_dtypes("number").columns if c not in ids]
    return df.melt(id_vars=ids, value_vars=numeric, var_name="metric", value_name="value")


def training_curves_panels(df: pd.DataFrame) -> FigureData:
    """Epoch vs each training metric (loss, acc, …), one panel per metric, one curve per run (and split)."""
    require(df, ("epoch", "model"), "training_curves")
    data = _long_metrics(df)
    metrics = _ordered(data["metric"])
    if not metrics:
        raise SnnRobustError("figure training_curves: the data has no numeric metric column besides epoch")
    keys = [*_varying(data), *(["split"] if "split" in data else [])]
    data = data.assign(epoch=_numeric(data["epoch"]))
    panels, notes = [], []
    for metric in metrics:
        series, found = curves(data[data["metric"] == metric], keys, "epoch", str(metric))
        notes += found
        panels.append(Panel(str(metric), "epoch", "", tuple(series)))
    return _figure(panels, notes, ncols=len(panels), width=4.2)


def _far_apart(series: Sequence[Series], ratio: float = 2.5) -> bool:
    """Whether the series' largest x differ by more than ``ratio`` (one linear axis would squash the shorter)."""
    ends = [float(s.points["x"].max()) for s in series if (s.points["x"] > 0).any()]
    return len(ends) > 1 and max(ends) > ratio * min(ends)


def _both_curves(attacked: pd.DataFrame, who: list[str], attacks: list) -> tuple[pd.DataFrame, list[str]]:
    """The runs measured under every attack of the figure (Fig. 1 compares noise and FGSM on one model); the
    others are left out and named (all stay when no run has every attack)."""
    names = attacked[who].apply(lambda r: _name(tuple(r)), axis=1)
    complete = attacked.groupby(names, sort=False)["attack"].nunique() == len(attacks)
    if not complete.any() or complete.all():
        return attacked, []
    left = ", ".join(complete.index[~complete])
    return attacked[names.isin(complete.index[complete])], [f"runs without every attack left out: {left}"]


def _run_major(rows: pd.DataFrame, who: list[str], attacks: list) -> pd.DataFrame:
    """Rows ordered by run (as they appear), then by attack (noise before FGSM): the legend pairs a run's curves."""
    names = rows[who].apply(lambda r: _name(tuple(r)), axis=1)
    run = names.map({n: i for i, n in enumerate(_ordered(names))})
    attack = rows["attack"].map({a: i for i, a in enumerate(attacks)})
    return rows.assign(_run=run, _attack=attack).sort_values(["_run", "_attack"], kind="stable")


def random_vs_fgsm_panels(df: pd.DataFrame) -> FigureData:
    """SR Fig. 1: accuracy (%) vs ε under uniform random noise and under FGSM, one panel per dataset as the paper
    has (CIFAR-10, CIFAR-100). Each curve has the ε its attack was run at and starts at its run's clean accuracy
    (ε = 0). The paper shows noise at a large scale beside FGSM at a small one (Obs. 1): where one curve's ε reach
    far beyond the other's (noise at 0.1 = 25.5/255, FGSM ≤ 8/255) the shared ε axis is symlog (linear near 0), so
    neither is squashed. Columns: model, attack, eps, value (metric, method, seed, n_eval optional)."""
    require(df, ("model", "attack", "eps", "value"), "random_vs_fgsm")
    data = _metric(df, "accuracy")
    is_clean = data["attack"].astype(str) == "clean"
    attacked, clean = data[~is_clean], data[is_clean]
    if attacked.empty:
        raise SnnRobustError("figure random_vs_fgsm: the data has no accuracy rows under an attack")
    who = _varying(data, RUN_COLUMNS[1:])
    attacks = _ordered(attacked["attack"], first=("random", "fgsm", "FGSM"))
    attacked, notes = _both_curves(attacked, who, attacks)
    runs = attacked[who].drop_duplicates()
    clean = clean.merge(runs, on=who) if len(runs) and len(clean) else clean.iloc[0:0]
    rows = pd.concat([attacked, *(clean.assign(attack=a, eps=0.0) for a in attacks)], ignore_index=True)
    rows = _run_major(rows.assign(eps255=_eps255(rows["eps"])), who, attacks)
    keys = [k for k in who if rows[k].nunique() > 1] + ["attack"]  # "random", "FGSM" for a single run
    panels = []
    for dataset, part in _split(rows, "dataset"):
        if not (part["eps255"] > 0).any():  # only clean points: the dataset was never attacked for this figure
            notes.append(f"{dataset}: no noise or FGSM rows, no panel")
            continue
        title = str(dataset) if dataset is not None else "random noise vs FGSM"
        series, found = curves(part, keys, "eps255", title)
        notes += found
        far = _far_apart(series)
        small = part.loc[part["eps255"] > 0, "eps255"]
        panels.append(Panel(title, EPS_LABEL + (" (symlog)" if far else ""), "accuracy (%)", tuple(series),
                            xscale="symlog" if far else "linear",
                            linthresh=float(small.min()) if far and len(small) else None, ylim=(0, 100)))
    return _figure(panels, notes, width=5.5)


def _widest_sweep(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per dataset, the models measured at the most λ (the sweep the paper draws); models at fewer λ (an ANN
    twin at λ = 0) are left out and named."""
    if "model" not in data:
        return data, []
    keep, notes = [], []
    for _, rows in _split(data, "dataset"):
        width = rows.groupby("model", sort=False)["lam"].nunique()
        widest = width[width == width.max()].index
        keep.append(rows[rows["model"].isin(widest)])
        if len(widest) < len(width):
            notes.append(f"models at fewer λ left out: {', '.join(map(str, width.index.difference(widest)))}")
    return pd.concat(keep), notes


def _keyed(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row's values in ``columns`` as one tuple of text (to look rows of one frame up in another)."""
    return pd.Series(list(map(tuple, df[columns].astype(str).to_numpy())), index=df.index, dtype=object)


def _attack_curve(attacked: pd.DataFrame) -> pd.Series:
    """The curve name of attacked rows: the attack, with its ε where it has one ('PGD ε=8/255')."""
    eps = _numeric(attacked["eps"]).fillna(0.0) if "eps" in attacked else pd.Series(0.0, index=attacked.index)
    return attacked["attack"].astype(str) + eps.map(lambda e: f" ε={eps_text(e)}" if e > 0 else "")


def _clean_curve(acc: pd.DataFrame, trained: pd.DataFrame, who: list[str]) -> tuple[pd.DataFrame, str]:
    """The clean accuracy per λ from the evaluation subset (attack files' clean rows); the training ``test_acc``
    only at a λ without such a row. Returns the rows and the label, which names any λ that fell back."""
    clean = acc[acc["attack"].astype(str) == "clean"]
    fallback = trained[~_keyed(trained, [*who, "lam"]).isin(set(_keyed(clean, [*who, "lam"])))]
    label = "clean"
    if len(fallback):
        lams = ", ".join(f"{v:g}" for v in sorted(set(fallback["lam"])))
        label = f"clean (λ = {lams}: training test_acc)" if len(clean) else "clean (training test_acc)"
    return pd.concat([clean, fallback]).assign(curve=label), label


def _accuracy_panel(title: str, rows: pd.DataFrame, who: list[str], lams: tuple) -> tuple[Panel, list[str]]:
    """Fig. 3(a): one clean curve and one curve per (attack, ε) against λ."""
    acc = _metric(rows, "accuracy")
    acc = acc.assign(attack=acc["attack"] if "attack" in acc else "accuracy")
    clean, clean_label = _clean_curve(acc, _metric(rows, "test_acc"), who)
    attacked = acc[acc["attack"].astype(str) != "clean"]
    attacked = attacked.assign(curve=_attack_curve(attacked))
    keys = [k for k in who if rows[k].nunique() > 1] + ["curve"]
    series, notes = curves(pd.concat([clean, attacked], ignore_index=True), keys, "lam", title)
    first = [s for s in series if s.label.endswith(clean_label)]
    series = first + [s for s in series if s not in first]
    return Panel(title, "λ", "accuracy (%)", tuple(series), categories=lams, ylim=(0, 100)), notes


def _norm_panel(title: str, rows: pd.DataFrame, who: list[str], lams: tuple) -> tuple[Panel, list[str]]:
    """Fig. 3(b): the mean ‖∇x f_y‖₁ (left axis) and ‖∇x f_y‖₂ (right axis) against λ."""
    keys = [k for k in who if rows[k].nunique() > 1]
    series, notes = [], []
    for metric, name, axis in (("l1", "‖∇x f_y‖₁", "left"), ("l2", "‖∇x f_y‖₂", "right")):
        found, more = curves(_metric(rows, metric), keys, "lam", f"{title} {metric}",
                             label=lambda k, n=name: _name((*k, n)), axis=axis)
        series, notes = series + found, notes + more
    return Panel(title, "λ", "mean ‖∇x f_y‖₁", tuple(series), categories=lams,
                 right_label="mean ‖∇x f_y‖₂"), notes


def lambda_sweep_panels(df: pd.DataFrame) -> FigureData:
    """SR Fig. 3/6 against the SR coefficient λ (column ``lam``), one row per dataset: left, one clean curve (the
    evaluation subset's clean accuracy from the attack files; the training ``test_acc`` only where a λ has none,
    labelled so) and one curve per (attack, ε); right, the mean ‖∇x f_y‖₁ (left axis) and ‖∇x f_y‖₂ (right axis).
    Columns: lam, metric (accuracy, test_acc, l1, l2), value; attack and eps for accuracy."""
    require(df, ("lam", "metric", "value"), "lambda_sweep")
    data = df.assign(lam=_numeric(df["lam"])).dropna(subset=["lam"])
    data = _metric(data, "accuracy", "test_acc", "l1", "l2")
    if data.empty:
        raise SnnRobustError("figure lambda_sweep: the data has no accuracy, test_acc, l1 or l2 rows with a λ")
    data, notes = _widest_sweep(data)
    who = [c for c in ("model",) if c in data]
    panels = []
    widest = data.groupby("dataset")["lam"].nunique().max() if "dataset" in data else None
    for dataset, rows in _split(data, "dataset"):
        lams = tuple(sorted(set(rows["lam"])))
        if widest is not None and len(lams) < widest:  # a λ sweep is the dataset run at the most λ (Fig. 3 / Fig. 6)
            notes.append(f"{dataset}: {len(lams)} λ values only (no sweep), no panel")
            continue
        prefix = f"{dataset} · " if dataset is not None else ""
        for build, name in ((_accuracy_panel, "accuracy"), (_norm_panel, "gradient norms")):
            panel, found = build(prefix + name, rows, who, lams)
            panels.append(panel)
            notes += found
    return _figure(panels, notes, ncols=2)


def grad_hist_panels(df: pd.DataFrame) -> FigureData:
    """SR Fig. 4: density of the (per-sample max-scaled) components of ∇x f_y, one panel per dataset, one step
    line per run (vanilla, AT, SR* …) with its fraction of exact zeros in the legend; log y where the densities
    span more than two decades. Columns: model, metric (hist, zero_fraction), bin_left, bin_right, value."""
    require(df, ("model", "metric", "bin_left", "bin_right", "value"), "grad_hist")
    hist = _metric(df, "hist")
    if hist.empty:
        raise SnnRobustError("figure grad_hist: the data has no hist rows")
    who = _varying(hist, RUN_COLUMNS[1:])
    hist = hist.assign(center=((_numeric(hist["bin_left"]) + _numeric(hist["bin_right"])) / 2).round(9))
    zeros, notes = aggregate(_metric(df, "zero_fraction"), [c for c in ("dataset", *who) if c in df], None, "zeros")
    panels = []
    for dataset, rows in _split(hist, "dataset"):
        here = zeros if dataset is None else zeros[zeros["dataset"] == dataset]
        zero_of = {_name(tuple(r[who])): r["y"] for _, r in here.iterrows()}

        def label(key: tuple) -> str:
            name = _name(key)
            return f"{name} (zeros {100 * zero_of[name]:.1f}%)" if name in zero_of else name

        title = str(dataset) if dataset is not None else "∇x f_y components"
        series, found = curves(rows, who, "center", title, label=label)
        notes += found
        positive = pd.concat([s.points["y"] for s in series]) if series else pd.Series(dtype=float)
        positive = positive[positive > 0]
        log = not positive.empty and positive.max() > 100 * positive.min()
        panels.append(Panel(title, "component of ∇x f_y (scaled)", "density", tuple(series), kind="step",
                            yscale="log" if log else "linear"))
    return _figure(panels, notes, width=5.5)


def _one_seed(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the lowest seed: a heatmap is one model's gradient, not a mean over seeds."""
    if "seed" not in df or df["seed"].nunique() < 2:
        return df, []
    first = sorted(df["seed"].dropna().unique())[0]
    return df[df["seed"] == first], [f"heatmaps of seed {first} (one model each; seeds are not averaged)"]


def _scaled(rows: pd.DataFrame) -> np.ndarray | None:
    """The (row, col) grid of one sample scaled to its own maximum (None when there are no rows)."""
    if rows.empty:
        return None
    grid = rows.pivot_table(index="row", columns="col", values="value", aggfunc="mean").to_numpy(dtype=float)
    top = np.nanmax(grid)
    return grid / top if top > 0 else grid


def grad_heatmap_panels(df: pd.DataFrame) -> FigureData:
    """SR Fig. 5: a grid of |∇x f_y| heatmaps, the input images (``image`` rows) as the first row, then one row per
    run (vanilla SNN, SR-SNN …), one column per sample, each scaled to its own maximum. Columns: model, metric
    (heatmap, image), sample, row, col, value (label optional, shown in the titles)."""
    require(df, ("model", "metric", "sample", "row", "col", "value"), "grad_heatmap")
    heat, notes = _one_seed(_metric(df, "heatmap"))
    if heat.empty:
        raise SnnRobustError("figure grad_heatmap: the data has no heatmap rows")
    who = _varying(heat)
    heat = heat.assign(run=heat[who].apply(lambda r: _name(tuple(r)), axis=1))
    images, _ = _one_seed(_metric(df, "image"))
    if len(images):  # the inputs are the same for every run: those of the first
        images = images.assign(run=images[who].apply(lambda r: _name(tuple(r)), axis=1))
        images = images[images["run"] == images["run"].iloc[0]].assign(run="image")
    rows = ([("image", images, "gray")] if len(images) else []) + \
        [(r, heat[heat["run"] == r], "magma") for r in _ordered(heat["run"])]
    samples = sorted(heat["sample"].unique())
    labels = heat.groupby("sample")["label"].first() if "label" in heat else {}
    panels = []
    for r, (name, part, cmap) in enumerate(rows):
        for sample in samples:
            label = labels[sample] if sample in labels else None
            title = f"sample {int(sample)}" + ("" if label is None or pd.isna(label) else f" (label {int(label)})")
            panels.append(Panel(title if r == 0 else "", ylabel=str(name) if sample == samples[0] else "",
                                kind="image", image=_scaled(part[part["sample"] == sample]), cmap=cmap))
    return _figure(panels, notes, ncols=len(samples), width=1.8, height=1.8)


#: Figure kind → its pure data function (the drawing in ``figures.py`` registers one figure per entry).
PANELS: dict[str, Callable[[pd.DataFrame], FigureData]] = {
    "eps_sweep": eps_sweep_panels, "attack_bars": attack_bars_panels, "grad_norms": grad_norms_panels,
    "training_curves": training_curves_panels, "random_vs_fgsm": random_vs_fgsm_panels,
    "lambda_sweep": lambda_sweep_panels, "grad_hist": grad_hist_panels, "grad_heatmap": grad_heatmap_panels,
}
