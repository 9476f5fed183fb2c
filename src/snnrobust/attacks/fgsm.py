"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size ε."""

from snnrobust.attacks.base import ATTACKS, SignGradientAttack


@ATTACKS.register("fgsm")
class FGSM(SignGradientAttack):
    """x_adv = clip(x + ε·sign(∇x CE(f(x), y)))."""

    name = "fgsm"

    def __init__(self, eps: float):
        super().__init__(eps, steps=1, alpha=eps, random_start=False)
