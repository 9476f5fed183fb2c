"""Figures from tidy frames: each kind's pure data function (``panels.PANELS``) says what is shown, ``draw``
draws exactly that. Registered in ``FIGURES`` as ``fn(df, out) -> Path``.

Figures are drawn with seaborn (lines, bars, heatmaps; ``errorbar=None``: the statistics are already in the
``FigureData``) on a bare ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no display needed),
so they are safe in Snakemake jobs and leave nothing open. No hidden statistics: every point, band and
bar comes from the ``FigureData`` (bands only from seeds or given intervals, named in the legend). A new figure
is one pure function returning ``FigureData`` plus one ``FIGURES.register`` line.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from snnrobust.registry import Registry
from snnrobust.report.panels import GRAD_METRICS, PANELS, PAPER, FigureData, Panel, Series  # noqa: F401 (re-export)

FigureFn = Callable[[pd.DataFrame, "str | os.PathLike"], Path]
FIGURES: Registry[FigureFn] = Registry("figure")


@contextlib.contextmanager
def _grid(out: str | os.PathLike, nrows: int, ncols: int, width: float, height: float) -> Iterator[tuple]:
    """Yield ``(fig, axes)`` with an ``nrows``×``ncols`` array of panels; on success save a PNG at ``out``
    (parents created)."""
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        yield fig, axes
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=150)


def _colours(data: FigureData) -> dict[str, str]:
    """One colour per curve name across all panels (a paper series takes its curve's colour)."""
    names = dict.fromkeys(_base(s) for p in data.panels for s in p.series)
    names.pop("", None)
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


def _base(series: Series) -> str:
    """The curve a series belongs to: its label, without the 'paper · ' prefix of printed values."""
    if not series.paper:
        return series.label
    return "" if series.label == PAPER else series.label.removeprefix(f"{PAPER} · ")


def _positions(panel: Panel, x: pd.Series) -> np.ndarray:
    """Where x values sit on the axis: their index in ``categories`` for a categorical axis, else themselves."""
    if panel.categories is None:
        return x.to_numpy(dtype=float)
    where = {c: i for i, c in enumerate(panel.categories)}
    return np.array([where.get(v, np.nan) for v in x], dtype=float)


def _hollow(ax, xs, s: Series, colour: str) -> None:
    """Printed values: hollow markers, no line."""
    ax.plot(xs, s.points["y"], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
            markeredgewidth=1.5, color=colour, label=s.legend, zorder=5)


def _lines(ax, twin, panel: Panel, colours: dict) -> None:
    """Line or step series, each with its band (fill between low and high) where it has one."""
    step = panel.kind == "step"
    for s in panel.series:
        target = twin if s.axis == "right" and twin is not None else ax
        colour = colours.get(_base(s), "black")
        xs = _positions(panel, s.points["x"])
        if s.paper:
            _hollow(target, xs, s, colour)
            continue
        sns.lineplot(x=xs, y=s.points["y"].to_numpy(dtype=float), ax=target, errorbar=None, sort=False,
                     marker=None if step else "o", markersize=4, color=colour, label=s.legend,
                     drawstyle="steps-mid" if step else "default", linestyle="--" if s.axis == "right" else "-")
        if s.band:
            target.fill_between(xs, s.points["low"], s.points["high"], color=colour, alpha=0.2, linewidth=0,
                                step="mid" if step else None)


def _bars(ax, panel: Panel, colours: dict) -> None:
    """Grouped bars per category (seaborn, one hue per series; error bars only from a series' band), printed
    values as hollow markers."""
    ours = [s for s in panel.series if not s.paper]
    frame = pd.concat([s.points.assign(series=s.legend) for s in ours], ignore_index=True) if ours else None
    if frame is not None and not frame.empty:
        order = list(panel.categories) if panel.categories is not None else list(dict.fromkeys(frame["x"]))
        sns.barplot(data=frame, x="x", y="y", hue="series", order=order, hue_order=[s.legend for s in ours],
                    palette={s.legend: colours.get(_base(s), "C0") for s in ours}, errorbar=None, ax=ax)
        for s, bars in zip(ours, ax.containers):
            if s.band:  # bars of a hue level come in category order
                pts = s.points.assign(_at=_positions(panel, s.points["x"])).sort_values("_at")
                centres = [b.get_x() + b.get_width() / 2 for b in bars if not np.isnan(b.get_height())]
                ax.errorbar(centres[:len(pts)], pts["y"], yerr=[pts["y"] - pts["low"], pts["high"] - pts["y"]],
                            fmt="none", ecolor="black", capsize=3)
    for s in panel.series:
        if s.paper:
            _hollow(ax, _positions(panel, s.points["x"]), s, "black")


def _image(ax, panel: Panel) -> None:
    """One heatmap or input image, already scaled to [0, 1]."""
    if panel.image is not None:
        sns.heatmap(panel.image, cmap=panel.cmap, vmin=0, vmax=1, cbar=False, square=True, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(panel.title, fontsize="small")
    ax.set_ylabel(panel.ylabel)


def _heatmap(ax, panel: Panel) -> None:
    """One labelled heatmap (rows × categories) with a colour bar from 0 to ``panel.vmax``."""
    if panel.image is not None:
        sns.heatmap(panel.image, cmap=panel.cmap, vmin=0, vmax=panel.vmax, cbar=True, ax=ax,
                    xticklabels=list(panel.categories or []) or "auto", yticklabels=list(panel.rows or []) or "auto")
    ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
    ax.tick_params(axis="y", labelsize="x-small")


def _axes_style(ax, twin, panel: Panel) -> None:
    """Titles, labels, scales, limits, category ticks and the legend (of both y axes) of one panel."""
    ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
    if panel.xscale == "symlog":
        ax.set_xscale("symlog", linthresh=panel.linthresh or 1.0)
        ticks = sorted({float(x) for s in panel.series for x in s.points["x"]})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=45)
    elif panel.xscale != "linear":
        ax.set_xscale(panel.xscale)
    if panel.yscale != "linear":
        ax.set_yscale(panel.yscale)
    if panel.ylim is not None:  # a log axis keeps its own lower limit (0 has no place on it)
        ax.set_ylim(*((None, panel.ylim[1]) if panel.yscale == "log" and panel.ylim[0] <= 0 else panel.ylim))
    if panel.categories is not None:
        ax.set_xticks(range(len(panel.categories)),
                      [f"{c:g}" if isinstance(c, float) else str(c) for c in panel.categories],
                      rotation=30 if panel.kind == "bar" else 0)
    if twin is not None:
        twin.set_ylabel(panel.right_label)
        if twin.get_legend() is not None:  # seaborn's own legend of the right axis: one legend holds both
            twin.get_legend().remove()
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    lone_bar = panel.kind == "bar" and len(handles) == 1 and not panel.series[0].band  # needs no legend
    if handles and not lone_bar:
        ax.legend(handles, labels, fontsize="small")
    elif ax.get_legend() is not None:  # seaborn's own legend of a lone bar series
        ax.get_legend().remove()


def _draw_panel(ax, panel: Panel, colours: dict) -> None:
    """Draw one panel as its kind says."""
    if panel.kind == "image":
        _image(ax, panel)
        return
    if panel.kind == "heatmap":
        _heatmap(ax, panel)
        return
    twin = ax.twinx() if any(s.axis == "right" for s in panel.series) else None
    if panel.kind == "bar":
        _bars(ax, panel, colours)
    else:
        _lines(ax, twin, panel, colours)
    _axes_style(ax, twin, panel)


def draw(data: FigureData, out: str | os.PathLike) -> Path:
    """Draw ``data`` (its panels row by row, its notes under them) as a PNG at ``out``."""
    ncols = max(1, data.ncols)
    nrows = max(1, math.ceil(len(data.panels) / ncols))
    colours = _colours(data)
    with _grid(out, nrows, ncols, data.width, data.height) as (fig, axes):
        for ax, panel in zip(axes.flat, data.panels):
            _draw_panel(ax, panel, colours)
        for ax in list(axes.flat)[len(data.panels):]:
            ax.set_visible(False)
        if data.notes:
            fig.supxlabel("\n".join(data.notes), fontsize="x-small", x=0.01, ha="left")
    return Path(out)


def _drawer(kind: str, shape: Callable[[pd.DataFrame], FigureData]) -> FigureFn:
    """The registered figure of a kind: its pure data function, then ``draw``."""
    def figure(df: pd.DataFrame, out: str | os.PathLike) -> Path:
        return draw(shape(df), out)

    figure.__name__, figure.__doc__ = kind, shape.__doc__
    return figure


for _kind, _shape in PANELS.items():
    FIGURES.register(_kind)(_drawer(_kind, _shape))

# The trail paper's figure kinds live in their own module and register here, so FIGURES is complete on import.
from snnrobust.report import figures_trail  # noqa: E402,F401
# So do the Spiking-PGD paper's (accuracy against cost and wall-clock).
from snnrobust.report import figures_spgd  # noqa: E402,F401
