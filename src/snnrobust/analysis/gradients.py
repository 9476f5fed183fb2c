"""∇x f_y with the SR paper's two-logit f_y (Eq. 9) and its sparsity/norm statistics."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from snnrobust.registry import Registry


class _StableSigmoid(torch.autograd.Function):
    """σ(m) whose derivative is computed as e^{−|m|}/(1 + e^{−|m|})² instead of σ(1 − σ).

    In float32 σ(m) rounds to 1 above m ≈ 17, so σ(1 − σ) is exactly 0 although σ'(m) ≈ e^{−m} is
    not; the symmetric form keeps it (down to e^{−|m|} ≈ 1e−45, |m| ≈ 100).
    """

    @staticmethod
    def forward(ctx, m):
        ctx.save_for_backward(m)
        return torch.sigmoid(m)

    @staticmethod
    def backward(ctx, grad_out):
        (m,) = ctx.saved_tensors
        e = torch.exp(-m.abs())
        return grad_out * e / (1.0 + e).square()


def stable_sigmoid(m: torch.Tensor) -> torch.Tensor:
    """σ(m) with a derivative that does not underflow to 0 where σ rounds to 1."""
    return _StableSigmoid.apply(m)


def fy_two_logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f_y = e^{z_y} / (e^{z_y} + e^{z_ỹ}) = σ(z_y − z_ỹ), ỹ the strongest other class (Eq. 9).

    The sigmoid form avoids the overflow of exp/(exp+exp), and its derivative is computed stably
    (:func:`stable_sigmoid`), so a confidently classified sample keeps a non-zero ∇ f_y. Which
    logits z are (time-mean or summed over T) is the caller's choice: see ``FY_READINGS``.
    """
    return stable_sigmoid(two_logit_margin(logits, y))


def two_logit_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y − z_ỹ with ỹ the strongest other class: the argument of f_y's sigmoid (Eq. 9)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    return z_y - logits.scatter(1, y[:, None], float("-inf")).max(1).values


# Which z enters f_y for an SNN. The paper (Eq. 8) uses the output summed over the T steps, so
# f_y = σ(T·Δ̄); the released SR code uses the time-averaged logits, f_y = σ(Δ̄). The two differ in
# value and gradient size (not direction); for an ANN (T = 1) they coincide.
FY_READINGS: Registry[Callable[[nn.Module, torch.Tensor], torch.Tensor]] = Registry("f_y reading")
FY_READINGS.register("paper")(lambda model, logits: logits * getattr(model, "T", 1))
FY_READINGS.register("released")(lambda model, logits: logits)


def grad_fy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fy: str = "released") -> torch.Tensor:
    """Per-sample ∇x f_y(x) in eval mode (samples are independent, so one backward of Σ f_y);
    ``fy`` is ``paper`` (from the output summed over T) or ``released`` (from the time-mean logits)."""
    reading = FY_READINGS.get(fy)
    was_training = model.training
    model.eval()
    try:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(fy_two_logit(reading(model, model(x)), y).sum(), x)
    finally:
        model.train(was_training)
    return grad


def gradient_norm_stats(grad: torch.Tensor, zero_tol: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-sample L0 fraction (|g| > zero_tol, over all input dimensions), L1 and L2 norms."""
    flat = grad.flatten(1)
    return {
        "l0_fraction": (flat.abs() > zero_tol).double().mean(1),
        "l1": flat.abs().sum(1).double(),
        "l2": flat.norm(dim=1).double(),
    }
