"""Adversarial training (Madry et al., 2018; SR paper Sec. 5, App. D): cross-entropy on the inner attack's
adversarial examples, optionally mixed with clean cross-entropy."""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F

from snnrobust.errors import SnnRobustError
from snnrobust.methods.adversarial import PAPER_EPS, AdversarialMethod
from snnrobust.methods.base import METHODS
from snnrobust.options import Range, UnitInterval


@METHODS.register("at")
class AT(AdversarialMethod):
    """(1 − w)·CE(f(x_adv), y) + w·CE(f(x), y) with w = ``clean_weight``.

    w = 0 (the default) is what the SR paper and its released code train: adversarial CE only. The
    defaults are the paper's inner attack (PGD-5, eps 2/255, alpha 0.01); the released code's PGD-7 at
    8/255, alpha 2.55/255, is a config value. The training accuracy scores the adversarial logits.
    """

    name = "at"

    def __init__(self, attack: dict | None = None, eps: Annotated[float, Range(ge=0, le=1)] = PAPER_EPS,
                 clean_weight: UnitInterval = 0.0):
        super().__init__(attack, eps)
        self.clean_weight = float(clean_weight)
        if not 0.0 <= self.clean_weight <= 1.0:
            raise SnnRobustError(f"method {self.name!r}: clean_weight must be in [0, 1], got {clean_weight!r}")

    def loss(self, model, x, y):
        x_adv = self.inner(model, x, y)
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y)
        self.count_forward()
        if self.clean_weight > 0:
            loss = (1.0 - self.clean_weight) * loss + self.clean_weight * F.cross_entropy(model(x), y)
            self.count_forward()
        return loss, logits
