"""APGD (Croce & Hein, 2020, Alg. 1): ℓ∞ sign-gradient ascent with momentum, a per-sample step size
halved at checkpoints when progress stalls, and best-point tracking.

The SR paper's "APGD10" ran torchattacks 3.2.7 with only ε given, i.e. its default 100 steps (3.5's
default is 10): ``steps`` is a config value either way. Loss, gradient rule, space and mode are the
shared attack options (``loss: dlr`` gives APGD-DLR); every gradient is one counted
``loss_gradient`` call.
"""

from typing import Annotated

import torch

from snnrobust.attacks.base import ATTACKS, SignGradientAttack
from snnrobust.attacks.rows import per_sample, sample_dim, where_rows
from snnrobust.options import Range

MOMENTUM = 0.75  # α of Alg. 1 (fixed in the paper)


def checkpoint_periods(steps: int):
    """Lengths of the periods between checkpoints: p_1 = 0.22, then
    p_{j+1} − p_j = max(p_j − p_{j−1} − 0.03, 0.06) (Sec. 3.2), in whole iterations as the
    reference implementation counts them."""
    period = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    while True:
        yield period
        period = max(period - shrink, shortest)


@ATTACKS.register("apgd")
class APGD(SignGradientAttack):
    """ℓ∞ APGD: η starts at 2ε; ``n_restarts`` runs, each from a random point on the ε-sphere and
    only on the samples not broken yet. The point returned per sample is a misclassified iterate if
    any run found one, else the highest-loss iterate. ``alpha`` (a result column) is the initial η."""

    name = "apgd"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        steps: Annotated[int, Range(ge=1)] = 10,
        n_restarts: Annotated[int, Range(ge=1)] = 1,
        rho: Annotated[float, Range(ge=0, le=1)] = 0.75,
        **common,
    ):
        super().__init__(eps, steps=steps, alpha=2 * float(eps), random_start=True, **common)
        self.n_restarts = int(n_restarts)
        self.rho = float(rho)

    def start(self, view, z, generator):
        """z + ε·t/‖t‖∞ per sample, t ~ U(−1, 1): a random point on the ε-sphere, clamped to the box."""
        t = torch.rand(z.shape, generator=generator, dtype=z.dtype, device=z.device) * 2 - 1
        dim = sample_dim(self._space)
        others = [d for d in range(z.dim()) if d != dim]
        scale = t.abs().amax(dim=others, keepdim=True) if others else t.abs()
        return torch.clamp(z + self.eps * t / scale, view.lo, view.hi)

    def perturb(self, view, z, y, generator):
        dim = sample_dim(self._space)
        best, best_loss = z.clone(), torch.full(y.shape, -float("inf"), dtype=z.dtype, device=z.device)
        broken = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
        for _ in range(self.n_restarts):
            rows = (~broken).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            # Draw for every row and keep the unbroken ones: a sample's start does not depend on the others.
            x0 = self.start(view, z, generator).index_select(dim, rows)
            point, loss, fooled = self._run(view, z.index_select(dim, rows), y[rows], x0, dim)
            take = fooled | (loss > best_loss[rows])
            best.index_copy_(dim, rows, where_rows(take, point, best.index_select(dim, rows), dim))
            best_loss[rows] = torch.where(take, loss, best_loss[rows])
            broken[rows] = fooled
        return best

    def _evaluate(self, view, z, y):
        """(loss per sample, misclassified, gradient) at ``z``: one counted forward and backward."""
        seen = []

        def tap(point):
            logits = view(point)
            seen.append(logits.detach())
            return logits

        grad = self.loss_gradient(tap, z, y)
        logits = seen[-1]
        return self._loss_fn(logits, y).detach(), logits.argmax(1) != y, grad

    def _run(self, view, z, y, x, dim):
        """One run of Alg. 1 from ``x``: (returned point, its loss, broken) per sample."""
        step = per_sample(torch.full(y.shape, 2 * self.eps, dtype=z.dtype, device=z.device), z, dim)
        loss, fooled, grad = self._evaluate(view, x, y)
        x_best, loss_best, grad_best = x.clone(), loss.clone(), grad.clone()
        x_fool = x.clone()
        x_prev = x.clone()
        prev_loss = loss
        increases = torch.zeros_like(loss)
        periods = checkpoint_periods(self.steps)
        period, since = next(periods), 0
        best_at_check, reduced_at_check = loss_best.clone(), torch.ones_like(fooled)
        for k in range(self.steps):
            a = 1.0 if k == 0 else MOMENTUM
            z_next = self.project(view, x + step * grad.sign(), z)
            x_next = self.project(view, x + a * (z_next - x) + (1 - a) * (x - x_prev), z)
            x_prev, x = x, x_next
            loss, wrong, grad = self._evaluate(view, x, y)
            x_fool = where_rows(wrong, x, x_fool, dim)
            fooled = fooled | wrong
            increases += (loss > prev_loss).to(increases.dtype)
            prev_loss = loss
            better = loss > loss_best
            x_best, grad_best = where_rows(better, x, x_best, dim), where_rows(better, grad, grad_best, dim)
            loss_best = torch.where(better, loss, loss_best)
            since += 1
            if since == period:
                # Condition 1: too few increases in the period; condition 2: η kept and no better point since.
                stalled = increases <= self.rho * period
                no_gain = ~reduced_at_check & (best_at_check >= loss_best)
                reduce = stalled | no_gain
                step = torch.where(per_sample(reduce, step, dim), step / 2, step)
                x, grad = where_rows(reduce, x_best, x, dim), where_rows(reduce, grad_best, grad, dim)
                best_at_check, reduced_at_check = loss_best.clone(), reduce
                increases.zero_()
                period, since = next(periods), 0
        return where_rows(fooled, x_fool, x_best, dim), loss_best, fooled
