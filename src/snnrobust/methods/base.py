"""The contract between a training method and the shared loop: a loss, plus optional hooks.

The loop calls, per run: ``param_groups`` once (building the optimizer), ``on_run_start(seed)``; per epoch:
``on_epoch_start`` → for each batch ``loss`` then ``after_step`` (after ``optimizer.step()``) →
``epoch_metrics``; and it saves ``state_dict()`` in every checkpoint and gives it back to
``load_state_dict`` on resume, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry


class Method:
    """A training method: ``loss(model, x, y)`` returns the loss to minimise and the logits to score.

    Subclasses take their hyper-parameters as keyword arguments of ``__init__``, each annotated for
    the typed-option checker (``Annotated[float, Range(ge=0)]``, ``Literal[...]``), and override
    ``loss``; the hooks below default to doing nothing, the loop owns optimisation, checkpoints and
    the fixed metric columns.
    """

    name = "base"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[dict] | None:
        """Optimizer parameter groups (dicts with ``params`` and per-group options such as
        ``weight_decay``, or ``lr_scale``: a factor on the scheduled learning rate); None = one
        group of all parameters."""
        return None

    def on_run_start(self, seed: int) -> None:
        """Called once before training, before a checkpoint is restored: the run's seed (for methods that
        draw random numbers: an inner attack's random start, RAT's row picks)."""

    def on_epoch_start(self, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called before epoch ``epoch`` (0-based) runs, after the loop set its learning rate: schedules."""

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called after every ``optimizer.step()``: weight retraction or projection."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra metric columns for the epoch just finished (the same names every epoch)."""
        return {}

    def state_dict(self) -> dict:
        """State that must survive a kill (tensors, numbers, strings, lists, dicts): saved per epoch."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned; a stateless method accepts only an empty state."""
        if state:
            raise SnnRobustError(f"method {self.name!r} keeps no state but the checkpoint holds {sorted(state)}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


METHODS: Registry[type[Method]] = Registry("training method")


def make_method(name: str, **opts: Any) -> Method:
    """Build a registered method; an option it does not take is a one-line error."""
    return METHODS.create(name, **opts)
