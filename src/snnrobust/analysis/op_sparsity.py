"""Gradient sparsity per operation (trail paper Sec. 4.3.1, Figs. 3/5) and the data of its Theorem 4.4.

For every operation of a model (``taps.OpKind``: conv, BN, pooling, neuron, residual add, linear, and ``input``,
the model's input in the measured space), per sample: the fraction of exact zeros (|g| ≤ ``zero_tol``) of the
gradient w.r.t. the operation's input, and that gradient's L2 norm (the paper checks the norm so that sparsity is
not shattered gradients). Both are summarised over the evaluation subset. The objective is the SR paper's
two-logit f_y (Eq. 9) summed over the batch, as ``grad_norms`` (``fy`` picks the logits), in eval mode.

Theorem 4.4 as data: ``weight_zero_fraction`` is the fraction of exact zeros of the per-sample gradient of the
first weight layer's weight (the first conv), summed over T (``weight_grads``); the paper relates it to the
input gradient's density (the first conv's input gradient is the gradient w.r.t. the encoded input s[t]).

The measuring point is the clean input, or (``attack: {name, options}``, options with ``eps``) the adversarial
point a registered attack finds first. ``space`` is where the point lives: ``pixel`` (the image) or ``spike``
(the encoded sequence, as the trail code measures; needed where the encoder passes no gradient, e.g. phase coding);
with an attack it is the attack's space.
"""

from __future__ import annotations

from typing import Annotated, Iterable, Literal, get_args

import torch

from snnrobust.analysis.gradients import FY_READINGS, fy_two_logit
from snnrobust.analysis.registry import ANALYSES, FyReading, PerSampleAnalysis, summary_row
from snnrobust.analysis.taps import FirstLayer, OpKind, OpTaps, Tap
from snnrobust.analysis.weight_grads import per_sample_weight_grad
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range, Seed

#: Row columns that locate a statistic in the network (``op_index``: position in call order, 0 = input).
OP_COLUMNS = ("op_index", "op", "op_kind", "op_type", "call", "branch")


def zero_and_norm(grad: torch.Tensor, sample_dim: int, zero_tol: float = 0.0) -> dict[str, torch.Tensor]:
    """Per sample: the fraction of entries with |g| ≤ zero_tol (``zero_fraction``) and the L2 norm (``grad_norm``)."""
    flat = grad.movedim(sample_dim, 0).flatten(1)
    return {"zero_fraction": (flat.abs() <= zero_tol).double().mean(1), "grad_norm": flat.double().norm(dim=1)}


def point_attack(spec: dict | None):
    """The attack ``{name, options}`` (options with ``eps``) that finds the measuring point, built and so checked
    now (None: the clean input)."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "options"}:
        raise SnnRobustError(f"option attack must be {{name, options}} or null, got {spec!r}")
    options = dict(spec.get("options") or {})
    if "eps" not in options:
        raise SnnRobustError(f"option attack needs options.eps (the attack's budget), got {spec!r}")
    from snnrobust.attacks import make_attack

    return make_attack(spec["name"], **options)


def measure_ops(model, z: torch.Tensor, y: torch.Tensor, space: str, kinds: set[str], fy: str,
                weight: bool) -> tuple[list[Tap], FirstLayer | None]:
    """One forward and backward of Σ f_y from the point ``z`` of ``space``: the taps of the ``kinds`` operations
    (``input`` first, index 0) with their gradients, and the first weight layer (None unless ``weight``)."""
    from snnrobust.attacks.spaces import SPACES

    where = SPACES.get(space)
    z = z.detach().requires_grad_(True)
    with torch.enable_grad(), OpTaps(model, kinds - {"input"}, weight, first_index=1) as taps:
        objective = fy_two_logit(FY_READINGS.get(fy)(model, where.forward(model, z)), y).sum()
        (grad,) = torch.autograd.grad(objective, z, allow_unused=True) if objective.requires_grad else (None,)
    if grad is None:
        raise SnnRobustError(f"op_sparsity: no gradient reaches the model input in space {space!r} "
                             "(a non-differentiable encoder?): measure in space 'spike'")
    head = [Tap(0, "input", "input", space, 0, 0, where.batch_dim, z.to("meta"), grad)] if "input" in kinds else []
    return head + taps.taps, taps.first


@ANALYSES.register("op_sparsity")
class OpSparsity(PerSampleAnalysis):
    """Per operation (network order): ``zero_fraction`` and ``grad_norm`` of the gradient w.r.t. its input, one row
    per input (``branch``: 0, or 0 = shortcut and 1 = residual path for an add), with ``op`` (module path),
    ``op_kind``, ``op_type`` (class), ``call`` and ``op_index``; and (``weight``) ``weight_zero_fraction`` of the
    first layer's per-sample weight gradient (Theorem 4.4). ``mean`` is the value over the evaluation samples.
    ``kinds`` selects operation kinds (null: all)."""

    STATISTICS = ("zero_fraction", "grad_norm", "weight_zero_fraction")

    def __init__(self, fy: FyReading = "released", kinds: list[OpKind] | None = None, attack: dict | None = None,
                 space: Literal["pixel", "spike"] | None = None, weight: bool = True,
                 zero_tol: Annotated[float, Range(ge=0)] = 0.0, seed: Seed = 0):
        if kinds is not None and not kinds:
            raise SnnRobustError("option kinds must name at least one operation kind (or be null: all)")
        self.fy, self.kinds = fy, set(get_args(OpKind) if kinds is None else kinds)
        self.attack = point_attack(attack)
        self.attack_name = "clean" if attack is None else str(attack["name"])
        if self.attack is not None and space not in (None, self.attack.space):
            raise SnnRobustError(f"option space {space!r} differs from the attack's space {self.attack.space!r}")
        self.space = self.attack.space if self.attack is not None else (space or "pixel")
        self.weight, self.zero_tol, self.seed = weight, float(zero_tol), int(seed)
        self._generator: torch.Generator | None = None

    def __call__(self, model, batches: Iterable) -> list[dict]:
        self._generator = None  # reseeded per call: the same model and data give the same attack points
        return super().__call__(model, batches)

    def point(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The measuring point in ``self.space``: the clean input, or the attack's adversarial point."""
        from snnrobust.attacks.spaces import SPACES

        if self.attack is None:
            return SPACES.get(self.space).start(model, x)
        if self._generator is None:
            self._generator = torch.Generator(device=x.device).manual_seed(self.seed)
        return self.attack(model, x, y, self._generator)

    def per_sample(self, model, x, y) -> dict:
        z = self.point(model, x, y)
        was_training = model.training
        model.eval()
        try:
            taps, first = measure_ops(model, z, y, self.space, self.kinds, self.fy, self.weight)
        finally:
            model.train(was_training)
        out = {}
        for tap in taps:
            key = (tap.index, tap.op, tap.op_kind, tap.op_type, tap.call, tap.branch)
            grad = tap.gradient(z.device)
            if grad.shape[tap.sample_dim] != y.shape[0]:
                raise SnnRobustError(f"op_sparsity: cannot find the sample dimension of {tap.op}'s input "
                                     f"{list(grad.shape)} (batch {y.shape[0]})")
            for name, values in zero_and_norm(grad, tap.sample_dim, self.zero_tol).items():
                out[(name, *key)] = values
        if first is not None:  # Theorem 4.4: E_s ‖∇_{w₁} p(s)‖₀ as a fraction of w₁'s entries
            g = per_sample_weight_grad(first.module, first.inputs, first.grad_out, first.sample_dim)
            key = (first.index, first.op, first.op_kind, first.op_type, 0, 0)
            out[("weight_zero_fraction", *key)] = (g.flatten(1).abs() <= self.zero_tol).double().mean(1)
        return out

    def labels(self) -> dict:
        eps = 0.0 if self.attack is None else self.attack.eps
        return {"fy": self.fy, "zero_tol": self.zero_tol, "attack": self.attack_name,
                "eps": eps, "space": self.space}

    def rows(self, values: dict) -> list[dict]:
        order = sorted(values, key=lambda k: (k[1], self.STATISTICS.index(k[0]), k[5], k[6]))
        return [summary_row(k[0], values[k], **dict(zip(OP_COLUMNS, k[1:])), **self.labels()) for k in order]
