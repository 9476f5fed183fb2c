"""Spiking-PGD against the iterative baselines at equal budget: Fig. 5's reading, as rows a claim can compare.

Fig. 5 plots accuracy under attack against relative cost: T/T0 for PGD, I-FGSM and MI-FGSM, and for Spiking-PGD
(T0 iterations) the share of its layer forwards computed. A claim compares two selections on matched settings, so
:func:`with_budget_rows` adds, for every Spiking-PGD run whose ``forward_share`` is at most :data:`MAX_SHARE`, one
*budget* (the setting key :data:`BUDGET_KEY`, its share rounded) holding
- ``accuracy_at_budget``: Spiking-PGD's accuracy, and each baseline's accuracy at the fewest iterations T with
  T ≥ share·T0 (operations: a baseline never gets less budget than Spiking-PGD used);
- ``accuracy_at_wall_budget``: the same with wall-clock seconds: each baseline's run with the least ``wall_s`` that
  is not below Spiking-PGD's (its backward runs in full, so its seconds fall less than its operations).
Runs with ``virtual_grad`` false are Fig. 9's ablation, not the paper's attack: they get no budget. Rows are copies
of measured rows: they keep ``outcomes_from``, so a claim's interval is paired over the same images.
"""

from __future__ import annotations

import pandas as pd

from snnrobust.report.pairing import without_virtual_grad

#: The setting key of a budget (Spiking-PGD's forward share, rounded to 3 decimals).
BUDGET_KEY = "budget"
#: The metrics this module adds.
BUDGET_METRICS = ("accuracy_at_budget", "accuracy_at_wall_budget")
#: Only Spiking-PGD operating points at or below this share of the layer forwards count (the low-budget regime).
MAX_SHARE = 0.5
SPIKING, BASELINES = "spiking-pgd", ("pgd", "i-fgsm", "mi-fgsm")
_RUN = ("dataset", "arch", "model", "method", "seed", "eps", "threat", "n_eval")
_TOL = 1e-9


def _wide(frame: pd.DataFrame, run: list[str]) -> pd.DataFrame:
    """One row per attack run (its accuracy row's columns) with its steps, forward_share and wall_s beside it."""
    attack = frame["attack"].astype(str).str.casefold()
    rows = frame[attack.isin((SPIKING, *BASELINES))]
    ident = [*run, "attack", "steps", *[c for c in ("rho", "virtual_grad") if c in rows]]
    acc = rows[rows["metric"] == "accuracy"]
    out = acc.copy()
    for metric in ("forward_share", "wall_s"):
        values = rows[rows["metric"] == metric].drop_duplicates(ident)[[*ident, "value"]]
        out = out.merge(values.rename(columns={"value": metric}), on=ident, how="left")
    return out.assign(family=out["attack"].astype(str).str.casefold())


def budget_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``accuracy_at_budget`` / ``accuracy_at_wall_budget`` rows of a frame in the paper's vocabulary (columns
    attack, steps, metric, value, the run keys); empty when it has no Spiking-PGD run at or below MAX_SHARE."""
    if frame.empty or not {"attack", "metric", "value", "steps"} <= set(frame):
        return frame.iloc[0:0]
    run = [c for c in _RUN if c in frame]
    wide = _wide(frame, run)
    spiking = wide[(wide["family"] == SPIKING) & (wide["forward_share"] <= MAX_SHARE + _TOL) & ~without_virtual_grad(wide)]
    out = []
    for _, point in spiking.iterrows():
        same = pd.Series(True, index=wide.index)
        for key in run:
            same &= (wide[key] == point[key]) | (wide[key].isna() & pd.isna(point[key]))
        budget = round(float(point["forward_share"]), 3)
        t0 = float(point["steps"])
        mine = point.drop(labels=["forward_share", "wall_s", "family"]).to_dict()
        for metric, needed in (("accuracy_at_budget", point["forward_share"] * t0),
                               ("accuracy_at_wall_budget", point["wall_s"])):
            if pd.isna(needed):
                continue
            matched = []
            for family in BASELINES:
                runs = wide[same & (wide["family"] == family)]
                cost = runs["steps"].astype(float) if metric == "accuracy_at_budget" else runs["wall_s"]
                enough = runs[cost >= float(needed) - _TOL]
                if not enough.empty:
                    best = enough.loc[cost[enough.index].idxmin()]
                    matched.append(best.drop(labels=["forward_share", "wall_s", "family"]).to_dict())
            if matched:
                out += [{**row, "metric": metric, BUDGET_KEY: budget} for row in (mine, *matched)]
    return pd.DataFrame(out, columns=[*frame.columns, BUDGET_KEY]) if out else frame.iloc[0:0]


def with_budget_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus its :func:`budget_rows` (the other rows get no budget)."""
    extra = budget_rows(frame)
    return pd.concat([frame, extra], ignore_index=True) if not extra.empty else frame
