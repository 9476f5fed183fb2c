"""SEW-ResNet and Spiking-ResNet 18/34/50 built from spikingjelly's model zoo, with a choice of
stem (CIFAR 3×3 s1 without max-pool, or spikingjelly's ImageNet stem) and of pooling (every
fixed-window pool max, or avg of the same geometry, on both families, unlike the released trail code).
The SEW blocks' residual ADD is a module (``sew_connect.Add``), so per-operation hooks see both of its inputs."""

from __future__ import annotations

from typing import Callable, Literal

from spikingjelly.activation_based import layer
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models.registry import MODELS
from snnrobust.models.sew_connect import modular_add
from snnrobust.models.wrapper import spiking_arch
from snnrobust.models.width import scale_width
from snnrobust.options import PositiveFloat
from snnrobust.registry import Registry

STEMS: Registry[Callable[[nn.Module, int], None]] = Registry("stem")
POOLINGS: Registry[Callable[[nn.Module], nn.Module]] = Registry("pooling")


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


# Fixed-window pools are what the pooling option sets; the global average pool before the classifier
# is the head of every variant (max- and avg-pool models of the trail paper alike), never swapped.
LOCAL_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@POOLINGS.register("max")
def max_pool(pool: nn.Module) -> nn.Module:
    """A max-pool with the same kernel, stride and padding."""
    return layer.MaxPool2d(pool.kernel_size, pool.stride, pool.padding)


@POOLINGS.register("avg")
def avg_pool(pool: nn.Module) -> nn.Module:
    """An average pool with the same kernel, stride and padding (the trail paper's Eq. 7 gradient)."""
    return layer.AvgPool2d(pool.kernel_size, pool.stride, pool.padding)


#: Stems after which the model still has a fixed-window pool (the ImageNet stem's max-pool; the CIFAR stem drops
#: it and the blocks have none): the config check refuses ``pooling`` under any other stem before a job runs, and
#: a test keeps this in step with what ``set_pooling`` finds in built models.
POOL_STEMS = ("imagenet",)


def _replaces_nothing(pooling: str, where: str) -> SnnRobustError:
    return SnnRobustError(f"option pooling={pooling!r} replaces nothing: {where} has no pooling layer "
                          "(use stem='imagenet' for the stem max-pool)")


def check_pooling(arch: str, opts: dict) -> None:
    """Config-time check of the options ``stem`` and ``pooling`` together (no model is built)."""
    pooling, stem = opts.get("pooling"), opts.get("stem", "cifar")
    if pooling is not None and stem not in POOL_STEMS:
        raise _replaces_nothing(pooling, f"{arch} with stem {stem!r}")


def set_pooling(net: nn.Module, pooling: str, where: str) -> None:
    """Make every fixed-window pool of ``net`` a ``pooling`` pool; a request that would replace
    nothing (the model has no such pool, e.g. under the CIFAR stem) is an error, so a max-vs-avg
    comparison can never compare two equal models."""
    make = POOLINGS.get(pooling)
    pools = [(parent, name, child) for parent in list(net.modules())
             for name, child in parent.named_children() if isinstance(child, LOCAL_POOLS)]
    if not pools:
        raise _replaces_nothing(pooling, where)
    for parent, name, child in pools:
        setattr(parent, name, make(child))


def _family(constructor: Callable[..., nn.Module], **extra) -> Callable[..., nn.Module]:
    def build(num_classes, in_shape, neuron, stem: Literal["cifar", "imagenet"] = "cifar",
              pooling: Literal["max", "avg"] | None = None, width: PositiveFloat = 1.0):
        net = constructor(
            spiking_neuron=neuron.cls, num_classes=num_classes, **extra, **neuron.kwargs
        )
        scale_width(net, width, stem=net.conv1, head=net.fc)
        STEMS.get(stem)(net, in_shape[0])
        if pooling is not None:
            set_pooling(net, pooling, f"{constructor.__name__} with stem {stem!r}")
        return net

    build.__doc__ = (f"spikingjelly {constructor.__name__} with options stem, pooling (None: the pools "
                     "the stem builds, max under imagenet, none under cifar) and width (channel multiplier of "
                     "every stage, 1 = the paper's; ``snnrobust.models.width``).")
    factory = spiking_arch(build)
    factory.cross_check = lambda opts: check_pooling(constructor.__name__, opts)
    return factory


def _lazy(module: str, name: str) -> Callable[..., nn.Module]:
    """spikingjelly's ``module.name`` constructor, imported on first call: importing the ResNet modules pulls
    in torchvision.models and torch._dynamo (about 2 s per process), which jobs of other archs never need."""

    def constructor(**kwargs):
        from importlib import import_module

        return getattr(import_module(f"spikingjelly.activation_based.model.{module}"), name)(**kwargs)

    constructor.__name__ = constructor.__qualname__ = name
    return constructor


def _sew(name: str) -> Callable[..., nn.Module]:
    """spikingjelly's SEW constructor ``name`` with the residual ADD as a hookable module (``sew_connect``)."""
    make = _lazy("sew_resnet", name)

    def constructor(**kwargs):
        return modular_add(make(**kwargs))

    constructor.__name__ = constructor.__qualname__ = name
    return constructor


for _depth in (18, 34, 50):
    MODELS.register(f"sew_resnet{_depth}")(
        _family(_sew(f"sew_resnet{_depth}"), cnf="ADD")
    )
    MODELS.register(f"spiking_resnet{_depth}")(
        _family(_lazy("spiking_resnet", f"spiking_resnet{_depth}"))
    )
