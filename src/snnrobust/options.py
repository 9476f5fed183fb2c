"""Typed options for every registered component: a signature annotation is the declaration.

A component declares each option's type and range in its factory's signature, e.g.
``steps: Annotated[int, Range(ge=1)]`` or ``form: Literal["paper", "released"]``; the one checker
``coerce_options`` validates config values against it at parse time, so a bad value fails before any
job is planned. Floats must be finite unless ``finite=False``.

Values are checked, never parsed: the string "8/255" where a number belongs is an error, as are
``True`` for a number, NaN, infinities and out-of-range values. A factory taking ``**kwargs`` may
declare its options as ``factory.option_types = {name: annotation}`` (defaults in ``factory.options``;
``declared_types(builder, skip)`` reads a builder's annotations for that).
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable

from snnrobust.errors import SnnRobustError


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option: ``ge``/``gt`` below, ``le``/``lt`` above (None = unbounded)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True

    def describe(self) -> str:
        bounds = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        parts = [f"{op} {_number(getattr(self, key))}" for key, op in bounds if getattr(self, key) is not None]
        return " and ".join(parts) or "any value"

    def holds(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))


# Shared declarations, so every component spells the common cases the same way.
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
Seed = Annotated[int, Range(ge=0, le=2**32 - 1)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
UnitInterval = Annotated[float, Range(ge=0, le=1)]


class _Bad(Exception):
    """A value that does not fit its declaration; ``args[0]`` says what was expected."""


_ANY = object()  # marker: no declaration, any value passes


def _check_int(value: Any, finite: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad("an integer")
    if isinstance(value, float):
        if not value.is_integer():  # also rejects NaN and infinities
            raise _Bad("an integer")
        value = int(value)
    return value


def _check_float(value: Any, finite: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad("a number")
    value = float(value)
    if finite and not math.isfinite(value):
        raise _Bad("a finite number")
    return value


def _check_bool(value: Any, finite: bool) -> bool:
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


def _check_str(value: Any, finite: bool) -> str:
    if not isinstance(value, str):
        raise _Bad("a string")
    return value


def _check_path(value: Any, finite: bool) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise _Bad("a path")
    return Path(value).expanduser()


def _check_dict(value: Any, finite: bool) -> dict:
    if not isinstance(value, dict):
        raise _Bad("a mapping")
    return value


# Plain types → checker (a registry, not an if-chain); bool before int matters only for readers.
_PLAIN: dict[Any, Callable[[Any, bool], Any]] = {
    bool: _check_bool,
    int: _check_int,
    float: _check_float,
    str: _check_str,
    Path: _check_path,
    dict: _check_dict,
}


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_value(hint: Any, value: Any, finite: bool = True) -> Any:
    """``value`` checked against the annotation ``hint`` (converted only int → float, str → Path)."""
    if hint is _ANY or hint is Any or hint is inspect.Parameter.empty:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        rng = next((m for m in hint.__metadata__ if isinstance(m, Range)), None)
        out = check_value(args[0], value, finite if rng is None else rng.finite)
        if rng is not None and isinstance(out, (int, float)) and not isinstance(out, bool):
            if not (math.isnan(out) or rng.holds(out)):
                raise _Bad(rng.describe())
        return out
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        expected = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_value(arg, value, finite)
            except _Bad as bad:
                expected.append(str(bad))
        raise _Bad(" or ".join(dict.fromkeys(expected)) + (" (or null)" if type(None) in args else ""))
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Bad("one of " + ", ".join(repr(a) for a in args))
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"a list ({_name(hint)})")
        inner = args[0] if args else _ANY
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Bad(f"a list of {len(args)} values")
            return tuple(check_value(a, v, finite) for a, v in zip(args, value))
        items = [check_value(inner, v, finite) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        return _check_dict(value, finite)
    if hint in _PLAIN:
        return _PLAIN[hint](value, finite)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise _Bad(f"a {_name(hint)}")
    return value


@dataclass(frozen=True)
class Option:
    """One declared option: its annotation and whether it must be given."""

    name: str
    hint: Any
    required: bool


def _hints(target: Any) -> dict[str, Any]:
    for obj in (target.__init__, target) if inspect.isclass(target) else (target,):
        try:
            hints = typing.get_type_hints(obj, include_extras=True)
        except (NameError, TypeError):
            hints = dict(getattr(obj, "__annotations__", {}))
        if hints:
            return hints
    return {}


def declared_options(target: Any, skip: int = 0) -> tuple[dict[str, Option], bool]:
    """(options by name, open) of a factory: ``open`` when it takes ``**kwargs`` it does not declare.

    ``skip`` drops the first positional parameters (e.g. ``num_classes, in_shape`` of a model factory).
    ``target.option_types`` (name → annotation), when present, is the declaration; failing that a
    ``target.options`` dict (name → default) declares the names only.
    """
    declared = getattr(target, "option_types", None)
    if declared is None and isinstance(getattr(target, "options", None), dict):
        declared = dict.fromkeys(target.options, _ANY)
    if declared is not None:
        return {n: Option(n, h, False) for n, h in declared.items()}, False
    params = list(inspect.signature(target).parameters.values())[skip:]
    hints = _hints(target)
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    options = {p.name: Option(p.name, hints.get(p.name, _ANY), p.default is inspect.Parameter.empty)
               for p in params if p.kind in plain}
    return options, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def declared_types(target: Any, skip: int = 0) -> dict[str, Any]:
    """name → annotation of a factory's declared options (for wrappers that build ``option_types``)."""
    return {n: o.hint for n, o in declared_options(target, skip)[0].items()}


def coerce_options(target: Any, opts: dict[str, Any], where: str, also_valid: Iterable[str] = (),
                   supplied: Iterable[str] = (), skip: int = 0) -> dict[str, Any]:
    """``opts`` checked against ``target``'s declared options; unknown, missing or bad ones are one-line errors.

    ``also_valid`` names options handled elsewhere (not unknown, not checked here, dropped from the result);
    ``supplied`` names options the caller passes itself (never required, and not allowed in ``opts``).
    """
    if not isinstance(opts, dict):
        raise SnnRobustError(f"options of {where} must be a mapping, got {opts!r}")
    declared, open_ = declared_options(target, skip)
    supplied = set(supplied)
    given_elsewhere = sorted(supplied & set(opts))
    if given_elsewhere:
        raise SnnRobustError(f"option {given_elsewhere[0]!r} of {where} is set by the caller, not in its options")
    valid = (set(declared) | set(also_valid)) - supplied
    unknown = sorted(set(opts) - valid)
    if unknown and not open_:
        raise SnnRobustError(
            f"unknown option {unknown[0]!r} for {where}; valid options: {', '.join(sorted(valid)) or 'none'}"
        )
    missing = [n for n, o in declared.items() if o.required and n not in opts and n not in supplied]
    if missing:
        raise SnnRobustError(f"{where} needs option {missing[0]!r}")
    also_valid = set(also_valid)
    out: dict[str, Any] = {}
    for name, value in opts.items():
        if name in also_valid and name not in declared:
            continue
        option = declared.get(name)
        try:
            out[name] = check_value(option.hint if option else _ANY, value)
        except _Bad as bad:
            raise SnnRobustError(f"option {name!r} of {where} must be {bad}, got {value!r}") from None
    return out
