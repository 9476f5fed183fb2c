"""Computation redundancy in iterative attacks (Spiking-PGD paper Sec. 3.2, Fig. 1, Appendix A Tables 1-2).

The registered ``pgd`` attack runs as usual; a per-iteration hook on its ``loss_gradient`` marks each forward/backward
pass, and forward hooks on every Conv2d/Linear (``attacks.reuse.gated_layers``, the layers Spiking-PGD gates) record
the layer output a and, through a tensor hook, the gradient g = ∇_a L of the attack's loss. Per sample, over the
whole output tensor (an SNN's [T, B, ...] output is taken per sample across all T steps):

* ``activation_relative_change`` = ‖a_t − a_{t−1}‖/‖a_t‖ (Table 1, Fig. 1),
* ``gradient_relative_change``  = ‖g_t − g_{t−1}‖/‖g_t‖ (Table 2),

for t = 1..steps, where a_t is the output at the PGD iterate x_t: the loop's ``steps`` passes see x_0..x_{steps−1},
and one extra pass at the returned x_steps gives the last change, so ``steps: 10`` yields the paper's ten rows. The
``iteration`` column numbers them as the paper does, from 0 (iteration = t − 1: row 0 compares x_1 with x_0).
A sample with ‖a_t‖ = 0 gets 0 when a_{t−1} = a_t too, else NaN (undefined; left out of mean/std/n).
"""

from __future__ import annotations

from typing import Annotated, Iterable

import torch

from snnrobust.analysis.registry import ANALYSES, summary_row
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range, Seed

STATISTICS = ("activation_relative_change", "gradient_relative_change")


def per_sample(out: torch.Tensor, batch: int, T: int) -> torch.Tensor:
    """A layer output as [B, N] (float64): ANN outputs [B, ...]; SNN outputs [T, B, ...] or T folded into the batch
    [T·B, ...] are taken per sample across all time steps."""
    if T > 1 and out.dim() >= 2 and tuple(out.shape[:2]) == (T, batch):
        return out.detach().movedim(1, 0).reshape(batch, -1).double()
    if T > 1 and out.shape[0] == T * batch:
        return out.detach().reshape(T, batch, -1).movedim(1, 0).reshape(batch, -1).double()
    if out.shape[0] == batch:
        return out.detach().reshape(batch, -1).double()
    raise SnnRobustError(f"layer output of shape {tuple(out.shape)} has no batch of {batch} (T={T}) to split")


def relative_change(now: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖now − before‖/‖now‖ of [B, N] tensors (Eq. of Sec. 3.2); 0/0 → 0, x/0 → NaN."""
    diff, norm = (now - before).norm(dim=1), now.norm(dim=1)
    out = diff / norm
    out[norm == 0] = torch.where(diff[norm == 0] == 0, 0.0, float("nan")).to(out.dtype)
    return out


class _Recorder:
    """Forward hooks on the chosen layers recording, per attack pass, each layer's output and output gradient
    (per sample, [B, N]; a layer called several times in one pass has its calls concatenated)."""

    def __init__(self, layers: dict, batch: int, T: int):
        self.layers, self.batch, self.T = layers, batch, T
        self.acts: dict[str, list] = {}
        self.grads: dict[str, list] = {}
        self.handles = []

    def __enter__(self):
        for name, layer in self.layers.items():
            self.handles.append(layer.register_forward_hook(lambda m, i, o, name=name: self._forward(name, o)))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def new_pass(self) -> None:
        self.acts, self.grads = {}, {}

    def _forward(self, name: str, out: torch.Tensor) -> None:
        self.acts.setdefault(name, []).append(per_sample(out, self.batch, self.T))
        if out.requires_grad:
            slot = len(self.acts[name]) - 1
            out.register_hook(lambda g, name=name, slot=slot: self._grad(name, slot, g))

    def _grad(self, name: str, slot: int, g: torch.Tensor) -> None:
        grads = self.grads.setdefault(name, [None] * len(self.acts[name]))
        grads[slot] = per_sample(g, self.batch, self.T)

    def snapshot(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """layer → (activation [B, N], gradient [B, N] or None) of the pass just finished."""
        out = {}
        for name, acts in self.acts.items():
            grads = self.grads.get(name)
            grad = torch.cat(grads, 1) if grads and all(g is not None for g in grads) else None
            out[name] = (torch.cat(acts, 1), grad)
        return out


@ANALYSES.register("redundancy")
class Redundancy:
    """Activation and gradient relative change per Conv2d/Linear layer and PGD iteration (Spiking-PGD Tables 1-2,
    Fig. 1). Options: PGD's ``steps``/``eps``/``alpha``/``random_start`` (off: iteration 0 is deterministic),
    ``layers`` (module paths; default every Conv2d/Linear), ``seed`` (random start)."""

    STATISTICS = STATISTICS

    def __init__(self, steps: Annotated[int, Range(ge=1)] = 10, eps: Annotated[float, Range(ge=0)] = 8 / 255,
                 alpha: Annotated[float, Range(ge=0)] = 2 / 255, random_start: bool = False,
                 layers: list[str] | None = None, seed: Seed = 0):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise SnnRobustError(f"redundancy: steps must be an integer >= 1, got {steps!r}")
        if layers is not None and not (isinstance(layers, (list, tuple)) and all(isinstance(p, str) for p in layers)):
            raise SnnRobustError(f"redundancy: layers must be a list of module paths, got {layers!r}")
        self.steps, self.eps, self.alpha = int(steps), float(eps), float(alpha)
        self.random_start, self.seed = bool(random_start), int(seed)
        self.layers = list(layers) if layers is not None else None
        from snnrobust.attacks import make_attack

        self.attack = make_attack("pgd", eps=self.eps, steps=self.steps, alpha=self.alpha,
                                  random_start=self.random_start)

    def select_layers(self, model) -> dict:
        """The measured layers by module path, in model order (``layers`` or every Conv2d/Linear)."""
        from snnrobust.attacks.reuse import gated_layers

        gated = gated_layers(model)
        if self.layers is None:
            return gated
        unknown = [p for p in self.layers if p not in gated]
        if unknown:
            raise SnnRobustError(f"redundancy: unknown layer(s) {', '.join(map(repr, unknown))}; Conv2d/Linear layers "
                                 f"are: {', '.join(gated) or 'none'}")
        return {p: gated[p] for p in gated if p in self.layers}

    def changes(self, model, x: torch.Tensor, y: torch.Tensor, generator=None) -> dict:
        """(statistic, layer, t) → per-sample relative change [B] for t = 1..steps, from one PGD run on (x, y)."""
        layers = self.select_layers(model)
        attack, out, previous = self.attack, {}, {}
        recorder = _Recorder(layers, x.shape[0], int(getattr(model, "T", 1) or 1))
        count = {"t": 0}
        original_gradient, original_perturb = attack.loss_gradient, attack.perturb

        def loss_gradient(view, z, y_):  # the per-iteration hook: one pass at iterate x_t
            recorder.new_pass()
            grad = original_gradient(view, z, y_)
            now = recorder.snapshot()
            t = count["t"]
            if t >= 1:
                for name, (a, g) in now.items():
                    a_prev, g_prev = previous[name]
                    out[("activation_relative_change", name, t)] = relative_change(a, a_prev)
                    if g is not None and g_prev is not None:
                        out[("gradient_relative_change", name, t)] = relative_change(g, g_prev)
            previous.update(now)
            count["t"] = t + 1
            return grad

        def perturb(view, z, y_, gen):  # the loop's passes see x_0..x_{steps-1}; one more at x_steps
            z_adv = original_perturb(view, z, y_, gen)
            loss_gradient(view, z_adv, y_)
            return z_adv

        attack.loss_gradient, attack.perturb = loss_gradient, perturb
        try:
            with recorder:
                attack(model, x, y, generator)
        finally:
            del attack.loss_gradient, attack.perturb  # back to the class methods
        return out

    def __call__(self, model, batches: Iterable) -> list[dict]:
        chunks: dict[tuple, list] = {}
        generator = None
        order: list[str] = list(self.select_layers(model))
        for x, y in batches:
            if generator is None:
                generator = torch.Generator(device=x.device).manual_seed(self.seed)
            for key, values in self.changes(model, x, y, generator).items():
                chunks.setdefault(key, []).append(values.cpu())
        rows = []
        for statistic in STATISTICS:
            for index, name in enumerate(order, start=1):
                for t in range(1, self.steps + 1):
                    parts = chunks.get((statistic, name, t))
                    if parts is None:
                        continue
                    rows.append(summary_row(statistic, torch.cat(parts), layer=name, layer_index=index,
                                            iteration=t - 1, **self.labels()))
        return rows

    def labels(self) -> dict:
        return {"eps": self.eps, "steps": self.steps, "alpha": self.alpha, "random_start": self.random_start}
