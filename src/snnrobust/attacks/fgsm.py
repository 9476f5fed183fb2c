"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size ε."""

from typing import Annotated

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.options import Range


@ATTACKS.register("fgsm")
class FGSM(SignGradientAttack):
    """x_adv = clip(x + ε·sign(∇x L(f(x), y)))."""

    name = "fgsm"

    def __init__(self, eps: Annotated[float, Range(ge=0)], **common):
        super().__init__(eps, steps=1, alpha=eps, random_start=False, **common)
