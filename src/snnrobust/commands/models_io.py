"""Models on disk: build the model a spec describes, and rebuild a trained one from model.pt."""

from __future__ import annotations

import json


from snnrobust.errors import SnnRobustError
from snnrobust.io import torch_load
from snnrobust.commands._common import _check_keys, _take


def build_from_spec(model_spec: dict, data_meta: dict):
    """Build the model a spec describes; normalisation defaults to the data's train statistics."""
    from snnrobust.models import build_model

    _check_keys(model_spec, {"arch", "options"}, "model spec")
    options = dict(model_spec.get("options", {}))
    if data_meta.get("kind", "image") == "image":
        options.setdefault("mean", data_meta.get("mean"))
        options.setdefault("std", data_meta.get("std"))
    return build_model(
        _take(model_spec, "arch", required=True),
        num_classes=int(data_meta["num_classes"]),
        in_shape=tuple(data_meta["in_shape"]),
        **options,
    )


def load_trained(path: str, data_meta: dict | None = None):
    """Rebuild a trained model from ``model.pt`` (loaded with ``weights_only=True``)."""
    state = torch_load(path)
    try:
        meta = {"num_classes": state["num_classes"], "in_shape": state["in_shape"], "kind": "image"}
        model_spec = json.loads(state["model_spec"])
        model = build_from_spec(model_spec, {**meta, "mean": None, "std": None})
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError, json.JSONDecodeError) as exc:
        raise SnnRobustError(f"model file {path} is not a snnrobust model: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model, json.loads(state["spec"])

