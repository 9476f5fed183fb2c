"""How an attack's gradient crosses the spike: a rule is set up as one context around the attack
(never by editing the model) and undone afterwards.

``surrogate`` swaps every neuron's surrogate for a named one of width γ (the SR paper's ensemble of
surrogates); ``rga`` makes every neuron backpropagate the rate rule of RGA (Bu et al., 2023), the SR
code's ``RateBp``. A new rule is one class with ``applied(model)`` plus one
``@GRADIENT_RULES.register`` line; an attack picks it with ``gradient: {rule: <name>, ...options}``.
"""

import contextlib
import functools
from typing import Annotated, Any, Callable, ContextManager, Iterator

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from snnrobust.attacks.patching import instance_forwards
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

    def label(self) -> str:
        """A short name for lists of rules (an ensemble's ``members`` column)."""
        return self.rule

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

    def label(self) -> str:
        return f"{self.name}:{self.gamma:g}"


def rate_slope(x_bar: torch.Tensor, tau: float) -> torch.Tensor:
    """RGA's derivative of a neuron's firing rate w.r.t. its time-mean input x̄ (threshold 1):
    (1 − 0.2 + 0.2τ)/(τ + 1) on [1 − τ, 2], 0.2 on [0, 1 − τ), 0 elsewhere; for τ = 1 (an IF
    neuron) that is 0.5·1[0 ≤ x̄ ≤ 2]."""
    upper = (1.0 - 0.2 + 0.2 * tau) / (tau + 1.0)
    main = (x_bar >= 1.0 - tau) & (x_bar <= 2.0)
    low = (x_bar >= 0.0) & (x_bar < 1.0 - tau)
    return main.to(x_bar.dtype) * upper + low.to(x_bar.dtype) * 0.2


class _RateGradient(torch.autograd.Function):
    """Spikes from the neuron's own forward; backward: ∂L/∂x[t] = ∂L/∂s[t] · r'(x̄/θ)/θ, the rate
    derivative at the time-mean input x̄ broadcast over t, and no gradient through time."""

    @staticmethod
    def forward(ctx, x_seq, neuron_forward, slope, threshold):
        spikes = neuron_forward(x_seq)  # autograd is off inside Function.forward: no surrogate graph
        ctx.save_for_backward(x_seq.mean(0) / threshold)
        ctx.slope, ctx.threshold = slope, threshold
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes):
        (u_bar,) = ctx.saved_tensors
        return grad_spikes * (ctx.slope(u_bar) / ctx.threshold).unsqueeze(0), None, None, None


def _neurons(model: nn.Module) -> list[nn.Module]:
    """Every spiking neuron of ``model`` (the modules ``use_surrogate`` swaps a surrogate in)."""
    return [m for m in model.modules() if hasattr(m, "surrogate_function") and hasattr(m, "v_threshold")]


@contextlib.contextmanager
def rate_gradient(model: nn.Module, tau: float = 1.0) -> Iterator[nn.Module]:
    """Within the block every spiking neuron of ``model`` backpropagates the RGA rate rule; spikes
    are unchanged. Each neuron's ``forward`` is wrapped by an instance attribute that is removed on
    exit (also on an exception), so the model is exactly as before."""
    neurons = _neurons(model)
    single = [type(m).__name__ for m in neurons if getattr(m, "step_mode", "m") != "m"]
    if single:
        raise SnnRobustError(f"gradient rule 'rga' needs multi-step neurons [T, B, ...], got {single[0]} in "
                             "single-step mode")
    slope = functools.partial(rate_slope, tau=tau)
    with instance_forwards((m, functools.partial(_rga_forward, m.forward, slope, float(m.v_threshold)))
                           for m in neurons):
        yield model


def _rga_forward(neuron_forward: Callable, slope: Callable, threshold: float, x_seq: torch.Tensor) -> torch.Tensor:
    return _RateGradient.apply(x_seq, neuron_forward, slope, threshold)


@GRADIENT_RULES.register("rga")
class RateGradientRule(GradientRule):
    """RGA (Bu et al., 2023; the SR code's ``RateBp``): every neuron's backward is the rate rule
    ∂L/∂x[t] = ∂L/∂s[t] · r'(x̄), with x̄ the neuron's input current averaged over the T steps and
    r' = :func:`rate_slope` (0.5·1[0 ≤ x̄ ≤ 2] for the default τ = 1); the forward is unchanged.

    How the T upstream gradients combine: each step keeps its own ∂L/∂s[t] and the one rate
    derivative is broadcast over t, as in the released ``RateBp``. A rate-coded layer sees the same
    gradient at every t (our models read out the time-mean of the logits, and every neuron under
    this rule passes a t-independent derivative), so this equals the rate chain rule
    mean_t(∂L/∂s[t]) · r'(x̄) whenever nothing in the network mixes time steps unevenly (phase
    coding's weights, max pooling over spikes); there the per-step reading is the released one.
    ``tau`` is RateBp's leak τ ∈ (0, 1]: 1 is the IF neuron of all the papers' models. The spikes
    are the neuron's own (fire at v ≥ θ; RateBp recomputes them with a strict >), and x̄ is taken
    in units of the threshold θ (θ = 1 in every model here, as in RateBp).
    """

    rule = "rga"

    def __init__(self, tau: Annotated[float, Range(gt=0, le=1)] = 1.0):
        tau = float(tau)
        if not 0.0 < tau <= 1.0:
            raise SnnRobustError(f"rga tau must be in (0, 1], got {tau}")
        self.tau = tau

    def applied(self, model: nn.Module) -> ContextManager:
        return rate_gradient(model, self.tau)

    def columns(self) -> dict[str, Any]:
        return {"gradient": self.rule, "surrogate": self.rule, "gamma": None}

    def label(self) -> str:
        return self.rule if self.tau == 1.0 else f"{self.rule}:tau={self.tau:g}"


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
