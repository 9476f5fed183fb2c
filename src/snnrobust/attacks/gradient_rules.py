"""How an attack's gradient crosses the spike: a rule is set up as one context around the attack
(never by editing the model) and undone afterwards.

``surrogate`` swaps every neuron's surrogate for a named one of width γ (the SR paper's ensemble of
surrogates). A new rule (e.g. RGA) is one class with ``applied(model)`` plus one
``@GRADIENT_RULES.register`` line; an attack picks it with ``gradient: {rule: <name>, ...options}``.
"""

import contextlib
from typing import Annotated, Any, ContextManager

from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.options import Range
from snnrobust.registry import Registry
from snnrobust.surrogates import make_surrogate, use_surrogate


class GradientRule:
    """Base: ``applied(model)`` is a context manager in which the model's gradient follows the rule."""

    rule = "rule"

    def applied(self, model: nn.Module) -> ContextManager:
        raise NotImplementedError

    def columns(self) -> dict[str, Any]:
        """Result columns naming the rule: ``gradient`` (rule), ``surrogate`` and ``gamma``."""
        return {"gradient": self.rule, "surrogate": self.rule, "gamma": None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


GRADIENT_RULES: Registry[type[GradientRule]] = Registry("gradient rule")


@GRADIENT_RULES.register("surrogate")
class SurrogateRule(GradientRule):
    """Backpropagate through every spiking neuron with surrogate ``name`` of width ``gamma``."""

    rule = "surrogate"

    def __init__(self, name: str = "triangle", gamma: Annotated[float, Range(gt=0)] = 1.0):
        make_surrogate(name, gamma)  # an unknown name or a bad width fails here, at construction
        self.name = str(name)
        self.gamma = float(gamma)

    def applied(self, model: nn.Module) -> ContextManager:
        return use_surrogate(model, self.name, self.gamma)

    def columns(self) -> dict[str, Any]:
        return {"gradient": self.rule, "surrogate": self.name, "gamma": self.gamma}


class TrainedGradient(GradientRule):
    """No rule given: the model's own (training) surrogates, untouched."""

    rule = "train"

    def applied(self, model: nn.Module) -> ContextManager:
        return contextlib.nullcontext(model)


def make_gradient_rule(spec: dict | None) -> GradientRule:
    """The rule a spec ``{rule: <name>, ...options}`` describes (None: the model's own surrogates)."""
    if spec is None:
        return TrainedGradient()
    if not isinstance(spec, dict) or "rule" not in spec:
        raise SnnRobustError(f"gradient must be a mapping with a 'rule' key, got {spec!r}")
    rule = spec["rule"]
    options = {k: v for k, v in spec.items() if k != "rule"}
    # Not GRADIENT_RULES.create(rule, **options): a rule's own option may be called ``name``.
    return GRADIENT_RULES.get(rule)(**GRADIENT_RULES.check_options(rule, options))
