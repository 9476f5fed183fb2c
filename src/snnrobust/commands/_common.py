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
    """A ``{name, gamma}`` surrogate swap as a context (the model's own surrogates when None): the
    attacks' ``surrogate`` gradient rule, for verbs that differentiate a model outside an attack."""
    from snnrobust.attacks import make_gradient_rule

    if surrogate is not None and not isinstance(surrogate, dict):
        raise SnnRobustError(f"surrogate must be a mapping {{name, gamma}}, got {surrogate!r}")
    return make_gradient_rule({"rule": "surrogate", **surrogate} if surrogate else None).applied(model)

