"""Models on disk: build the model a spec describes, save a trained one as model.pt, and rebuild it
checking that it is the model the asking spec describes (a model is what its labels say)."""

from __future__ import annotations

import json

from snnrobust.errors import SnnRobustError
from snnrobust.io import torch_load, torch_save
from snnrobust.commands._common import _check_keys, _take

# Options filled from the data (normalisation statistics), not chosen by a spec: never compared.
DATA_OPTIONS = ("mean", "std")


def model_spec_for(model_spec: dict, data_meta: dict) -> dict:
    """The full model spec: ``{arch, options}`` with the data's train statistics as image normalisation
    unless the spec sets them (graph models take none)."""
    _check_keys(model_spec, {"arch", "options"}, "model spec")
    options = dict(model_spec.get("options") or {})
    if data_meta.get("kind", "image") in ("image", "events"):
        for key in DATA_OPTIONS:
            options.setdefault(key, data_meta.get(key))
    return {"arch": _take(model_spec, "arch", required=True), "options": options}


def build_from_spec(model_spec: dict, data_meta: dict):
    """Build the model a spec describes; normalisation defaults to the data's train statistics."""
    from snnrobust.models import build_model

    full = model_spec_for(model_spec, data_meta)
    return build_model(full["arch"], num_classes=int(data_meta["num_classes"]),
                       in_shape=tuple(data_meta["in_shape"]), **full["options"])


def save_trained(path: str, model, model_spec: dict, spec: dict, data_meta: dict) -> None:
    """Write model.pt: the weights plus what rebuilds them (full model spec, data kind, classes, shape)."""
    torch_save(
        {
            "state_dict": model.state_dict(),
            "model_spec": json.dumps(model_spec_for(model_spec, data_meta), sort_keys=True),
            "spec": json.dumps(spec, sort_keys=True),
            "kind": str(data_meta.get("kind", "image")),
            "num_classes": int(data_meta["num_classes"]),
            "in_shape": [int(v) for v in data_meta["in_shape"]],
        },
        path,
    )


def _effective_options(arch: str, options: dict) -> dict:
    """Every option of ``arch`` with defaults filled in, minus the data-derived ones, JSON-normalised
    (tuples compare equal to lists, 1 to 1.0)."""
    from snnrobust.models import model_options

    merged = {**model_options(arch), **options}
    return json.loads(json.dumps({k: v for k, v in merged.items() if k not in DATA_OPTIONS}, default=list))


def check_expected(path: str, stored: dict, expect: dict) -> None:
    """A one-line error naming the first arch or option where the stored model differs from ``expect``."""
    _check_keys(expect, {"arch", "options"}, "expected model spec")
    want_arch = _take(expect, "arch", required=True)
    if str(want_arch) != stored["arch"]:
        raise SnnRobustError(f"model {path} is a {stored['arch']} but the spec asks for {want_arch}")
    have = _effective_options(stored["arch"], stored.get("options", {}))
    want = _effective_options(stored["arch"], expect.get("options") or {})
    for key in sorted(set(have) | set(want)):
        if have.get(key, "<unset>") != want.get(key, "<unset>"):
            raise SnnRobustError(f"model {path} was trained with {key}={have.get(key, '<unset>')!r} "
                                 f"but the spec asks for {key}={want.get(key, '<unset>')!r}")


def _check_data(path: str, meta: dict, data_meta: dict) -> None:
    """The model must fit the data it is applied to: same kind, number of classes and input shape."""
    for key in ("kind", "num_classes", "in_shape"):
        want = data_meta.get(key, "image" if key == "kind" else None)
        want = [int(v) for v in want] if key == "in_shape" else want
        if want != meta[key]:
            raise SnnRobustError(f"model {path} was trained on data with {key}={meta[key]!r}, "
                                 f"not {key}={want!r} as given")


def load_trained(path: str, data_meta: dict | None = None, expect: dict | None = None):
    """Rebuild a trained image or graph model from ``model.pt`` (loaded with ``weights_only=True``).

    ``data_meta`` (the data it will see) and ``expect`` (the ``{arch, options}`` the asking spec
    names; data-derived ``mean``/``std`` are ignored) are checked when given: a mismatch is a
    one-line error, never a mislabelled result. Returns ``(model in eval mode, train spec)``.
    """
    state = torch_load(path)
    try:
        meta = {"kind": state.get("kind", "image"), "num_classes": int(state["num_classes"]),
                "in_shape": [int(v) for v in state["in_shape"]]}
        model_spec = json.loads(state["model_spec"])
        spec = json.loads(state["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SnnRobustError(f"model file {path} is not a snnrobust model: {str(exc).splitlines()[0]}") from None
    if data_meta is not None:
        _check_data(path, meta, data_meta)
    if expect is not None:
        check_expected(path, model_spec, expect)
    try:
        model = build_from_spec(model_spec, meta)
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise SnnRobustError(f"model file {path} is not a snnrobust model: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model, spec
