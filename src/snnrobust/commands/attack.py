"""Verb `attack`: one attack on one trained model over the fixed evaluation subset."""

from __future__ import annotations

import torch

from snnrobust.io import write_json
from snnrobust.provenance import provenance
from snnrobust.commands._common import _check_keys, _eval_batches, _surrogate_context, _take
from snnrobust.commands.models_io import load_trained

def attack(model_path: str, data_path: str, spec: dict, out: str, progress: bool = True) -> None:
    from snnrobust.attacks import evaluate_attack, make_attack
    from snnrobust.data import load_prepared

    _check_keys(spec, {"attack", "eps", "n_eval", "batch_size", "seed", "surrogate", "labels"}, "attack spec")
    attack_spec = dict(_take(spec, "attack", required=True))
    _check_keys(attack_spec, {"name", "options"}, "attack")
    eps = float(_take(spec, "eps", required=True))
    atk = make_attack(_take(attack_spec, "name", required=True), eps=eps, **attack_spec.get("options", {}))
    data = load_prepared(data_path)
    model, train_spec = load_trained(model_path)
    torch.manual_seed(int(spec.get("seed", 0)))
    batches = _eval_batches(data, spec.get("n_eval"), int(spec.get("batch_size", 128)))
    with _surrogate_context(model, spec.get("surrogate")):
        summary = evaluate_attack(model, atk, batches, seed=int(spec.get("seed", 0)), progress=progress)
    surrogate = spec.get("surrogate") or {}
    row = {
        **spec.get("labels", {}),
        "attack_name": atk.name,
        "eps": eps,
        "eps_255": round(eps * 255, 6),
        "steps": getattr(atk, "steps", 1),
        "alpha": getattr(atk, "alpha", None),
        "random_start": getattr(atk, "random_start", False),
        "surrogate": surrogate.get("name", "train"),
        "gamma": surrogate.get("gamma"),
        **summary,
    }
    write_json(out, {"rows": [row], "attack": repr(atk), "provenance": provenance(spec)})

