"""Check and coerce user options (from Python, YAML or the CLI) against a function's signature."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable

from snnrobust.errors import SnnRobustError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError


def _to_str(value: Any) -> str:
    if not isinstance(value, (str, Path)):
        raise ValueError
    return str(value)


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    str: _to_str,
    Path: lambda v: Path(_to_str(v)).expanduser(),
}


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); ``X`` → (X, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def coerce_options(func: Callable, opts: dict[str, Any], where: str,
                   also_valid: Iterable[str] = ()) -> dict[str, Any]:
    """Return ``opts`` converted to ``func``'s annotated types; unknown, missing or bad ones are one-line errors.

    ``also_valid`` names options handled elsewhere: they are not reported as unknown and are listed as valid.
    """
    params = inspect.signature(func).parameters
    hints = typing.get_type_hints(func)
    valid = set(params) | set(also_valid)
    unknown = sorted(set(opts) - valid)
    if unknown:
        raise SnnRobustError(
            f"unknown option {unknown[0]!r} for {where}; valid options: {', '.join(sorted(valid)) or 'none'}"
        )
    opts = {k: v for k, v in opts.items() if k in params}
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in opts]
    if missing:
        raise SnnRobustError(f"{where} needs option {missing[0]!r}")
    out: dict[str, Any] = {}
    for name, value in opts.items():
        kind, optional = _split_optional(hints.get(name, str))
        if value is None and optional:
            out[name] = None
            continue
        try:
            out[name] = _CONVERTERS[kind](value)
        except (ValueError, TypeError, KeyError):
            kind_name = getattr(kind, "__name__", str(kind))
            raise SnnRobustError(f"option {name!r} for {where} must be {kind_name}, got {value!r}") from None
    return out
