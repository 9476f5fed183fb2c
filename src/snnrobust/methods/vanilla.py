"""Vanilla training: cross-entropy on clean inputs (the baseline of every paper)."""

from __future__ import annotations

import torch.nn.functional as F

from snnrobust.methods.base import METHODS, Method


@METHODS.register("vanilla")
class Vanilla(Method):
    """CE(f(x), y) on the time-averaged logits."""

    name = "vanilla"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = float(label_smoothing)

    def loss(self, model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits
