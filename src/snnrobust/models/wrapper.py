"""Pixel-in, logits-out wrappers: normalisation and input encoding live inside the model, and an
SNN starts every forward from a reset state, so no caller can leak membrane state between inputs.

SNNs normalise *before* the encoder (pixels → normalise → encode → backbone), so an encoder sees
normalised images and a phase encoder, which reads raw pixel bytes, is used with ``normalize: false``.
``SpikingClassifier.encode`` / ``forward_encoded`` split the forward at the encoded tensor for
spike-space attacks.

``spiking_arch`` / ``ann_arch`` turn a backbone builder into a registered model factory that takes
the common options (``mean``/``std``/``normalize``; for SNNs also ``T``, ``encoder``,
``encoder_opts``, ``surrogate``, ``gamma``, ``detach_reset``, ``neuron``) plus the builder's own
keyword options.
"""

from __future__ import annotations

import inspect
from typing import Callable, Literal, Sequence

import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnrobust.encoding import make_encoder
from snnrobust.errors import SnnRobustError
from snnrobust.neuron import NeuronSpec
from snnrobust.options import PositiveFloat, PositiveInt, declared_types
from snnrobust.surrogates import make_surrogate

# normalize=False applies no mean/std even when given (the papers that feed raw [0, 1] inputs).
NORM_OPTIONS = {"mean": None, "std": None, "normalize": True}
# Declared types of the common options, checked at config parse time (snnrobust.options).
NORM_TYPES = {"mean": list[float] | float | None, "std": list[float] | float | None, "normalize": bool}
SNN_TYPES = {
    "T": PositiveInt,
    "encoder": str,
    "encoder_opts": dict | None,
    "surrogate": str,
    "gamma": PositiveFloat,
    "detach_reset": bool,
    "neuron": Literal["lean", "spikingjelly"],
}
SNN_OPTIONS = {
    "T": 4,
    "encoder": "direct",
    "encoder_opts": None,
    "surrogate": "triangle",
    "gamma": 1.0,
    "detach_reset": False,
    # Our lean neuron: stateless, any surrogate, gradient-checked; on this CPU it costs about what
    # spikingjelly 2.0's fused IF operator costs (make bench), so the design's preference decides.
    # "spikingjelly" (neuron.IFNode) stays one option away.
    "neuron": "lean",
}


class Normalize(nn.Module):
    """(x − mean)/std per channel over the last three dims ([..., C, H, W]); identity if unset."""

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int):
        super().__init__()
        if (mean is None) != (std is None):
            raise SnnRobustError("give both mean and std, or neither")
        self.active = mean is not None
        if self.active:
            mean_t, std_t = (torch.as_tensor(v, dtype=torch.float32).flatten() for v in (mean, std))
            if mean_t.numel() not in (1, channels) or std_t.numel() not in (1, channels):
                raise SnnRobustError(f"mean/std need 1 or {channels} values")
            if (std_t <= 0).any():
                raise SnnRobustError("std must be > 0")
            self.register_buffer("mean", mean_t.expand(channels).clone().view(channels, 1, 1))
            self.register_buffer("std", std_t.expand(channels).clone().view(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.active else x

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The range of normalised pixels: the image of [0, 1] per channel ([C, 1, 1], or scalars)."""
        if not self.active:
            return torch.tensor(0.0), torch.tensor(1.0)
        return (0.0 - self.mean) / self.std, (1.0 - self.mean) / self.std


def make_normalize(mean, std, normalize, channels: int) -> Normalize:
    """``Normalize(mean, std)``, or the identity when ``normalize`` is false."""
    if not isinstance(normalize, bool):
        raise SnnRobustError(f"option normalize must be true or false, got {normalize!r}")
    return Normalize(mean, std, channels) if normalize else Normalize(None, None, channels)


class ImageClassifier(nn.Module):
    """ANN: pixels [B, C, H, W] in [0, 1] → normalise → backbone → logits [B, K]."""

    spiking = False
    T = 1

    def __init__(self, backbone: nn.Module, normalize: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


class SpikingClassifier(nn.Module):
    """SNN: pixels → normalise → encode to [T, B, ...] → multi-step backbone → logits averaged
    over T; every forward starts from the reset state.

    ``forward(x) == forward_encoded(encode(x))``. The output summed over T (the SR paper's spike
    counts) is ``T · forward(x)``, so no separate method is kept for it.
    """

    spiking = True

    def __init__(self, backbone: nn.Module, encoder: nn.Module, normalize: Normalize, T: int):
        super().__init__()
        if normalize.active and getattr(encoder, "reads_raw_pixels", False):
            raise SnnRobustError(
                f"encoder {type(encoder).__name__} reads raw pixels in [0, 1]: set normalize: false"
            )
        self.T = T
        self.encoder = encoder
        self.normalize = normalize
        self.backbone = backbone
        functional.set_step_mode(self.backbone, "m")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels [B, ...] → the encoded input sequence [T, B, ...] the backbone reads (stateless)."""
        return self.encoder(self.normalize(x))

    def forward_encoded(self, s: torch.Tensor) -> torch.Tensor:
        """Encoded sequence [T, B, ...] → logits [B, K] (time-mean), from the reset state."""
        functional.reset_net(self.backbone)
        return self.backbone(s).mean(0)

    def encoded_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi) of the values an encoded input can take, broadcastable to [T, B, ...]."""
        return self.encoder.bounds(*self.normalize.bounds())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_encoded(self.encode(x))


def _own_options(builder: Callable, skip: int) -> dict:
    """Keyword options (with defaults) of a builder after its first ``skip`` positional params."""
    params = list(inspect.signature(builder).parameters.values())[skip:]
    return {p.name: p.default for p in params}


def _check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SnnRobustError(f"option {name} must be an integer >= {low}, got {value!r}")
    return value


def ann_arch(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """builder(num_classes, in_shape, **own) → [B, ...] → [B, K] backbone, as a model factory."""
    own = _own_options(builder, 2)

    def factory(num_classes: int, in_shape: tuple, mean=None, std=None, normalize=True, **opts) -> nn.Module:
        backbone = builder(num_classes, in_shape, **opts)
        return ImageClassifier(backbone, make_normalize(mean, std, normalize, in_shape[0]))

    factory.options = {**NORM_OPTIONS, **own}
    factory.option_types = {**NORM_TYPES, **declared_types(builder, skip=2)}
    factory.spiking = False  # what its models' ``spiking`` will be, known to config checks before any build
    factory.__doc__ = builder.__doc__
    return factory


def spiking_arch(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """builder(num_classes, in_shape, neuron: NeuronSpec, **own) → multi-step backbone
    [T, B, ...] → [T, B, K], as a model factory with the common SNN options."""
    own = _own_options(builder, 3)

    def factory(num_classes: int, in_shape: tuple, **opts) -> nn.Module:
        o = {**NORM_OPTIONS, **SNN_OPTIONS, **opts}
        T = _check_int("T", o.pop("T"))
        encoder = make_encoder(o.pop("encoder"), T, **(o.pop("encoder_opts") or {}))
        normalize = make_normalize(o.pop("mean"), o.pop("std"), o.pop("normalize"), in_shape[0])
        spec = NeuronSpec(
            o.pop("neuron"),
            surrogate_function=make_surrogate(o.pop("surrogate"), o.pop("gamma")),
            detach_reset=bool(o.pop("detach_reset")),
        )
        backbone = builder(num_classes, in_shape, spec, **o)
        return SpikingClassifier(backbone, encoder, normalize, T)

    factory.options = {**NORM_OPTIONS, **SNN_OPTIONS, **own}
    factory.option_types = {**NORM_TYPES, **SNN_TYPES, **declared_types(builder, skip=3)}
    factory.spiking = True  # a SpikingClassifier (encode / forward_encoded), known before any build
    factory.__doc__ = builder.__doc__
    return factory
