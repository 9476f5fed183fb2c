"""∇x f_y with the SR paper's two-logit f_y (Eq. 9) and its sparsity/norm statistics."""

from __future__ import annotations

import torch
from torch import nn


def fy_two_logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f_y = e^{z_y} / (e^{z_y} + e^{z_ỹ}) = σ(z_y − z_ỹ), ỹ the strongest other class (Eq. 9).

    z are the model's logits (time-averaged for SNNs, as in the released SR code; the paper writes
    spike counts of the last layer, which differ only by the factor T for a spiking output layer).
    The sigmoid form avoids the overflow of exp/(exp+exp).
    """
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    z_other = others.max(1).values
    return torch.sigmoid(z_y - z_other)


def grad_fy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample ∇x f_y(x) in eval mode (samples are independent, so one backward of Σ f_y)."""
    was_training = model.training
    model.eval()
    try:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(fy_two_logit(model(x), y).sum(), x)
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
