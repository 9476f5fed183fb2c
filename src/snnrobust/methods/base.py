"""The contract between a training method and the shared loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnrobust.registry import Registry


class Method:
    """A training method: ``loss(model, x, y)`` returns the loss to minimise and the logits to score.

    Subclasses take their hyper-parameters as keyword arguments of ``__init__`` (validated by
    ``make_method``) and override ``loss``; the loop owns optimisation, checkpoints and metrics.
    """

    name = "base"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


METHODS: Registry[type[Method]] = Registry("training method")


def make_method(name: str, **opts: Any) -> Method:
    """Build a registered method; an option it does not take is a one-line error."""
    return METHODS.create(name, **opts)
