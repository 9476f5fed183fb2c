"""Verb `train`: one model (image or graph), one method, on one device; checkpointed and resumable."""

from __future__ import annotations

import math

import pandas as pd
import torch

from snnrobust.io import atomic_path, write_json
from snnrobust.provenance import provenance, spec_hash
from snnrobust.commands._common import _check_keys, _take
from snnrobust.commands.models_io import build_from_spec, model_spec_for, save_trained

TRAIN_SPEC_KEYS = {"model", "method", "train", "labels", "device", "robust_eval"}


def _device_record(device: torch.device) -> dict:
    """What provenance says about the device actually used."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": device.type, "device_name": name}


def _clean_record(result, cfg, data) -> tuple[float, int | None]:
    """The kept model's clean test accuracy (%) at the end of training, and on how many test examples
    (the first ``eval_limit``; None for a graph's test mask)."""
    acc = float(result.metrics[result.selected_epoch - 1]["test_acc"])
    if data.kind == "graph":
        return acc, None
    n_test = len(data.arrays["y_test"])
    return acc, n_test if cfg.eval_limit is None else min(cfg.eval_limit, n_test)


def train(data_path: str, spec: dict, out_model: str, out_metrics: str, out_run: str, checkpoint: str,
          progress: bool = True, device: str | None = None) -> None:
    """Train as ``spec`` says; ``device`` (auto|cpu|cuda) overrides the spec's ``device`` (default auto)."""
    from snnrobust.data import load_prepared
    from snnrobust.device import resolve_device
    from snnrobust.methods import make_method
    from snnrobust.seeding import seed_everything
    from snnrobust.training import robust_eval_from, train_config_from
    from snnrobust.training import train as run_training

    _check_keys(spec, TRAIN_SPEC_KEYS, "train spec")
    run_device = resolve_device(device if device is not None else spec.get("device", "auto"))
    data = load_prepared(data_path)
    cfg = train_config_from(dict(_take(spec, "train", {})))
    method_spec = dict(_take(spec, "method", {"name": "vanilla"}))
    _check_keys(method_spec, {"name", "options"}, "method spec")
    method = make_method(method_spec.get("name", "vanilla"), **method_spec.get("options", {}))
    robust_eval = robust_eval_from(spec.get("robust_eval"))
    seed_everything(cfg.seed)
    model_spec = model_spec_for(dict(_take(spec, "model", required=True)), data.meta)
    model = build_from_spec(model_spec, data.meta)
    fingerprint = spec_hash({k: v for k, v in spec.items() if k != "labels"})
    result = run_training(model, method, data, cfg, checkpoint, progress=progress, fingerprint=fingerprint,
                          device=run_device, robust_eval=robust_eval)
    clean_acc, clean_n = _clean_record(result, cfg, data)
    save_trained(out_model, model, model_spec, spec, data.meta, clean_acc=clean_acc, clean_n=clean_n)
    with atomic_path(out_metrics) as tmp:
        frame = pd.DataFrame(result.metrics, columns=result.columns)
        for i, (key, value) in enumerate(spec.get("labels", {}).items()):
            frame.insert(i, key, value)
        frame.to_csv(tmp, index=False, float_format="%.6g")
    device_record = _device_record(run_device)
    write_json(out_run, {
        **spec.get("labels", {}),
        "final": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in result.metrics[-1].items()},
        "wall_s": result.wall_s,
        "epoch_seconds": [round(t, 4) for t in result.epoch_seconds],  # training steps only (SR Tab. 7)
        "selected_epoch": result.selected_epoch,
        "selected": {k: None if isinstance(v, float) and math.isnan(v) else v
                     for k, v in result.metrics[result.selected_epoch - 1].items()},
        "train_steps_this_run": result.train_steps,
        "resumed_from_epoch": result.resumed_from_epoch,
        "device": device_record["device"],
        "provenance": {**provenance(spec), **device_record},
    })
