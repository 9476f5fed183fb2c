"""Turn result files into the tidy frames that tables and figures take (one view per result kind)."""

from __future__ import annotations

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry

VIEWS: Registry = Registry("result view")


def _need(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df]
    if missing:
        raise SnnRobustError(f"{what}: input lacks column(s) {', '.join(missing)}")


@VIEWS.register("attacks")
def attack_view(df: pd.DataFrame, spec: dict | None = None) -> pd.DataFrame:
    """Attack rows → tidy accuracy rows: one clean row per model run (from its largest evaluation subset) plus one
    row per (attack, ε); the subset's size is kept as ``n_eval`` where the rows give it (``n``)."""
    _need(df, ("dataset", "model", "method", "seed", "attack", "eps", "steps", "clean_acc", "robust_acc"), "attacks")
    keys = ["dataset", "model", "method", "seed"]
    subset = ["n_eval"] if "n" in df else []
    df = df.assign(n_eval=df["n"]) if subset else df
    attacked = df.assign(metric="accuracy", value=df["robust_acc"])[
        [*keys, "attack", "eps", "steps", "metric", "value", *subset, "wall_s", "forward_passes", "backward_passes"]]
    largest = df.sort_values("n_eval", ascending=False, kind="stable") if subset else df
    clean = (largest.drop_duplicates(keys).assign(attack="clean", eps=0.0, steps=0, metric="accuracy",
                                                  value=largest["clean_acc"])
             [[*keys, "attack", "eps", "steps", "metric", "value", *subset]])
    return pd.concat([clean, attacked], ignore_index=True)


@VIEWS.register("grad_norms")
def grad_view(df: pd.DataFrame, spec: dict | None = None) -> pd.DataFrame:
    """Gradient statistics → (model, metric, value) with the per-sample std and count kept."""
    _need(df, ("model", "statistic", "mean"), "grad_norms")
    out = df.rename(columns={"statistic": "metric", "mean": "value"})
    first = [c for c in ("dataset", "model", "method", "seed", "metric", "value", "std", "n") if c in out]
    return out[first + [c for c in out if c not in first]]


@VIEWS.register("training")
def training_view(df: pd.DataFrame, spec: dict | None = None) -> pd.DataFrame:
    """Per-epoch metrics of every run, long format (model, epoch, metric, value)."""
    _need(df, ("model", "epoch"), "training")
    ids = [c for c in ("dataset", "model", "method", "seed", "epoch") if c in df]
    values = [c for c in ("train_loss", "train_acc", "test_loss", "test_acc") if c in df]
    return df.melt(id_vars=ids, value_vars=values, var_name="metric", value_name="value")


def build_table(rows: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """The table of one result kind; attacks are joined with the configured paper table (``paper_table``),
    pairing on every key the paper row declares (threat white-box for these attack files, ensemble and other
    keys from the spec's ``attack_keys`` / ``model_keys`` / ``method_keys``)."""
    kind = spec.get("kind", "attacks")
    rows = rows.drop(columns=["source_file"], errors="ignore")
    tidy = VIEWS.get(kind)(rows, spec)
    if kind != "attacks" or not spec.get("paper_table"):
        return tidy
    from snnrobust.report.reproduced import attack_measurements, with_row_keys
    from snnrobust.report.tables import paper_vs_reproduced

    measured = attack_measurements(rows, "attacks")
    measured = with_row_keys(measured[measured["metric"] == "accuracy"], spec)
    joined = paper_vs_reproduced(
        measured.assign(arch=measured["model"]), spec["paper_table"], stand_ins=spec.get("stand_ins", {}),
        arch_map=spec.get("arch_map", {}), stand_in_archs=spec.get("stand_in_models", []),
        value_maps={"dataset": spec.get("dataset_names", {}), "method": spec.get("method_map", {}),
                    "attack": spec.get("attack_map", {})},
    )
    return relevant_rows(joined).rename(columns={"arch": "model", "paper_arch": "paper_model"})


def relevant_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Reproduced rows, plus the paper rows of the (dataset, arch, method) settings that were reproduced."""
    ran = joined["reproduced"].notna()
    cols = [c for c in ("paper_dataset", "paper_arch", "paper_method") if c in joined]
    settings = joined.loc[ran, cols].drop_duplicates()
    paper_only = joined[~ran].merge(settings, on=cols, how="inner") if cols else joined[~ran]
    return pd.concat([joined[ran], paper_only], ignore_index=True)


def figure_frame(kind: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The tidy frame a registered figure expects, from the files the workflow gives it."""
    rows = rows.drop(columns=["source_file"], errors="ignore")
    if kind == "eps_sweep":
        return attack_view(rows).query("attack != 'clean'")
    if kind == "grad_norms":
        return grad_view(rows)
    if kind == "training_curves":
        return training_view(rows)
    if kind == "attack_bars":
        return _bars_from_table(rows)
    raise SnnRobustError(f"no data view for figure {kind!r}")


def _bars_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """Paper and reproduced values side by side, for the settings the paper reports and we ran."""
    _need(table, ("model", "attack", "paper", "reproduced"), "attack_bars")
    both = table[table["paper"].notna() & table["reproduced"].notna()]
    if both.empty:  # no overlap with the paper: show what was reproduced
        both = table[table["reproduced"].notna()].assign(paper=float("nan"))
    name = both["paper_attack"] if "paper_attack" in both else both["attack"]
    label = name.fillna(both["attack"]).astype(str)
    if "steps" in both:
        label = label + both["steps"].map(lambda s: "" if pd.isna(s) or s in (0, 1) else f"-{int(s)}")
    if "eps" in both:
        label = label + both["eps"].map(lambda e: "" if pd.isna(e) or e == 0 else f" ε={round(e * 255, 2):g}/255")
    if "stand_in_for" in both:
        both = both.assign(model=both["model"].astype(str).where(
            ~both["stand_in"].astype(bool), both["model"].astype(str) + "\n(stand-in)"))
    long = both.assign(attack=label).melt(id_vars=["model", "attack"], value_vars=["paper", "reproduced"],
                                          var_name="source", value_name="value")
    return long.dropna(subset=["value"])
