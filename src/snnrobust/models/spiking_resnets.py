"""SEW-ResNet and Spiking-ResNet 18/34/50 built from spikingjelly's model zoo, with a choice of
stem (CIFAR 3×3 s1 without max-pool, or spikingjelly's ImageNet stem) and of pooling (max, or avg
of the same geometry on both families, unlike the released trail code)."""

from __future__ import annotations

from typing import Callable

from spikingjelly.activation_based import layer
from spikingjelly.activation_based.model import sew_resnet, spiking_resnet
from torch import nn

from snnrobust.models.registry import MODELS
from snnrobust.models.wrapper import spiking_arch
from snnrobust.registry import Registry

STEMS: Registry[Callable[[nn.Module, int], None]] = Registry("stem")
POOLINGS: Registry[Callable[[nn.Module], None]] = Registry("pooling")


def _stem_conv(net: nn.Module, conv: nn.Module) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    net.conv1 = conv


@STEMS.register("cifar")
def cifar_stem(net: nn.Module, in_channels: int) -> None:
    """3×3 stride-1 conv, no max-pool (for 32×32 inputs)."""
    _stem_conv(net, layer.Conv2d(in_channels, net.conv1.out_channels, 3, 1, 1, bias=False))
    net.maxpool = nn.Identity()


@STEMS.register("imagenet")
def imagenet_stem(net: nn.Module, in_channels: int) -> None:
    """spikingjelly's own 7×7 stride-2 conv + 3×3 stride-2 max-pool (only the input channels adapt)."""
    if net.conv1.in_channels != in_channels:
        _stem_conv(net, layer.Conv2d(in_channels, net.conv1.out_channels, 7, 2, 3, bias=False))


@POOLINGS.register("max")
def keep_max(net: nn.Module) -> None:
    """Keep the max-pools."""


@POOLINGS.register("avg")
def max_to_avg(net: nn.Module) -> None:
    """Replace every MaxPool2d by an AvgPool2d with the same kernel, stride and padding."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                pool = layer.AvgPool2d(child.kernel_size, child.stride, child.padding)
                setattr(parent, name, pool)


def _family(constructor: Callable[..., nn.Module], **extra) -> Callable[..., nn.Module]:
    def build(num_classes, in_shape, neuron, stem: str = "cifar", pooling: str = "max"):
        net = constructor(
            spiking_neuron=neuron.cls, num_classes=num_classes, **extra, **neuron.kwargs
        )
        STEMS.get(stem)(net, in_shape[0])
        POOLINGS.get(pooling)(net)
        return net

    build.__doc__ = f"spikingjelly {constructor.__name__} with options stem and pooling."
    return spiking_arch(build)


for _depth in (18, 34, 50):
    MODELS.register(f"sew_resnet{_depth}")(
        _family(getattr(sew_resnet, f"sew_resnet{_depth}"), cnf="ADD")
    )
    MODELS.register(f"spiking_resnet{_depth}")(
        _family(getattr(spiking_resnet, f"spiking_resnet{_depth}"))
    )
