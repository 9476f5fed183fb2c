"""The typed-option checker: every annotation kind, strict values (no parsing), ranges, and the registries."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import pytest

from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveInt, Range, Seed, coerce_options, declared_types
from snnrobust.registry import Registry


def component(steps: PositiveInt, eps: Annotated[float, Range(ge=0, le=1)] = 0.0, seed: Seed = 0,
              form: Literal["paper", "released"] = "paper", alpha: float | None = None, flag: bool = False,
              root: Path = Path("."), name: str = "x", extra: dict | None = None, widths: list[int] | None = None,
              pair: tuple[int, int] = (1, 2), span: Annotated[float, Range(finite=False)] = 0.0, free=None):
    """A factory using every supported annotation."""


GOOD = [
    ({"steps": 3}, {"steps": 3}),
    ({"steps": 3, "eps": 1}, {"steps": 3, "eps": 1.0}),  # an int where a float belongs is a number
    ({"steps": 3.0}, {"steps": 3}),  # an integral float is the integer
    ({"steps": 1, "form": "released"}, {"steps": 1, "form": "released"}),
    ({"steps": 1, "alpha": None}, {"steps": 1, "alpha": None}),
    ({"steps": 1, "root": "~/d"}, {"steps": 1, "root": Path("~/d").expanduser()}),
    ({"steps": 1, "extra": {"a": [1]}}, {"steps": 1, "extra": {"a": [1]}}),
    ({"steps": 1, "widths": [1, 2.0]}, {"steps": 1, "widths": [1, 2]}),
    ({"steps": 1, "pair": [3, 4]}, {"steps": 1, "pair": (3, 4)}),
    ({"steps": 1, "span": math.inf}, {"steps": 1, "span": math.inf}),
    ({"steps": 1, "free": object}, {"steps": 1, "free": object}),
]


@pytest.mark.parametrize("opts, expected", GOOD)
def test_good_values_pass_typed(opts, expected):
    assert coerce_options(component, opts, "thing 'c'") == expected


BAD = [
    ({"steps": "3"}, "option 'steps' of thing 'c' must be an integer, got '3'"),
    ({"steps": True}, "must be an integer, got True"),
    ({"steps": 2.5}, "must be an integer, got 2.5"),
    ({"steps": 0}, "must be >= 1, got 0"),
    ({"steps": 1, "eps": "8/255"}, "option 'eps' of thing 'c' must be a number, got '8/255'"),
    ({"steps": 1, "eps": math.nan}, "must be a finite number, got nan"),
    ({"steps": 1, "eps": math.inf}, "must be a finite number"),
    ({"steps": 1, "eps": 1.5}, "must be >= 0 and <= 1, got 1.5"),
    ({"steps": 1, "eps": False}, "must be a number, got False"),
    ({"steps": 1, "seed": -1}, "must be >= 0 and <= 4294967295, got -1"),
    ({"steps": 1, "seed": 2**40}, "<= 4294967295"),
    ({"steps": 1, "form": "Paper"}, "must be one of 'paper', 'released', got 'Paper'"),
    ({"steps": 1, "alpha": "0.1"}, "must be a number (or null)"),
    ({"steps": 1, "flag": "yes"}, "must be true or false, got 'yes'"),
    ({"steps": 1, "flag": 1}, "must be true or false, got 1"),
    ({"steps": 1, "root": 3}, "must be a path"),
    ({"steps": 1, "name": 3}, "must be a string, got 3"),
    ({"steps": 1, "extra": [1]}, "must be a mapping (or null)"),
    ({"steps": 1, "widths": [1, "2"]}, "'widths'"),
    ({"steps": 1, "pair": [1, 2, 3]}, "a list of 2 values"),
    ({"steps": 1, "stepz": 1}, "unknown option 'stepz' for thing 'c'; valid options: alpha,"),
    ({}, "thing 'c' needs option 'steps'"),
]


@pytest.mark.parametrize("opts, needle", BAD)
def test_bad_values_are_one_line_errors(opts, needle):
    with pytest.raises(SnnRobustError) as excinfo:
        coerce_options(component, opts, "thing 'c'")
    assert needle in str(excinfo.value) and "\n" not in str(excinfo.value)


class Attackish:
    def __init__(self, eps: float, steps: PositiveInt = 10):
        self.eps, self.steps = eps, steps


def loose(a: int, **kwargs):
    return a, kwargs


def declared(num_classes, in_shape, **opts):
    return opts


declared.option_types = {"T": PositiveInt, "surrogate": str}
declared.options = {"T": 4, "surrogate": "triangle"}


def test_registry_checks_names_and_values_and_creates_typed():
    reg: Registry = Registry("attack")
    reg.register("pgd")(Attackish)
    reg.register("loose")(loose)
    reg.register("declared")(declared)
    assert reg.check_options("pgd", {"steps": 3}, supplied=["eps"]) == {"steps": 3}
    assert reg.create("pgd", eps=1, steps=2.0).steps == 2  # values come out as declared
    with pytest.raises(SnnRobustError, match="option 'steps' of attack 'pgd' must be >= 1, got 0"):
        reg.check_options("pgd", {"steps": 0}, supplied=["eps"])
    with pytest.raises(SnnRobustError, match="'eps' of attack 'pgd' is set by the caller"):
        reg.check_options("pgd", {"eps": 0.1}, supplied=["eps"])
    with pytest.raises(SnnRobustError, match="attack 'pgd' needs option 'eps'"):
        reg.create("pgd")
    assert reg.option_names("loose") is None and reg.check_options("loose", {"a": 1, "z": "any"}) == {"a": 1, "z": "any"}
    with pytest.raises(SnnRobustError, match="'a' of attack 'loose' must be an integer"):
        reg.check_options("loose", {"a": "1"})
    assert reg.option_names("declared") == {"T", "surrogate"}
    with pytest.raises(SnnRobustError, match="'T' of attack 'declared' must be >= 1"):
        reg.check_options("declared", {"T": 0})
    with pytest.raises(SnnRobustError, match="unknown option 'TT'"):
        reg.check_options("declared", {"TT": 0})


def test_declared_types_of_a_builder_skip_positional_inputs():
    def builder(num_classes, in_shape, neuron, width: Annotated[float, Range(gt=0)] = 1.0):
        return None

    assert list(declared_types(builder, skip=3)) == ["width"]


def test_every_registered_data_source_and_model_takes_its_own_defaults():
    """Each registry declares its options so configs are checked before any job: every default passes."""
    from snnrobust.data import DATASETS
    from snnrobust.data.sources import check_source_options
    from snnrobust.models import MODELS, model_options

    for name in DATASETS:
        try:
            check_source_options(name, {})
        except SnnRobustError as exc:  # only a required option (a data folder) may be missing
            assert "needs option" in str(exc), exc
    for arch in MODELS:
        defaults = {k: v for k, v in model_options(arch).items() if v is not None}
        assert set(MODELS.check_options(arch, defaults)) == set(defaults)
