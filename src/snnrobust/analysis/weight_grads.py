"""Per-sample weight gradient of a conv or linear layer from its input and the gradient w.r.t. its output.

Theorem 4.4 (trail paper) bounds E_s[‖∇_{w₁} p_w(s)‖₀], the expected L0 norm of the *per-sample* gradient of the
first layer's weight, summed over the T steps (Eq. 13: Σ_t ‖w₂·s[t]‖₀). A backward pass gives only the batch
sum, whose support is the union of the samples' supports; so sample b's gradient is formed from its own input
and output gradient with the layer's weight-gradient formula, its T steps (a multi-step layer folds them into
the batch) summed as in Eq. 13. The sum over samples equals the batch gradient (tested).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from snnrobust.errors import SnnRobustError

# conv weight-gradient operators by spatial rank (weight [out, in/groups, *kernel])
_CONV_WEIGHT = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight, 3: torch.nn.grad.conv3d_weight}


def _samples(t: torch.Tensor, sample_dim: int) -> list[torch.Tensor]:
    """Sample b's slice of ``t`` with its leading (time) dims folded into one batch dim: [T, ...] or [1, ...]."""
    return [t.narrow(sample_dim, b, 1).flatten(0, sample_dim) for b in range(t.shape[sample_dim])]


def _conv(module: nn.Module, x: torch.Tensor, g: torch.Tensor, sample_dim: int) -> torch.Tensor:
    rank = module.weight.dim() - 2
    plain = not module.transposed and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if not plain or rank not in _CONV_WEIGHT:
        raise SnnRobustError(f"per-sample weight gradient: unsupported convolution {module}")
    grad = _CONV_WEIGHT[rank]
    return torch.stack([grad(xb, module.weight.shape, gb, module.stride, module.padding, module.dilation, module.groups)
                        for xb, gb in zip(_samples(x, sample_dim), _samples(g, sample_dim))])


def _linear(module: nn.Module, x: torch.Tensor, g: torch.Tensor, sample_dim: int) -> torch.Tensor:
    batch = x.shape[sample_dim]
    xs = x.movedim(sample_dim, 0).reshape(batch, -1, x.shape[-1])
    gs = g.movedim(sample_dim, 0).reshape(batch, -1, g.shape[-1])
    return torch.einsum("bno,bni->boi", gs, xs)


#: Layer class → its per-sample weight gradient (a table, not an if-chain; subclasses match by isinstance).
PER_SAMPLE: dict[type, Callable[..., torch.Tensor]] = {nn.modules.conv._ConvNd: _conv, nn.Linear: _linear}


def per_sample_weight_grad(module: nn.Module, x: torch.Tensor, grad_out: torch.Tensor | None,
                           sample_dim: int) -> torch.Tensor:
    """[B, *weight.shape]: sample b's gradient of the objective w.r.t. ``module.weight``, from the layer's input
    ``x`` and output gradient ``grad_out`` (None: no gradient reached the layer, all zeros)."""
    if grad_out is None:
        return torch.zeros(x.shape[sample_dim], *module.weight.shape, dtype=x.dtype, device=x.device)
    form = next((fn for cls, fn in PER_SAMPLE.items() if isinstance(module, cls)), None)
    if form is None:
        raise SnnRobustError(f"per-sample weight gradient: no formula for {type(module).__name__}")
    with torch.no_grad():
        return form(module, x, grad_out, sample_dim)
