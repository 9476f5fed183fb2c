"""Models on disk: build the model a spec describes, save a trained one as model.pt, and rebuild it
checking that it is the model the asking spec describes (a model is what its labels say).

A model file records a content hash (sha256 of its weights and of the metadata that rebuilds and labels
them) and the clean test accuracy its model reached at the end of training; every load checks the hash, so
weights put under another model's metadata (same tensor shapes, so they would load) are refused, and an
attack checks the clean accuracy it measures against the recorded one (``check_clean_accuracy``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

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


#: The model file's key holding its content hash.
HASH_KEY = "sha256"
#: An attack whose clean accuracy falls more than this many points below the recorded one is refused
#: (or more than three binomial standard deviations of the evaluation subset's size, if that is larger).
CLEAN_DROP_POINTS = 20.0


def content_hash(state: dict) -> str:
    """sha256 of a model file's content but the hash itself: every tensor of the state dict (name, dtype,
    shape, bytes, in name order, wherever it lives) and the metadata as canonical JSON."""
    import torch

    digest = hashlib.sha256()
    weights = state["state_dict"]
    for name in sorted(weights):
        value = weights[name]
        if torch.is_tensor(value):
            t = value.detach().to("cpu").contiguous()
            digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps([name, repr(value)]).encode())
    meta = {k: v for k, v in state.items() if k not in ("state_dict", HASH_KEY)}
    digest.update(json.dumps(meta, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


def save_trained(path: str, model, model_spec: dict, spec: dict, data_meta: dict,
                 clean_acc: float | None = None, clean_n: int | None = None) -> None:
    """Write model.pt: the weights plus what rebuilds them (full model spec, data kind, classes, shape), the
    clean test accuracy (%) the model reached at the end of training on ``clean_n`` test examples, and the
    content hash of all of it."""
    state = {
        "state_dict": model.state_dict(),
        "model_spec": json.dumps(model_spec_for(model_spec, data_meta), sort_keys=True),
        "spec": json.dumps(spec, sort_keys=True),
        "kind": str(data_meta.get("kind", "image")),
        "num_classes": int(data_meta["num_classes"]),
        "in_shape": [int(v) for v in data_meta["in_shape"]],
        "clean_acc": None if clean_acc is None else float(clean_acc),
        "clean_n": None if clean_n is None else int(clean_n),
    }
    state[HASH_KEY] = content_hash(state)
    torch_save(state, path)


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


#: Labels a row takes from its spec that the model file's training labels must agree with.
RUN_LABELS = ("dataset", "model", "method", "seed")


def check_labels(path: str, trained: dict | None, labels: dict | None, what: str = "the spec labels") -> None:
    """The labels a result will carry name the run the file was trained as: a model file trained as
    ``model: ann_vgg_tiny`` is never scored under ``model: snn_vgg_tiny`` (keys both sides record)."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        raise SnnRobustError(f"{what} must be a mapping, got {labels!r}")
    for key in RUN_LABELS:
        if key in labels and key in (trained or {}) and str(labels[key]) != str(trained[key]):
            raise SnnRobustError(f"model {path} was trained as {key}={trained[key]!r}, but {what} "
                                 f"say {key}={labels[key]!r}")


def _verify_hash(path: str, state: dict) -> None:
    recorded = state.get(HASH_KEY)
    if recorded is None:
        raise SnnRobustError(f"model file {path} records no content hash (written by an older snnrobust): "
                             f"delete it and rerun to retrain it")
    if content_hash(state) != recorded:
        raise SnnRobustError(f"model file {path} does not match its content hash: its weights or metadata were "
                             f"changed after training; delete it and rerun to retrain it")


@dataclass
class Trained:
    """A model rebuilt from model.pt, its training spec, and the clean test accuracy (%) it recorded at the
    end of training on ``clean_n`` test examples (None when not recorded)."""

    model: object
    spec: dict
    clean_acc: float | None = None
    clean_n: int | None = None


def load_trained_record(path: str, data_meta: dict | None = None, expect: dict | None = None,
                        labels: dict | None = None, labels_what: str = "the spec labels") -> Trained:
    """Rebuild a trained image or graph model from ``model.pt`` (loaded with ``weights_only=True``).

    The file's content hash is verified first. ``data_meta`` (the data it will see), ``expect`` (the
    ``{arch, options}`` the asking spec names; data-derived ``mean``/``std`` are ignored) and ``labels`` (the
    labels the result will carry) are checked when given: a mismatch is a one-line error, never a
    mislabelled result.
    """
    state = torch_load(path)
    try:
        meta = {"kind": state.get("kind", "image"), "num_classes": int(state["num_classes"]),
                "in_shape": [int(v) for v in state["in_shape"]]}
        model_spec = json.loads(state["model_spec"])
        spec = json.loads(state["spec"])
        if not isinstance(state["state_dict"], dict) or not isinstance(spec, dict):
            raise TypeError("no state dict or training spec")
        clean_acc, clean_n = state.get("clean_acc"), state.get("clean_n")
        clean_acc = None if clean_acc is None else float(clean_acc)
        clean_n = None if clean_n is None else int(clean_n)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnnRobustError(f"model file {path} is not a snnrobust model: {str(exc).splitlines()[0]}") from None
    _verify_hash(path, state)
    if data_meta is not None:
        _check_data(path, meta, data_meta)
    if expect is not None:
        check_expected(path, model_spec, expect)
    check_labels(path, spec.get("labels"), labels, labels_what)
    try:
        model = build_from_spec(model_spec, meta)
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise SnnRobustError(f"model file {path} is not a snnrobust model: {str(exc).splitlines()[0]}") from None
    model.eval()
    return Trained(model, spec, clean_acc, clean_n)


def load_trained(path: str, data_meta: dict | None = None, expect: dict | None = None,
                 labels: dict | None = None):
    """``load_trained_record`` as ``(model in eval mode, train spec)``."""
    trained = load_trained_record(path, data_meta, expect, labels)
    return trained.model, trained.spec


def check_clean_accuracy(path: str, trained: Trained, measured: float, n: int) -> None:
    """The clean accuracy an attack measures on its evaluation subset may not fall far below the one the
    model recorded at the end of training: more than ``CLEAN_DROP_POINTS`` points, or three binomial
    standard deviations of an ``n``-sample estimate if that is more. Otherwise the weights are not the model
    the file describes, and the attack's numbers are no result."""
    if trained.clean_acc is None or not n:
        return
    p = min(max(trained.clean_acc / 100.0, 0.0), 1.0)
    tolerance = max(CLEAN_DROP_POINTS, 300.0 * math.sqrt(p * (1.0 - p) / n))
    drop = trained.clean_acc - measured
    if drop > tolerance:
        raise SnnRobustError(
            f"model {path}: clean accuracy {measured:.1f}% on the {n} evaluation examples is {drop:.1f} points "
            f"below the {trained.clean_acc:.1f}% it recorded at the end of training (tolerance {tolerance:.1f}): "
            f"its weights do not behave as the model it describes; no result written")
