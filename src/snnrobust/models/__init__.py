"""Model registry and ``build_model``: image models are pixel-in [B, C, H, W] ∈ [0, 1], logits-out
[B, K], with normalisation and input encoding inside; every model has ``spiking`` and ``T``."""

from __future__ import annotations

import inspect

from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models import ann_resnet, gcn, snn_vgg, snn_wrn, spiking_resnets  # noqa: F401  (register)
from snnrobust.models.registry import MODELS

__all__ = ["MODELS", "build_model", "model_options"]


def model_options(arch: str) -> dict:
    """The options ``arch`` accepts, with their defaults."""
    factory = MODELS.get(arch)
    options = getattr(factory, "options", None)
    if options is None:
        params = list(inspect.signature(factory).parameters.values())[2:]
        options = {p.name: p.default for p in params}
    return dict(options)


def build_model(arch: str, num_classes: int, in_shape: tuple, **opts) -> nn.Module:
    """Build ``arch`` for ``num_classes`` classes and inputs of shape ``in_shape`` (no batch dim)."""
    factory = MODELS.get(arch)
    allowed = model_options(arch)
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise SnnRobustError(
            f"unknown option(s) {', '.join(unknown)} for model {arch!r}; valid: {', '.join(sorted(allowed))}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SnnRobustError(f"num_classes must be a positive integer, got {num_classes!r}")
    try:
        in_shape = tuple(int(d) for d in in_shape)
    except (TypeError, ValueError):
        raise SnnRobustError(f"in_shape must be a tuple of integers, got {in_shape!r}") from None
    try:
        return factory(num_classes, in_shape, **opts)
    except SnnRobustError:
        raise
    except (TypeError, ValueError, RuntimeError) as e:
        raise SnnRobustError(f"invalid options for model {arch!r}: {e}".replace("\n", " ")) from None
