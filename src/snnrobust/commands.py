"""What each CLI verb does: read inputs, call the library, write tidy outputs atomically."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from snnrobust.errors import SnnRobustError
from snnrobust.io import atomic_path, torch_load, torch_save, write_json
from snnrobust.provenance import provenance, spec_hash


def _take(spec: dict, key: str, default: Any = None, required: bool = False) -> Any:
    if required and key not in spec:
        raise SnnRobustError(f"spec is missing {key!r}")
    return spec.get(key, default)


def _check_keys(spec: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SnnRobustError(f"unknown {what} key(s): {', '.join(unknown)}")


# ---------------------------------------------------------------- prepare
def prepare(source: str, spec: dict, out: str) -> None:
    from snnrobust.data import prepare_dataset

    prepare_dataset(source, out, **spec)


# ---------------------------------------------------------------- models on disk
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


# ---------------------------------------------------------------- train
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


# ---------------------------------------------------------------- attack
def _eval_batches(data, n_eval: int | None, batch_size: int):
    """The fixed evaluation subset: the first ``n_eval`` test images, unshuffled (RobustBench style)."""
    return list(data.loader("test", batch_size, shuffle=False, seed=0, limit=n_eval))


def _surrogate_context(model, surrogate: dict | None):
    import contextlib

    if not surrogate:
        return contextlib.nullcontext()
    from snnrobust.surrogates import use_surrogate

    _check_keys(surrogate, {"name", "gamma"}, "surrogate")
    return use_surrogate(model, surrogate["name"], float(surrogate.get("gamma", 1.0)))


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


# ---------------------------------------------------------------- analyze
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


# ---------------------------------------------------------------- tables and figures
def read_rows(paths: list[str]) -> pd.DataFrame:
    """Concatenate the ``rows`` of result JSON files, or CSV files, into one tidy frame."""
    frames = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SnnRobustError(f"result file not found: {path}")
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
            frame["source_file"] = str(path)
            frames.append(frame)
        else:
            try:
                frames.append(pd.DataFrame(json.loads(path.read_text())["rows"]))
            except (json.JSONDecodeError, KeyError):
                raise SnnRobustError(f"not a snnrobust result file: {path}") from None
    return pd.concat(frames, ignore_index=True)


def table(inputs: list[str], spec: dict, out: str, out_html: str | None) -> None:
    from snnrobust.report.build import build_table

    df = build_table(read_rows(inputs), spec)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    if out_html:
        from snnrobust.report.tables import to_html

        with atomic_path(out_html) as tmp:
            tmp.write_text(to_html(df, spec.get("title", Path(out).stem)))


def figure(inputs: list[str], spec: dict, out: str) -> None:
    from snnrobust.report.figures import FIGURES

    from snnrobust.report.build import figure_frame

    kind = _take(spec, "kind", required=True)
    draw = FIGURES.get(kind)
    df = figure_frame(kind, read_rows(inputs))
    with atomic_path(out) as tmp:
        draw(df, tmp.with_suffix(Path(out).suffix))
        tmp.with_suffix(Path(out).suffix).replace(tmp)
