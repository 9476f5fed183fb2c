"""PGD (Madry et al., 2018): ``steps`` projected sign-gradient steps of size α, optional random start."""

from typing import Annotated

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.options import Range


@ATTACKS.register("pgd")
class PGD(SignGradientAttack):
    """ℓ∞ PGD; α defaults to 2.5·ε/steps (Madry et al.), random start uniform in the ε-ball."""

    name = "pgd"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        steps: Annotated[int, Range(ge=1)] = 10,
        alpha: Annotated[float, Range(ge=0)] | None = None,
        random_start: bool = True,
        **common,
    ):
        if alpha is None:
            alpha = 2.5 * float(eps) / max(int(steps), 1)
        super().__init__(eps, steps=steps, alpha=alpha, random_start=random_start, **common)
