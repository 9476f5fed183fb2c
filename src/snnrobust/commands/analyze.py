"""Verb `analyze`: gradient analyses of one trained model."""

from __future__ import annotations

import time

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.io import write_json
from snnrobust.provenance import provenance
from snnrobust.commands._common import _check_keys, _eval_batches, _surrogate_context
from snnrobust.commands.models_io import load_trained


def analyze(model_path: str, data_path: str, spec: dict, out: str) -> None:
    from snnrobust.analysis import grad_fy, gradient_norm_stats
    from snnrobust.data import load_prepared

    _check_keys(spec, {"kind", "n_eval", "batch_size", "zero_tol", "surrogate", "labels"}, "analysis spec")
    kind = spec.get("kind", "grad_norms")
    if kind != "grad_norms":
        raise SnnRobustError(f"unknown analysis {kind!r}; choose one of: grad_norms")
    data = load_prepared(data_path)
    model, _ = load_trained(model_path)
    zero_tol = float(spec.get("zero_tol", 0.0))
    t0 = time.perf_counter()
    per_sample = []
    with _surrogate_context(model, spec.get("surrogate")):
        for x, y in _eval_batches(data, spec.get("n_eval"), int(spec.get("batch_size", 128))):
            stats = gradient_norm_stats(grad_fy(model, x, y), zero_tol)
            per_sample.append(pd.DataFrame({k: v.numpy() for k, v in stats.items()}))
    df = pd.concat(per_sample, ignore_index=True)
    rows = [
        {**spec.get("labels", {}), "statistic": name, "mean": float(df[name].mean()),
         "std": float(df[name].std(ddof=0)), "n": int(len(df)), "zero_tol": zero_tol}
        for name in ("l0_fraction", "l1", "l2")
    ]
    write_json(out, {"rows": rows, "wall_s": time.perf_counter() - t0, "provenance": provenance(spec)})

