"""The contract between a training method and the shared loop."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from snnrobust.errors import SnnRobustError
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
    cls = METHODS.get(name)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(opts) - set(params) - {"self"})
    if unknown:
        raise SnnRobustError(f"method {name!r} has no option(s) {', '.join(unknown)}")
    return cls(**opts)
