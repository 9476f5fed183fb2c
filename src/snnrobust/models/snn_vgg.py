"""VGG family (SR code's variant): conv3×3 + BN + neuron blocks with AvgPool2d(2), then
FC → neuron → … → FC with a non-spiking output. The spiking and ANN twins share one builder and
differ only in the neuron (IF vs ReLU), so the ANN is the exact same-shape baseline."""

from __future__ import annotations

from typing import Callable, Sequence

from spikingjelly.activation_based import layer
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models._init import init_weights
from snnrobust.models.registry import MODELS
from snnrobust.models.wrapper import ann_arch, spiking_arch
from snnrobust.options import PositiveFloat

POOL = "A"
# SR code's "vgg11": not the standard VGG-11 order; 3 pools, so 32×32 ends at 512×4×4 = 8192.
VGG11 = ([64, POOL, 128, 256, POOL, 512, 512, 512, POOL, 512, 512], (4096, 4096))
VGG_TINY = ([16, POOL, 32, POOL, 64, POOL, 64], (128,))


def vgg(
    num_classes: int,
    in_shape: tuple,
    act: Callable[[], nn.Module],
    cfg: Sequence,
    hidden: Sequence[int],
    width: float,
) -> nn.Sequential:
    """Build the layer stack; ``width`` scales every conv and hidden FC width."""
    if not width > 0:
        raise SnnRobustError(f"option width must be > 0, got {width!r}")
    channels, h, w = in_shape
    layers: list[nn.Module] = []
    for item in cfg:
        if item == POOL:
            layers.append(layer.AvgPool2d(2))
            h, w = h // 2, w // 2
        else:
            out = max(1, round(item * width))
            layers += [layer.Conv2d(channels, out, 3, padding=1), layer.BatchNorm2d(out), act()]
            channels = out
    if h < 1 or w < 1:
        raise SnnRobustError(f"input {tuple(in_shape)} is too small for this VGG")
    layers.append(layer.Flatten())
    features = channels * h * w
    for size in hidden:
        size = max(1, round(size * width))
        layers += [layer.Linear(features, size), act()]
        features = size
    layers.append(layer.Linear(features, num_classes))
    return init_weights(nn.Sequential(*layers))


def _register_pair(name: str, cfg: Sequence, hidden: Sequence[int]) -> None:
    """Register ``snn_<name>`` (IF neurons) and ``ann_<name>`` (ReLU) from one configuration."""

    def spiking(num_classes, in_shape, neuron, width: PositiveFloat = 1.0):
        return vgg(num_classes, in_shape, neuron, cfg, hidden, width)

    def ann(num_classes, in_shape, width: PositiveFloat = 1.0):
        return vgg(num_classes, in_shape, nn.ReLU, cfg, hidden, width)

    spiking.__doc__ = ann.__doc__ = f"VGG {name}: convs {cfg}, hidden FC {hidden}, scaled by width."
    MODELS.register(f"snn_{name}")(spiking_arch(spiking))
    MODELS.register(f"ann_{name}")(ann_arch(ann))


_register_pair("vgg11", *VGG11)
_register_pair("vgg_tiny", *VGG_TINY)
