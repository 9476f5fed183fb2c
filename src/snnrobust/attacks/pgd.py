"""PGD (Madry et al., 2018): ``steps`` projected sign-gradient steps of size α, optional random start."""

from snnrobust.attacks.base import ATTACKS, SignGradientAttack


@ATTACKS.register("pgd")
class PGD(SignGradientAttack):
    """ℓ∞ PGD; α defaults to 2.5·ε/steps (Madry et al.), random start uniform in the ε-ball."""

    name = "pgd"

    def __init__(self, eps: float, steps: int = 10, alpha: float | None = None, random_start: bool = True):
        if alpha is None:
            alpha = 2.5 * float(eps) / max(int(steps), 1)
        super().__init__(eps, steps=steps, alpha=alpha, random_start=random_start)
