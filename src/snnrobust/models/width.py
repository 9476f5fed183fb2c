"""Channel width multiplier for a model built at its paper width: every Conv2d, BatchNorm2d and Linear
gets ``max(1, round(c * width))`` of its ``c`` channels (the convention of ``snn_vgg``'s ``width``), except
the input channels of the first conv (the image) and the outputs of the classifier (the classes).

It rebuilds layers in place rather than copying a zoo's constructor, for zoos whose constructor hard-codes
the stage widths (spikingjelly's SEW/Spiking-ResNets fix ``inplanes = 64`` and 64/128/256/512 planes, and
their ``width_per_group`` only reaches the Bottleneck's inner width; BasicBlock refuses it). Because every
channel count maps through one function, residual adds (identity and branch alike) stay shape-consistent.
Rebuilt layers get the zoo's initialisation (Kaiming normal, fan-out, for convs; BN weight 1, bias 0;
PyTorch's default for Linear). ``width == 1`` leaves the model untouched (bit-identical for a seed).
"""

from __future__ import annotations

from spikingjelly.activation_based import layer
from torch import nn

from snnrobust.errors import SnnRobustError


def scaled(channels: int, width: float) -> int:
    """The channel count of a ``channels``-channel layer at ``width`` (at least 1)."""
    return max(1, round(channels * width))


def _conv(old: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Module:
    if old.groups != 1:
        raise SnnRobustError(f"option width cannot scale a grouped convolution (groups={old.groups})")
    new = layer.Conv2d(in_channels, out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                       bias=old.bias is not None, padding_mode=old.padding_mode,
                       step_mode=getattr(old, "step_mode", "s"))
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    return new


def _norm(old: nn.BatchNorm2d, features: int) -> nn.Module:
    return layer.BatchNorm2d(features, eps=old.eps, momentum=old.momentum, affine=old.affine,
                             track_running_stats=old.track_running_stats, step_mode=getattr(old, "step_mode", "s"))


def _linear(old: nn.Linear, in_features: int, out_features: int) -> nn.Module:
    return layer.Linear(in_features, out_features, bias=old.bias is not None, step_mode=getattr(old, "step_mode", "s"))


def scale_width(net: nn.Module, width: float, stem: nn.Module, head: nn.Module) -> nn.Module:
    """``net`` with every channel count scaled by ``width``; ``stem`` (a conv) keeps its input channels and
    ``head`` (a linear) its outputs. Layers other than Conv2d/BatchNorm2d/Linear must be channel-free."""
    if not width > 0:
        raise SnnRobustError(f"option width must be > 0, got {width!r}")
    if width == 1:
        return net
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                keep_in = child is stem
                new = _conv(child, child.in_channels if keep_in else scaled(child.in_channels, width),
                            scaled(child.out_channels, width))
            elif isinstance(child, nn.BatchNorm2d):
                new = _norm(child, scaled(child.num_features, width))
            elif isinstance(child, nn.Linear):
                new = _linear(child, scaled(child.in_features, width),
                              child.out_features if child is head else scaled(child.out_features, width))
            else:
                continue
            setattr(parent, name, new)
    return net
