"""The model registry: arch name → factory(num_classes, in_shape, **opts) -> nn.Module."""

from typing import Callable

from torch import nn

from snnrobust.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("arch")
