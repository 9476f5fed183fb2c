"""I-FGSM and MI-FGSM: ``steps`` signed steps of α = ε/steps from the clean input (no random start), on the one
sign-gradient loop of ``base.py``; MI-FGSM only changes the step's direction to an accumulated momentum."""

from typing import Annotated

import torch

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.attacks.rows import sample_dim
from snnrobust.options import Range


@ATTACKS.register("ifgsm")
class IFGSM(SignGradientAttack):
    """I-FGSM / BIM (Kurakin et al., 2017): x_{t+1} = Π_{B∞(x,ε)∩[0,1]}(x_t + α·sign(∇x L)), x_1 = x, α = ε/steps."""

    name = "ifgsm"

    def __init__(self, eps: Annotated[float, Range(ge=0)], steps: Annotated[int, Range(ge=1)] = 10, **common):
        super().__init__(eps, steps=steps, alpha=float(eps) / max(int(steps), 1), random_start=False, **common)


@ATTACKS.register("mifgsm")
class MIFGSM(IFGSM):
    """MI-FGSM (Dong et al., CVPR 2018, Alg. 1): g_{t+1} = μ·g_t + ∇x L/‖∇x L‖₁ (ℓ1 per sample, g_1 = 0),
    x_{t+1} = Π(x_t + α·sign(g_{t+1})), μ = ``decay`` (1.0 in the paper); ``decay: 0`` is I-FGSM."""

    name = "mifgsm"

    def __init__(self, eps: Annotated[float, Range(ge=0)], steps: Annotated[int, Range(ge=1)] = 10,
                 decay: Annotated[float, Range(ge=0)] = 1.0, **common):
        super().__init__(eps, steps=steps, **common)
        self.decay = float(decay)
        self._momentum = None

    def step(self, z_adv: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
        dim = sample_dim(self._space)
        others = [d for d in range(grad.dim()) if d != dim]
        l1 = grad.abs().sum(dim=others, keepdim=True) if others else grad.abs()
        normed = grad / l1.clamp_min(torch.finfo(grad.dtype).tiny)
        self._momentum = normed if k == 0 else self.decay * self._momentum + normed
        return super().step(z_adv, self._momentum, k)

    def columns(self):
        return {**super().columns(), "decay": self.decay}
