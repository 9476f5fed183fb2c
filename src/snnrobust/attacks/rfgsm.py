"""R+FGSM: a random signed step, then one signed gradient step, in two labelled readings (option ``form``).

``form: paper`` is Tramèr et al.'s R+FGSM ("Ensemble Adversarial Training", ICLR 2018): a random signed step of
size α, then one gradient step of size ε − α, so the point never leaves the ε-ball; α defaults to ε/2.

``form: released`` is torchattacks 3.2.7's ``RFGSM``, which the SR code ran with ε = 8/255 and the library's
defaults α = 8/255, one step: a random signed step of α (clipped to [0, 1] only), then a gradient step of
**α** (not ε − α), then a clip to the ε-ball and [0, 1]. With α = ε a pixel whose random sign agrees with the
gradient sign ends at x + ε·sign(g) and one whose sign disagrees returns to x, so about half of the pixels
carry the gradient sign: it is not random noise. Here α defaults to 8/255 in this form (the library's default).
(torchattacks 3.5 keeps this update but defaults to 10 steps with α = 2/255.)
"""

from typing import Annotated, Literal

import torch

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range

#: torchattacks 3.2.7's default RFGSM step size, which the SR code kept (it passed ε only).
RELEASED_ALPHA = 8 / 255


@ATTACKS.register("rfgsm")
class RFGSM(SignGradientAttack):
    """Π the ε-ball ∩ box, r = sign(N(0, I)) drawn from the attack's generator, g = sign(∇x' L):

    - ``paper``:    x' = Π(x + α·r);          x_adv = Π(x' + (ε − α)·g)   (α defaults to ε/2)
    - ``released``: x' = clip₀¹(x + α·r);     x_adv = Π(x' + α·g)         (α defaults to 8/255)

    In the paper form an α above ε is cut to the ε-ball by the first projection (and the gradient step is 0).
    """

    name = "rfgsm"

    def __init__(self, eps: Annotated[float, Range(ge=0)], alpha: Annotated[float, Range(ge=0)] | None = None,
                 form: Literal["paper", "released"] = "paper", **common):
        if form not in ("paper", "released"):
            raise SnnRobustError(f"rfgsm form must be 'paper' or 'released', got {form!r}")
        default = float(eps) / 2 if form == "paper" else RELEASED_ALPHA
        super().__init__(eps, steps=1, alpha=default if alpha is None else alpha, random_start=True, **common)
        self.form = form

    def start(self, view, z, generator):
        direction = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device).sign()
        moved = z + self.alpha * direction
        if self.form == "released":  # torchattacks 3.2.7 clips the random step to the box only
            return torch.clamp(moved, view.lo, view.hi)
        return self.project(view, moved, z)

    def step(self, z_adv, grad, k):
        size = self.alpha if self.form == "released" else max(self.eps - self.alpha, 0.0)
        return z_adv + size * grad.sign()
