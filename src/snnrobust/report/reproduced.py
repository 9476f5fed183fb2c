"""Reproduced result files → one tidy frame of measurements that carries every key a paper row may declare.

Result rows name their model, attack and method by config id; what those ids mean in a paper's terms (pooling,
T, coding of a model; whether an attack is an ensemble; a method's schedule) comes from the page spec's
``model_keys`` / ``attack_keys`` / ``method_keys``. The threat model is the row's own ``threat`` if it has one,
else the file kind's (attack files are white-box, transfer files black-box); a clean row has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import pandas as pd

from snnrobust.errors import SnnRobustError

RUN_KEYS = ("dataset", "model", "method", "seed")
#: Threat model implied by the kind of result file a row came from.
THREAT_OF_KIND = {"attacks": "white-box", "transfer": "black-box"}
#: Cost columns of attack rows, kept as metrics next to accuracy (Spiking-PGD compares them); the shares are of the
#: gated layer work done (``Cost.shares``: 1.0 for attacks that gate nothing).
COST_METRICS = ("forward_passes", "backward_passes", "wall_s", "forward_share", "forward_share_flops",
                "backward_share_flops")
#: Training metrics.csv columns renamed to the papers' metric names; other numeric columns keep their name.
TRAINING_ALIASES = {"robust_acc": "robust_accuracy", "epoch_s": "epoch_time"}
#: Metrics a reproduced frame can hold, besides analysis statistics and method-specific training columns.
REPRODUCED_METRICS = frozenset({"accuracy", "accuracy_change_vs_table2", *COST_METRICS, "train_loss", "train_acc", "test_loss", "test_acc",
                                "robust_accuracy", "epoch_time", "precision", "precision_last", "precision_cumulative", "l0_fraction",
                                "l1", "l2"})
#: Result kind of the per-epoch training rows (every epoch of every run, for curves over epochs). Only the
#: ``training_curves`` view shows them: other views, the tables and the claims see training through the last
#: epoch of each run (kind ``training``), see :func:`without_epochs`.
EPOCH_KIND = "training_epochs"
#: Report views: a slot names one; each takes the measurements of some result kinds (``kind`` column). The
#: attacks view holds transfer rows too (``threat`` tells them apart), as the papers' tables mix both.
VIEW_KINDS = {"attacks": ("attacks", "transfer"), "transfer": ("transfer",), "grad_norms": ("analyses",),
              "analyses": ("analyses",), "training": ("training",),
              # every epoch of every training run: the Spiking-PGD paper's Figs. 7-8 and 10-13 (accuracy and
              # precision curves of adversarial training)
              "training_curves": (EPOCH_KIND,),
              # the SR paper's figures (Fig. 1, 3/6, 4, 5) and its Theorem 4.3 data
              "random_vs_fgsm": ("attacks",), "lambda_sweep": ("attacks", "analyses", "training"),
              "grad_hist": ("analyses",), "grad_heatmap": ("analyses",), "vulnerability": ("analyses",),
              # the trail paper's gradient sparsity per operation (Figs. 3/5) and its Theorem 4.4 data
              "op_sparsity": ("analyses",), "sparsity_vs_weight_grad": ("analyses",),
              # the Spiking-PGD paper's Fig. 5: accuracy under attack against relative cost and wall-clock
              "cost": ("attacks",),
              # and its Fig. 9: the ablations (threshold rho, virtual surrogate gradient on/off, attack radius)
              "ablation": ("attacks",),
              # and its Fig. 6: the graph attack's accuracy against its cost
              "graph_cost": ("attacks",),
              # and its Fig. 1 / Tables 1-2: activation and gradient change per layer and PGD iteration
              "redundancy": ("analyses",)}
#: Analysis registry names whose rows a view keeps (views not listed keep every row of their kinds).
VIEW_ANALYSES = {"grad_norms": ("grad_norms",), "grad_hist": ("grad_hist",), "grad_heatmap": ("grad_heatmap",),
                 "vulnerability": ("vulnerability",), "lambda_sweep": ("grad_norms",),
                 "op_sparsity": ("op_sparsity",), "sparsity_vs_weight_grad": ("op_sparsity",),
                 "redundancy": ("redundancy",)}
#: Attack registry names whose rows a view keeps (clean rows always stay).
VIEW_ATTACKS = {"random_vs_fgsm": ("random", "fgsm"), "cost": ("pgd", "ifgsm", "mifgsm", "spiking_pgd"),
                "ablation": ("pgd", "spiking_pgd"),
                "graph_cost": ("topology",)}
#: Spec entries that attach paper keys to config ids: spec key → the row column holding the id.
ROW_KEY_SPECS = {"model_keys": "model", "attack_keys": "attack", "method_keys": "method"}


def grid_base(ident: object) -> object:
    """The attack id a grid-derived variant was made from ('pgd10-steps5' → 'pgd10'; ids hold no '-', the plan
    joins a variant's grid labels with it); any other value as it is."""
    return ident.split("-", 1)[0] if isinstance(ident, str) else ident


def _resolved_ids(ids: pd.Series, column: str, known) -> pd.Series:
    """Row ids as a spec looks them up: a grid-derived attack id the spec does not name itself falls back to the
    id its grid was made from, so ``attack_map: {pgd10: PGD}`` also names pgd10-steps5."""
    ids = ids.astype(str)
    if column != "attack":
        return ids
    return ids.where(ids.isin({str(k) for k in known}), ids.map(grid_base))


def read_result_rows(paths: list[str], what: str) -> pd.DataFrame:
    """The ``rows`` of result JSON files (or the rows of CSV files), with the source file kept."""
    frames = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SnnRobustError(f"{what} file not found: {path}")
        try:
            frame = pd.read_csv(path) if path.suffix == ".csv" else pd.DataFrame(json.loads(path.read_text())["rows"])
        except (json.JSONDecodeError, KeyError, TypeError, pd.errors.ParserError):
            raise SnnRobustError(f"not a snnrobust {what} file: {path}") from None
        frames.append(frame.assign(source_file=str(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def attack_measurements(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Attack or transfer rows → accuracy under attack, the costs as metrics, and one clean row per model run (from
    its largest evaluation subset); every row keeps that subset's size as ``n_eval``."""
    if rows.empty:
        return pd.DataFrame()
    need = [c for c in (*RUN_KEYS, "attack", "eps", "clean_acc", "robust_acc") if c not in rows]
    if need:
        raise SnnRobustError(f"{kind} rows lack column(s) {', '.join(need)}")
    rows = rows.assign(threat=_threat(rows, kind), steps=rows["steps"] if "steps" in rows else pd.NA,
                       **({"n_eval": rows["n"]} if "n" in rows else {}))  # the evaluation subset's size
    keys = [c for c in rows if c not in ("clean_acc", "robust_acc", "robust_acc_clean_correct", *COST_METRICS,
                                          "source_file", "n")]
    attacked = rows[keys].assign(metric="accuracy", value=rows["robust_acc"])
    costs = [rows[keys].assign(metric=m, value=rows[m]) for m in COST_METRICS if m in rows]
    runs = _largest_subset(rows).groupby(list(RUN_KEYS), sort=False, dropna=False)
    clean = (runs["clean_acc"].mean().reset_index()
             .assign(attack="clean", eps=0.0, steps=0, metric="accuracy").rename(columns={"clean_acc": "value"}))
    if "n_eval" in rows:
        clean = clean.assign(n_eval=runs["n_eval"].first().to_numpy())
    if "source_file" in rows:  # where each accuracy's per-sample outcomes lie (claims' intervals read them)
        attacked = attacked.assign(outcomes_from=rows["source_file"].astype(str) + "#adv_correct")
        clean = clean.assign(outcomes_from=runs["source_file"].first().to_numpy().astype(str) + "#clean_correct")
    return pd.concat([clean, attacked, *costs], ignore_index=True).assign(kind=kind)


def _largest_subset(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's largest evaluation subset: its clean accuracy, recorded in every attack file, is one
    measurement per subset, and accuracies on different subsets are never averaged."""
    if "n_eval" not in rows:
        return rows
    size = pd.to_numeric(rows["n_eval"], errors="coerce").fillna(0)
    return rows[size == size.groupby([rows[k] for k in RUN_KEYS], dropna=False).transform("max")]


def _threat(rows: pd.DataFrame, kind: str) -> pd.Series:
    """The row's own threat model where it states one, else the file kind's."""
    own = rows["threat"] if "threat" in rows else pd.Series(pd.NA, index=rows.index, dtype=object)
    return own.astype(object).where(own.notna(), THREAT_OF_KIND[kind])


def analysis_measurements(rows: pd.DataFrame) -> pd.DataFrame:
    """Analysis rows (one statistic per row) → metric = statistic, value = mean over the evaluation subset."""
    if rows.empty:
        return pd.DataFrame()
    if not {"model", "statistic", "mean"} <= set(rows):
        raise SnnRobustError("analysis rows lack column(s) model, statistic or mean")
    keep = [c for c in rows if c not in ("statistic", "mean", "std", "n", "zero_tol", "source_file")]
    spread = {name: rows[col] for name, col in (("value_std", "std"), ("value_n", "n")) if col in rows}
    return rows[keep].assign(metric=rows["statistic"], value=rows["mean"], kind="analyses", **spread)


def training_measurements(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch training metrics → the last epoch of each run, one row per numeric metric column. ``precision``
    (Spiking-PGD-AT) is the whole training's: the mean over its epochs (equal-sized), the share of the inner attack's
    layer forwards computed in training, as Table 3 prints it ("under 30 % of the computation" for λ = 2, whose last
    epochs compute almost everything); the last epoch's own is ``precision_last``."""
    if rows.empty:
        return pd.DataFrame()
    if not {"model", "epoch"} <= set(rows):
        raise SnnRobustError("training metrics lack column(s) model or epoch")
    ids = [c for c in RUN_KEYS if c in rows]
    last = rows.sort_values("epoch").groupby(["source_file"], sort=False).tail(1)
    last = last.assign(epoch_s=last["source_file"].map(_mean_epoch_seconds))
    if "precision" in last:
        whole = pd.to_numeric(rows["precision"], errors="coerce").groupby(rows["source_file"]).mean()
        last = last.assign(precision_last=last["precision"], precision=last["source_file"].map(whole))
    values = [c for c in last.select_dtypes("number") if c not in (*ids, "epoch", "lr")]
    long = last.melt(id_vars=ids, value_vars=values, var_name="metric", value_name="value").dropna(subset=["value"])
    return long.assign(metric=long["metric"].replace(TRAINING_ALIASES), kind="training")


def training_epoch_measurements(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch training metrics → every epoch of each run, one row per numeric metric (kind ``training_epochs``,
    with its ``epoch``). A run with a ``precision`` column also gets ``precision_cumulative``: the mean precision of
    epochs 1..e (the Spiking-PGD paper's average precision, Fig. 8)."""
    if rows.empty:
        return pd.DataFrame()
    if not {"model", "epoch"} <= set(rows):
        raise SnnRobustError("training metrics lack column(s) model or epoch")
    ids = [c for c in RUN_KEYS if c in rows]
    rows = rows.sort_values("epoch", kind="stable")
    if "precision" in rows:
        precision = pd.to_numeric(rows["precision"], errors="coerce")
        rows = rows.assign(precision_cumulative=precision.groupby(rows["source_file"], sort=False)
                           .transform(lambda s: s.expanding().mean()))
    values = [c for c in rows.select_dtypes("number") if c not in (*ids, "epoch", "lr")]
    long = rows.melt(id_vars=[*ids, "epoch"], value_vars=values, var_name="metric",
                     value_name="value").dropna(subset=["value"])
    return long.assign(metric=long["metric"].replace(TRAINING_ALIASES), kind=EPOCH_KIND)


def without_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """The measurements the tables and claims see: all but the per-epoch training rows (each run's last epoch
    stays, as kind ``training``), without their ``epoch`` column."""
    if "kind" not in frame:
        return frame
    return frame[frame["kind"] != EPOCH_KIND].drop(columns=["epoch"], errors="ignore")


def _mean_epoch_seconds(metrics_path: str) -> float:
    """Mean wall seconds of a run's training epochs, from the ``run.json`` beside its metrics (NaN if absent):
    the timing stays out of metrics.csv, which must be byte-identical across reruns."""
    run = Path(metrics_path).with_name("run.json")
    try:
        seconds = json.loads(run.read_text()).get("epoch_seconds") or []
    except (OSError, json.JSONDecodeError, AttributeError):
        return float("nan")
    return float(sum(seconds) / len(seconds)) if seconds else float("nan")


def with_row_keys(frame: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """Attach the paper keys the spec gives each config id (``model_keys: {model id: {pooling: max, T: 4}}``)."""
    frame = frame.copy()
    for spec_key, column in ROW_KEY_SPECS.items():
        table = spec.get(spec_key) or {}
        ids = _resolved_ids(frame[column], column, table) if column in frame else None
        for ident, keys in table.items():
            if column not in frame:
                continue
            hit = ids == str(ident)
            for key, value in keys.items():
                if key not in frame:
                    frame[key] = pd.Series(pd.NA, index=frame.index, dtype=object)
                frame[key] = frame[key].astype(object)
                frame.loc[hit & frame[key].isna(), key] = value
    if "attack" in frame and "threat" in frame:  # a clean measurement has no threat model
        frame.loc[frame["attack"].astype(str) == "clean", "threat"] = pd.NA
    return frame


def measurements(attacks: list[str], transfer: list[str], analyses: list[str], training: list[str],
                 spec: Mapping) -> pd.DataFrame:
    """Every reproduced measurement of a study as one tidy frame (``kind`` says which result kind it came from;
    training appears twice: each run's last epoch as ``training``, every epoch as ``training_epochs``)."""
    trained = read_result_rows(training, "training metrics")
    parts = [
        attack_measurements(read_result_rows(attacks, "attack result"), "attacks"),
        attack_measurements(read_result_rows(transfer, "transfer result"), "transfer"),
        analysis_measurements(read_result_rows(analyses, "analysis result")),
        training_measurements(trained),
        training_epoch_measurements(trained),
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=[*RUN_KEYS, "arch", "metric", "value", "kind"])
    frame = pd.concat(parts, ignore_index=True).drop(columns=["source_file"], errors="ignore")
    frame = with_row_keys(frame.assign(arch=frame["model"]), spec)
    return pd.concat([frame, pooling_changes(frame, spec)], ignore_index=True)


#: What must agree between an avg-pool accuracy and its max-pool twin's (everything but the model itself).
TWIN_KEYS = ("dataset", "method", "seed", "attack", "eps", "steps", "threat", "space", "mode", "n_eval", "kind")


def pooling_changes(frame: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """The trail paper's Table 3 change: accuracy of each avg-pool model minus its max-pool twin's (same paper
    architecture via ``arch_map``, same dataset, method, seed and attack settings), as ``accuracy_change_vs_table2``
    rows in percentage points on the avg-pool model. Empty where no model carries a ``pooling`` key."""
    if "pooling" not in frame or frame.empty:
        return frame.iloc[0:0]
    acc = frame[(frame["metric"] == "accuracy") & frame["pooling"].isin(["avg", "max"])]
    family = acc["model"].map(lambda m: (spec.get("arch_map") or {}).get(m, m))
    keys = [k for k in TWIN_KEYS if k in acc]
    acc = acc.assign(_family=family, **{k: acc[k].astype(str) for k in keys if k != "kind"})
    avg, mx = acc[acc["pooling"] == "avg"], acc[acc["pooling"] == "max"]
    twins = avg.merge(mx[[*keys, "_family", "value"]], on=[*keys, "_family"], suffixes=("", "_max"))
    if twins.empty:
        return frame.iloc[0:0]
    out = twins.drop(columns=["_family", "value_max", "outcomes_from"], errors="ignore")
    out = out.assign(metric="accuracy_change_vs_table2", value=twins["value"] - twins["value_max"], unit="pp")
    for k in keys:  # back to the frame's types (the merge compared them as text)
        if k != "kind":
            out[k] = out[k].map(dict(zip(acc[k], frame.loc[acc.index, k])))
    return out


def paper_maps(spec: Mapping) -> dict[str, dict]:
    """Our names → the paper's, per key, from a page or table spec."""
    return {
        "dataset": {**(spec.get("dataset_names") or {}), **(spec.get("stand_ins") or {})},
        "arch": dict(spec.get("arch_map") or {}),
        "method": dict(spec.get("method_map") or {}),
        "attack": dict(spec.get("attack_map") or {}),
    }


def in_paper_vocabulary(frame: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """The frame with dataset, arch, method and attack replaced by the paper's names (others unchanged); a
    grid-derived attack id (pgd10-steps5) takes its base id's name unless the map names it itself."""
    out = frame.copy()
    for key, mapping in paper_maps(spec).items():
        if key in out:
            base = grid_base if key == "attack" else (lambda v: v)
            out[key] = out[key].map(lambda v, m=mapping, b=base: m.get(v, m.get(b(v), v)))
    return out


def view_rows(frame: pd.DataFrame, view: str | None) -> pd.DataFrame:
    """The measurements a report view shows (none for no view): its result kinds, narrowed to the analyses and
    attacks it draws (a histogram view never sees heatmap rows); the λ sweep keeps only methods with a ``lam``.
    Only ``training_curves`` sees the per-epoch training rows (and their ``epoch`` column)."""
    if not view or frame.empty:
        return frame.iloc[0:0]
    keep = frame["kind"].isin(VIEW_KINDS[view])
    if view in VIEW_ANALYSES and "analysis_name" in frame:
        keep &= (frame["kind"] != "analyses") | frame["analysis_name"].isin(VIEW_ANALYSES[view])
    if view in VIEW_ATTACKS and "attack_name" in frame:
        attacked = frame["attack_name"].isin(VIEW_ATTACKS[view])
        runs = [c for c in RUN_KEYS if c in frame]  # a clean row stays where its run has an attack the view draws
        drawn = frame.loc[keep & attacked, runs].drop_duplicates()
        clean = (frame["attack"] == "clean") & pd.MultiIndex.from_frame(frame[runs]).isin(
            pd.MultiIndex.from_frame(drawn)) if runs else frame["attack"] == "clean"
        keep &= attacked | clean
    if view == "lambda_sweep":
        keep &= frame["lam"].notna() if "lam" in frame else False
        keep &= (frame["kind"] != "training") | (frame["metric"] == "test_acc")
    if EPOCH_KIND not in VIEW_KINDS[view]:  # the epoch column belongs to the per-epoch rows alone
        return frame[keep].drop(columns=["epoch"], errors="ignore")
    return frame[keep]
