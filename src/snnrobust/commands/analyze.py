"""Verb `analyze`: one registered analysis (``snnrobust.analysis.ANALYSES``) of one trained model."""

from __future__ import annotations

import time

from snnrobust.io import write_json
from snnrobust.provenance import provenance
from snnrobust.commands._common import _check_keys, _eval_batches

ANALYZE_SPEC_KEYS = {"analysis", "n_eval", "batch_size", "labels", "device"}


def analyze(model_path: str, data_path: str, spec: dict, out: str) -> None:
    """Run ``spec['analysis'] = {name, options}`` (default: grad_norms) on the fixed evaluation subset."""
    from snnrobust.analysis import ANALYSES
    from snnrobust.commands.models_io import load_trained
    from snnrobust.data import load_prepared
    from snnrobust.device import resolve_device

    _check_keys(spec, ANALYZE_SPEC_KEYS, "analysis spec")
    choice = dict(spec.get("analysis") or {"name": "grad_norms"})
    _check_keys(choice, {"name", "options"}, "analysis")
    analysis = ANALYSES.create(choice.get("name", "grad_norms"), **(choice.get("options") or {}))
    device = resolve_device(spec.get("device", "auto"))
    data = load_prepared(data_path)
    model, _ = load_trained(model_path, data_meta=data.meta, labels=spec.get("labels"))
    model = model.to(device)
    batches = [(x.to(device), y.to(device))
               for x, y in _eval_batches(data, spec.get("n_eval"), int(spec.get("batch_size", 128)))]
    t0 = time.perf_counter()
    rows = analysis(model, batches)
    labels = {**spec.get("labels", {}), "analysis_name": choice.get("name", "grad_norms")}
    write_json(out, {"rows": [{**labels, **row} for row in rows], "wall_s": time.perf_counter() - t0,
                     "device": device.type, "provenance": provenance(spec)})
