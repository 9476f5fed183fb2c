"""Seaborn figures from tidy frames; one function per figure kind, registered in ``FIGURES``.

Each function takes a tidy DataFrame and an output path and writes a PNG. Figures are drawn on a bare
``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no display needed), so they are safe in
Snakemake jobs and leave nothing open. A new figure is one function plus one ``@FIGURES.register`` line.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry

FigureFn = Callable[[pd.DataFrame, "str | os.PathLike"], Path]
FIGURES: Registry[FigureFn] = Registry("figure")

#: Preferred panel order for gradient statistics; other metrics follow in order of appearance.
GRAD_METRICS = ("l0_fraction", "l1", "l2")


def _require(df: pd.DataFrame, columns: Sequence[str], figure: str) -> None:
    """Fail in one line when the frame is empty or lacks a column the figure needs."""
    missing = [c for c in columns if c not in df]
    if missing or df.empty:
        problem = f"lacks column(s) {missing}" if missing else "is empty"
        raise SnnRobustError(f"figure {figure}: the data {problem}; it needs {list(columns)}")


@contextlib.contextmanager
def _figure(out: str | os.PathLike, ncols: int = 1, width: float = 5.0, height: float = 3.6) -> Iterator[tuple]:
    """Yield ``(fig, axes)`` with ``ncols`` panels; on success save a PNG at ``out`` (parents created)."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    yield fig, axes
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=150)


def _ordered(values: pd.Series, first: Sequence[str] = ()) -> list:
    """Distinct values in order of appearance, with any of ``first`` moved to the front."""
    seen = list(dict.fromkeys(values.dropna()))
    return [v for v in first if v in seen] + [v for v in seen if v not in first]


@FIGURES.register("eps_sweep")
def eps_sweep(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Robust accuracy (%) vs ε (drawn in units of 1/255): columns model, attack, eps (float), value."""
    _require(df, ("model", "attack", "eps", "value"), "eps_sweep")
    data = df.assign(eps255=df["eps"].astype(float) * 255)
    with _figure(out) as (fig, (ax,)):
        sns.lineplot(data=data, x="eps255", y="value", hue="model", style="attack", markers=True, dashes=True,
                     errorbar="sd", ax=ax)
        ax.set(xlabel="ε (×1/255)", ylabel="accuracy under attack (%)", ylim=(0, None))
    return Path(out)


@FIGURES.register("attack_bars")
def attack_bars(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Clean/FGSM/PGD accuracy per model, one panel per attack; paper beside reproduced if ``source`` is given."""
    _require(df, ("model", "attack", "value"), "attack_bars")
    attacks = _ordered(df["attack"], first=("clean",))
    hue = "source" if "source" in df else None
    sources = _ordered(df["source"], first=("paper", "reproduced")) if hue else None
    with _figure(out, ncols=len(attacks), width=3.8) as (fig, axes):
        for ax, attack in zip(axes, attacks):
            sns.barplot(data=df[df["attack"] == attack], x="model", y="value", hue=hue, hue_order=sources,
                        order=_ordered(df["model"]), errorbar="sd", ax=ax, legend=ax is axes[-1])
            ax.set(title=str(attack), xlabel="", ylabel="accuracy (%)" if ax is axes[0] else "", ylim=(0, 100))
            ax.tick_params(axis="x", labelrotation=30)
    return Path(out)


@FIGURES.register("grad_norms")
def grad_norms(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Input-gradient statistics of ∇x f_y per model (L0 fraction, L1, L2 …): columns model, metric, value."""
    _require(df, ("model", "metric", "value"), "grad_norms")
    metrics = _ordered(df["metric"], first=GRAD_METRICS)
    with _figure(out, ncols=len(metrics), width=3.6) as (fig, axes):
        for ax, metric in zip(axes, metrics):
            sns.barplot(data=df[df["metric"] == metric], x="model", y="value", order=_ordered(df["model"]),
                        errorbar="sd", ax=ax)
            ax.set(title=str(metric), xlabel="", ylabel="")
            ax.tick_params(axis="x", labelrotation=30)
    return Path(out)


def _long_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Training metrics as (epoch, model, metric, value): tidy input passes, a wide CSV is melted."""
    if {"metric", "value"} <= set(df.columns):
        return df
    ids = [c for c in ("epoch", "model", "split") if c in df]
    numeric = [c for c in df.select_dtypes("number").columns if c not in ids]
    return df.melt(id_vars=ids, value_vars=numeric, var_name="metric", value_name="value")


@FIGURES.register("training_curves")
def training_curves(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Epoch vs each training metric (loss, acc, …) per model, one panel per metric; tidy or wide metrics CSV."""
    _require(df, ("epoch", "model"), "training_curves")
    data = _long_metrics(df)
    metrics = _ordered(data["metric"])
    if not metrics:
        raise SnnRobustError("figure training_curves: the data has no numeric metric column besides epoch")
    style = "split" if "split" in data else None
    with _figure(out, ncols=len(metrics), width=4.2) as (fig, axes):
        for ax, metric in zip(axes, metrics):
            sns.lineplot(data=data[data["metric"] == metric], x="epoch", y="value", hue="model", style=style,
                         errorbar="sd", ax=ax, legend=ax is axes[-1])
            ax.set(title=str(metric), xlabel="epoch", ylabel="")
    return Path(out)
