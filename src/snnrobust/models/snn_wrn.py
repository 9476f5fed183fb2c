"""Spiking WRN-16 (SR code): pre-activation blocks BN → IF → conv, residual as a learnable convex
combination of shortcut and branch (2 weights initialised to 0.5, not projected)."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer
from torch import nn

from snnrobust.models._init import init_weights
from snnrobust.models.registry import MODELS
from snnrobust.models.wrapper import _check_int, spiking_arch
from snnrobust.neuron import NeuronSpec
from snnrobust.options import PositiveInt


class ConvexCombination(nn.Module):
    """Σ_i w_i·x_i with learnable w initialised to 1/n (SNN-RAT projects w onto the simplex)."""

    def __init__(self, n: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n,), 1.0 / n))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return sum(w * x for w, x in zip(self.weight, xs))


class PreActBlock(nn.Module):
    """BN → IF → conv3×3(stride) → BN → IF → conv3×3, combined with the shortcut; a 1×1 conv on
    the activated input is the shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, neuron: NeuronSpec):
        super().__init__()
        self.bn1, self.act1 = layer.BatchNorm2d(c_in), neuron()
        self.conv1 = layer.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.act2 = layer.BatchNorm2d(c_out), neuron()
        self.conv2 = layer.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (
            None if c_in == c_out and stride == 1 else layer.Conv2d(c_in, c_out, 1, stride, bias=False)
        )
        self.combine = ConvexCombination(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return self.combine(skip, out)


@MODELS.register("snn_wrn16")
@spiking_arch
def snn_wrn16(num_classes, in_shape, neuron, widen: PositiveInt = 4):
    """WRN-16-``widen``: stem conv 16, three groups of 2 blocks (16w, 32w, 64w), BN → IF → GAP → FC."""
    widen = _check_int("widen", widen)
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    blocks: list[nn.Module] = [layer.Conv2d(in_shape[0], widths[0], 3, 1, 1, bias=False)]
    for group, stride in zip(range(3), (1, 2, 2)):
        blocks.append(PreActBlock(widths[group], widths[group + 1], stride, neuron))
        blocks.append(PreActBlock(widths[group + 1], widths[group + 1], 1, neuron))
    blocks += [
        layer.BatchNorm2d(widths[3]),
        neuron(),
        layer.AdaptiveAvgPool2d(1),
        layer.Flatten(),
        layer.Linear(widths[3], num_classes),
    ]
    return init_weights(nn.Sequential(*blocks))
