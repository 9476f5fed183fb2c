"""Vanilla training: cross-entropy on clean inputs (the baseline of every paper)."""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F

from snnrobust.methods.base import METHODS, Method
from snnrobust.options import Range


@METHODS.register("vanilla")
class Vanilla(Method):
    """CE(f(x), y) on the time-averaged logits."""

    name = "vanilla"

    def __init__(self, label_smoothing: Annotated[float, Range(ge=0, lt=1)] = 0.0):
        self.label_smoothing = float(label_smoothing)

    def loss(self, model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits
