"""Helpers shared by the CLI verbs: spec key checks, the fixed evaluation subset, the surrogate context."""

from __future__ import annotations

from typing import Any


from snnrobust.errors import SnnRobustError


def _take(spec: dict, key: str, default: Any = None, required: bool = False) -> Any:
    if required and key not in spec:
        raise SnnRobustError(f"spec is missing {key!r}")
    return spec.get(key, default)


def _check_keys(spec: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SnnRobustError(f"unknown {what} key(s): {', '.join(unknown)}")


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

