"""Uniform noise in the ℓ∞ ball (the SR paper's random attack, Fig. 1 and Tab. 4): no gradient.

Two readings, told apart by ``draws`` (a column of every result row): one draw per sample (Sec. 4.1 and
5.6 describe a single uniformly drawn perturbation) and ``draws: 4``, the worst of 4 draws, as the SR
code's evaluation ran it (its ``val_ensemble`` redraws the noise for each of its 4 ensemble settings and
counts a sample robust only if all 4 leave it correct).
"""

from typing import Annotated

import torch

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.attacks.rows import sample_dim, where_rows
from snnrobust.options import Range


@ATTACKS.register("random")
class UniformNoise(SignGradientAttack):
    """x + δ, δ ~ U(−ε, ε) per coordinate, clamped to the box, drawn from the attack's generator.

    With ``draws`` > 1 a sample counts as broken if any draw breaks it (the SR code's
    ``val_ensemble`` took the worst of 4 draws): each draw costs one forward pass and the point
    kept per sample is a breaking draw if there is one, else the draw with the highest loss.
    No gradient pass is ever made.
    """

    name = "random"

    def __init__(self, eps: Annotated[float, Range(ge=0)], draws: Annotated[int, Range(ge=1)] = 1, **common):
        super().__init__(eps, steps=1, random_start=True, **common)
        self.steps, self.alpha = 0, None  # no gradient step
        self.draws = int(draws)

    def perturb(self, view, z, y, generator):
        best = self.start(view, z, generator)
        if self.draws == 1:
            return best
        dim = sample_dim(self._space)
        broken, loss = self._judge(view, best, y)
        for _ in range(self.draws - 1):
            cand = self.start(view, z, generator)
            c_broken, c_loss = self._judge(view, cand, y)
            take = (c_broken & ~broken) | ((c_broken == broken) & (c_loss > loss))
            best = where_rows(take, cand, best, dim)
            loss = torch.where(take, c_loss, loss)
            broken |= c_broken
        return best

    def columns(self):
        """The shared columns plus ``draws``, so a result row says which reading of Tab. 4 it is."""
        return {**super().columns(), "draws": self.draws}

    def _judge(self, view, z, y) -> tuple[torch.Tensor, torch.Tensor]:
        """(misclassified, loss) per sample at ``z``: one forward pass, counted."""
        with torch.no_grad():
            logits = view(z)
        self.cost.forward += 1
        return logits.argmax(1) != y, self._loss_fn(logits, y)
