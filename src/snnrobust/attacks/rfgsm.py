"""R+FGSM (Tramèr et al., 2018): a random signed step of size α, then one signed gradient step of size ε − α.

torchattacks ≤ 3.2 (which the SR code ran) defaults to ε = 16/255, α = 8/255, one step; the SR code
keeps α = 8/255 with ε = 8/255, so its gradient step is 0 and its "RFGSM" is random sign noise. Here
α defaults to ε/2 (Tramèr et al.'s setting, torchattacks' old ratio) and is an option, so both are
configs. (torchattacks 3.5 renamed a 10-step random-start PGD with α = 2/255 to RFGSM: not this attack.)
"""

from typing import Annotated

import torch

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.options import Range


@ATTACKS.register("rfgsm")
class RFGSM(SignGradientAttack):
    """x' = Π(x + α·sign(N(0, I))); x_adv = Π(x' + (ε − α)·sign(∇x' L)), Π the ε-ball ∩ box.

    An α above ε is cut to the ε-ball by the projection (and the gradient step is then 0)."""

    name = "rfgsm"

    def __init__(self, eps: Annotated[float, Range(ge=0)], alpha: Annotated[float, Range(ge=0)] | None = None,
                 **common):
        super().__init__(eps, steps=1, alpha=float(eps) / 2 if alpha is None else alpha, random_start=True, **common)

    def start(self, view, z, generator):
        direction = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device).sign()
        return self.project(view, z + self.alpha * direction, z)

    def step(self, z_adv, grad, k):
        return z_adv + max(self.eps - self.alpha, 0.0) * grad.sign()
