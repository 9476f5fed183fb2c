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
def _grid(out: str | os.PathLike, nrows: int, ncols: int, width: float, height: float) -> Iterator[tuple]:
    """Yield ``(fig, axes)`` with an ``nrows``×``ncols`` array of panels; on success save a PNG at ``out``
    (parents created)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    yield fig, axes
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=150)


@contextlib.contextmanager
def _figure(out: str | os.PathLike, ncols: int = 1, width: float = 5.0, height: float = 3.6) -> Iterator[tuple]:
    """Yield ``(fig, axes)`` with ``ncols`` panels in one row; on success save a PNG at ``out``."""
    with _grid(out, 1, ncols, width, height) as (fig, axes):
        yield fig, axes[0]


def _ordered(values: pd.Series, first: Sequence[str] = ()) -> list:
    """Distinct values in order of appearance, with any of ``first`` moved to the front."""
    seen = list(dict.fromkeys(values.dropna()))
    return [v for v in first if v in seen] + [v for v in seen if v not in first]


def _who(df: pd.DataFrame) -> str:
    """The column that tells curves apart: ``method`` where the frame holds several, else ``model``."""
    return "method" if "method" in df and df["method"].nunique() > 1 else "model"


def _labelled(df: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as text, prefixed with the dataset where the frame holds several (curves never mix them)."""
    label = df[column].astype(str)
    if "dataset" in df and df["dataset"].nunique() > 1:
        label = df["dataset"].astype(str) + " · " + label
    return label


def _metric(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    """The rows of the given metrics (all rows when the frame has no ``metric`` column and a name is given)."""
    return df[df["metric"].isin(names)] if "metric" in df else df


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


# --- the SR paper's figures (Fig. 1, 3/6, 4, 5) ------------------------------------------------------------

@FIGURES.register("random_vs_fgsm")
def random_vs_fgsm(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """SR Fig. 1: accuracy (%) vs ε (×1/255) under uniform random noise and under FGSM, one curve per attack
    (style) and per method, or model (hue); each curve starts at its model's clean accuracy (ε = 0).
    Columns: model, attack, eps, value (and metric, where ``accuracy`` rows are kept; method optional)."""
    _require(df, ("model", "attack", "eps", "value"), "random_vs_fgsm")
    data = _metric(df, "accuracy")
    is_clean = data["attack"].astype(str) == "clean"
    attacked, clean = data[~is_clean], data[is_clean]
    if attacked.empty:
        raise SnnRobustError("figure random_vs_fgsm: the data has no accuracy rows under an attack")
    attacks = _ordered(attacked["attack"], first=("random", "fgsm", "FGSM"))
    curves = pd.concat([attacked, *(clean.assign(attack=a, eps=0.0) for a in attacks)], ignore_index=True)
    who = _who(curves)
    curves = curves.assign(eps255=curves["eps"].astype(float) * 255, series=_labelled(curves, who))
    with _figure(out, width=5.5) as (fig, (ax,)):
        sns.lineplot(data=curves, x="eps255", y="value", hue="series", style="attack", style_order=attacks,
                     markers=True, errorbar="sd", ax=ax)
        ax.set(xlabel="ε (×1/255)", ylabel="accuracy (%)", ylim=(0, 100))
        ax.legend(fontsize="small", title=who)
    return Path(out)


@FIGURES.register("lambda_sweep")
def lambda_sweep(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """SR Fig. 3/6: against the SR coefficient λ (column ``lam``), left the accuracy (%) per attack (clean,
    PGD, …; a training ``test_acc`` row counts as clean on the test set), right the mean ‖∇x f_y‖₁ (left axis)
    and ‖∇x f_y‖₂ (right axis). Columns: lam, metric (accuracy, test_acc, l1, l2), value; attack for accuracy."""
    _require(df, ("lam", "metric", "value"), "lambda_sweep")
    data = df.assign(lam=pd.to_numeric(df["lam"], errors="coerce")).dropna(subset=["lam"])
    acc = _metric(data, "accuracy")
    acc = acc.assign(attack=acc["attack"] if "attack" in acc else "accuracy")
    acc = pd.concat([acc, _metric(data, "test_acc").assign(attack="clean (test set)")], ignore_index=True)
    norms = _metric(data, "l1", "l2")
    if acc.empty and norms.empty:
        raise SnnRobustError("figure lambda_sweep: the data has no accuracy, test_acc, l1 or l2 rows with a λ")
    lams = sorted(data["lam"].unique())
    with _figure(out, ncols=2, width=4.8) as (fig, (left, right)):
        if not acc.empty:
            acc = acc.assign(series=_labelled(acc, "attack"))
            sns.pointplot(data=acc, x="lam", y="value", hue="series", order=lams, errorbar="sd",
                          hue_order=_ordered(acc["series"], first=("clean", "clean (test set)")), ax=left)
            left.legend(fontsize="small", title=None)
        left.set(xlabel="λ", ylabel="accuracy (%)", title="accuracy")
        twin = right.twinx()
        for ax, metric, colour in ((right, "l1", "C0"), (twin, "l2", "C3")):
            rows = norms[norms["metric"] == metric]
            if not rows.empty:
                sns.pointplot(data=rows, x="lam", y="value", order=lams, color=colour, errorbar="sd", ax=ax)
            ax.set_ylabel(f"mean ‖∇x f_y‖{'₁' if metric == 'l1' else '₂'}", color=colour)
        right.set(xlabel="λ", title="gradient norms")
    return Path(out)


@FIGURES.register("grad_hist")
def grad_hist(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """SR Fig. 4: density of the (per-sample max-scaled) components of ∇x f_y, one step line per method
    (vanilla, AT, SR* …) or model, log y where the densities span more than two decades; the fraction of
    exact zeros is printed in the legend. Columns: model, metric (hist, zero_fraction), bin_left, bin_right, value."""
    _require(df, ("model", "metric", "bin_left", "bin_right", "value"), "grad_hist")
    hist = _metric(df, "hist")
    if hist.empty:
        raise SnnRobustError("figure grad_hist: the data has no hist rows")
    who = _who(hist)
    hist = hist.assign(center=(hist["bin_left"].astype(float) + hist["bin_right"].astype(float)) / 2,
                       series=_labelled(hist, who))
    zeros = _metric(df, "zero_fraction")
    zero_of = zeros.assign(series=_labelled(zeros, who)).groupby("series")["value"].mean() if not zeros.empty else {}
    names = {s: f"{s} (zeros {100 * zero_of[s]:.1f}%)" if s in zero_of else s for s in _ordered(hist["series"])}
    hist = hist.assign(series=hist["series"].map(names))
    with _figure(out, width=5.5) as (fig, (ax,)):
        sns.lineplot(data=hist, x="center", y="value", hue="series", drawstyle="steps-mid", errorbar=None, ax=ax)
        positive = hist.loc[hist["value"] > 0, "value"]
        if not positive.empty and positive.max() > 100 * positive.min():
            ax.set_yscale("log")
        ax.set(xlabel="component of ∇x f_y (scaled)", ylabel="density")
        ax.legend(fontsize="small", title=None)
    return Path(out)


@FIGURES.register("grad_heatmap")
def grad_heatmap(df: pd.DataFrame, out: str | os.PathLike) -> Path:
    """SR Fig. 5: a grid of |∇x f_y| heatmaps, one row per method (vanilla, SR …) or model and one column per
    sample, each scaled to its own maximum; the input images (``image`` rows) form the top row when present.
    Columns: model, metric (heatmap, image), sample, row, col, value (label optional, shown in the titles)."""
    _require(df, ("model", "metric", "sample", "row", "col", "value"), "grad_heatmap")
    heat = _metric(df, "heatmap")
    if heat.empty:
        raise SnnRobustError("figure grad_heatmap: the data has no heatmap rows")
    who = _who(heat)
    heat = heat.assign(series=_labelled(heat, who))
    images = _metric(df, "image")
    panels = ([("image", images, "gray")] if not images.empty else []) + \
        [(s, heat[heat["series"] == s], "magma") for s in _ordered(heat["series"])]
    samples = sorted(heat["sample"].unique())
    labels = heat.groupby("sample")["label"].first() if "label" in heat else {}
    with _grid(out, len(panels), len(samples), width=1.8, height=1.8) as (fig, axes):
        for r, (name, rows, cmap) in enumerate(panels):
            for c, sample in enumerate(samples):
                ax = axes[r, c]
                grid = rows[rows["sample"] == sample].pivot_table(index="row", columns="col", values="value")
                if not grid.empty:
                    top = grid.to_numpy().max()
                    sns.heatmap(grid / (top if top > 0 else 1.0), cmap=cmap, vmin=0, vmax=1, cbar=False,
                                square=True, xticklabels=False, yticklabels=False, ax=ax)
                ax.set(xlabel="", ylabel=str(name) if c == 0 else "")
                if r == 0:
                    label = labels[sample] if sample in labels else None
                    ax.set_title(f"sample {int(sample)}" + ("" if pd.isna(label) else f" (label {int(label)})"),
                                 fontsize="small")
    return Path(out)
