"""ANN ResNet-18 (torchvision) with the CIFAR stem: 3×3 stride-1 conv and no max-pool; ``width`` scales its
channels (a labelled stand-in below 1: the Spiking-PGD study's cpu-scale main model)."""

from __future__ import annotations

from torch import nn

from snnrobust.models.registry import MODELS
from snnrobust.models.width import scale_width
from snnrobust.options import PositiveFloat
from snnrobust.models.wrapper import ann_arch


@MODELS.register("resnet18")
@ann_arch
def resnet18(num_classes, in_shape, width: PositiveFloat = 1.0):
    """torchvision resnet18 with a CIFAR stem (torchvision imported here: it costs ~1.5 s at every config parse);
    ``width`` scales every channel count (``models.width``; 1 is torchvision's, bit for bit)."""
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_shape[0], 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    return scale_width(net, width, stem=net.conv1, head=net.fc)
