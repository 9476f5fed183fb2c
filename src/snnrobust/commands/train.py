"""Verb `train`: one model, one method, checkpointed and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from snnrobust.io import atomic_path, torch_save, write_json
from snnrobust.provenance import provenance, spec_hash
from snnrobust.commands._common import _check_keys, _take
from snnrobust.commands.models_io import build_from_spec


def train(data_path: str, spec: dict, out_model: str, out_metrics: str, out_run: str, checkpoint: str,
          progress: bool = True) -> None:
    from snnrobust.data import load_prepared
    from snnrobust.methods import make_method
    from snnrobust.seeding import seed_everything
    from snnrobust.training import METRIC_COLUMNS, train_config_from
    from snnrobust.training import train as run_training

    _check_keys(spec, {"model", "method", "train", "labels"}, "train spec")
    data = load_prepared(data_path)
    train_spec = dict(_take(spec, "train", {}))
    cfg = train_config_from(train_spec)
    method_spec = dict(_take(spec, "method", {"name": "vanilla"}))
    _check_keys(method_spec, {"name", "options"}, "method spec")
    method = make_method(method_spec.get("name", "vanilla"), **method_spec.get("options", {}))
    seed_everything(cfg.seed)
    model_spec = dict(_take(spec, "model", required=True))
    model_spec["options"] = dict(model_spec.get("options", {}))
    model_spec["options"].setdefault("mean", data.meta.get("mean"))
    model_spec["options"].setdefault("std", data.meta.get("std"))
    model = build_from_spec(model_spec, data.meta)
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    fingerprint = spec_hash({k: v for k, v in spec.items() if k != "labels"})
    result = run_training(model, method, data, cfg, checkpoint, progress=progress, fingerprint=fingerprint)
    torch_save(
        {
            "state_dict": model.state_dict(),
            "model_spec": json.dumps(model_spec, sort_keys=True),
            "spec": json.dumps(spec, sort_keys=True),
            "num_classes": int(data.num_classes),
            "in_shape": [int(v) for v in data.in_shape],
        },
        out_model,
    )
    with atomic_path(out_metrics) as tmp:
        frame = pd.DataFrame(result.metrics, columns=METRIC_COLUMNS)
        for i, (key, value) in enumerate(spec.get("labels", {}).items()):
            frame.insert(i, key, value)
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out_run, {
        **spec.get("labels", {}),
        "final": result.metrics[-1],
        "wall_s": result.wall_s,
        "train_steps_this_run": result.train_steps,
        "resumed_from_epoch": result.resumed_from_epoch,
        "provenance": provenance(spec),
    })

