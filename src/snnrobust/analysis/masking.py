"""A gradient-masking checklist per model (Carlini et al. 2019, "On Evaluating Adversarial Robustness", Sec. 5;
Athalye et al. 2018, "Obfuscated Gradients", Sec. 3.1): robustness that comes from gradients an attack cannot use,
not from the model, shows up as attacks that do not get stronger when they should.

Three items are measured here with the project's registered attacks (``pgd``, ``random``) on the evaluation subset:

- ``unbounded_pgd_reaches_zero``: PGD over the ε ladder ``eps_255``; at the largest ε the accuracy must be at most
  ``zero_tol`` (an unbounded attack must win; Carlini Sec. 5.2, Athalye Sec. 3.1 "unbounded attacks do not reach
  100 % success").
- ``more_steps_never_help``: PGD at ``check_eps_255`` with each step count of ``steps``; more steps must not raise the
  accuracy. Per-sample outcomes are paired; an item fails when, for some pair fewer → more steps, the one-sided 95 %
  lower bound of the paired accuracy increase exceeds ``tol`` (Carlini Sec. 5.2 "iterative attacks must beat
  fewer iterations").
- ``noise_weaker_than_pgd``: uniform noise (``random``) at ``check_eps_255`` must leave at least the accuracy PGD
  with the most steps leaves (paired, the same one-sided bound against ``tol``; Athalye Sec. 3.1 "random sampling
  finds adversarial examples").

The fourth item (black-box transfer weaker than white-box) comes from the study's transfer rows
(``snnrobust.report.masking``). Accuracies are fractions in [0, 1]; a check row's ``mean`` is 1.0 (pass) or 0.0 (fail).
"""

from __future__ import annotations

import math
from typing import Annotated, Iterable

import torch

from snnrobust.analysis.registry import ANALYSES, summary_row
from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveInt, Range, Seed, UnitInterval

#: The checklist items this analysis measures, in report order.
ITEMS = ("unbounded_pgd_reaches_zero", "more_steps_never_help", "noise_weaker_than_pgd")
#: Shared attack options ``attack_options`` may set on every attack of the checklist (not ε, steps or α: the
#: checklist sets those itself).
ATTACK_OPTIONS = ("loss", "gradient", "space", "mode")
#: z of a one-sided 95 % normal bound on a paired mean difference.
ONE_SIDED_Z = 1.6448536269514722

Eps255 = Annotated[float, Range(gt=0, le=255)]


def paired_increase(higher: torch.Tensor, lower: torch.Tensor) -> tuple[float, float]:
    """(mean, one-sided 95 % lower bound) of the per-sample difference ``higher − lower`` of paired 0/1 outcomes."""
    diff = higher.double() - lower.double()
    n = diff.numel()
    mean = float(diff.mean()) if n else 0.0
    se = float(diff.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    return mean, mean - ONE_SIDED_Z * se


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f} %"


@ANALYSES.register("masking_checklist")
class MaskingChecklist:
    """Per model: clean accuracy, PGD accuracy over the ε ladder (``eps_255``, ``ladder_steps`` steps) and over
    ``steps`` at ``check_eps_255``, uniform-noise accuracy there, and one ``check_<item>`` row per item (mean 1.0 pass,
    0.0 fail, with ``measured``, ``threshold`` and a ``detail`` sentence). ``attack_options`` (loss, gradient, space,
    mode) go to every attack, so the checklist can run under the same reading as a study's attacks."""

    STATISTICS = ("clean_accuracy", "pgd_accuracy", "random_accuracy", *(f"check_{item}" for item in ITEMS))

    def __init__(self, eps_255: list[Eps255] = (8, 16, 32, 64), ladder_steps: PositiveInt = 10,
                 steps: list[PositiveInt] = (7, 20), check_eps_255: Eps255 = 8, zero_tol: UnitInterval = 0.05,
                 tol: UnitInterval = 0.02, attack_options: dict | None = None, seed: Seed = 0):
        ladder = sorted({float(e) for e in eps_255})
        if not ladder or any(not (0 < e <= 255) for e in ladder):
            raise SnnRobustError(f"option eps_255 of masking_checklist must list budgets in (0, 255], got {eps_255!r}")
        counts = sorted({int(s) for s in steps})
        if len(counts) < 2 or counts[0] < 1:
            raise SnnRobustError("option steps of masking_checklist must list at least two distinct step counts >= 1, "
                                 f"got {steps!r}")
        if not 0 < float(check_eps_255) <= 255:
            raise SnnRobustError("option check_eps_255 of masking_checklist must be in (0, 255], "
                                 f"got {check_eps_255!r}")
        common = dict(attack_options or {})
        bad = sorted(set(common) - set(ATTACK_OPTIONS))
        if bad:
            raise SnnRobustError("option attack_options of masking_checklist may set only "
                                 f"{', '.join(ATTACK_OPTIONS)}; got {bad[0]!r}")
        self.eps_255, self.steps, self.ladder_steps = ladder, counts, int(ladder_steps)
        self.check_eps_255, self.zero_tol, self.tol = float(check_eps_255), float(zero_tol), float(tol)
        self.attack_options, self.seed = common, int(seed)
        # build one of each now, so a bad attack option fails at config check
        self._pgd(self.check_eps_255, self.steps[0])
        self._random(self.check_eps_255)

    def _pgd(self, eps_255: float, steps: int):
        from snnrobust.attacks import make_attack

        return make_attack("pgd", eps=eps_255 / 255, steps=steps, random_start=True, **self.attack_options)

    def _random(self, eps_255: float):
        from snnrobust.attacks import make_attack

        return make_attack("random", eps=eps_255 / 255, **self.attack_options)

    def _outcomes(self, model, attack, batches) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean, adversarial) per-sample correctness (0/1) under ``attack``, through the project's attack loop."""
        from snnrobust.attacks import evaluate_attack

        result = evaluate_attack(model, attack, batches, seed=self.seed, progress=False)
        return torch.tensor(result["clean_correct"]), torch.tensor(result["adv_correct"])

    def __call__(self, model, batches: Iterable) -> list[dict]:
        batches = list(batches)
        was_training = model.training
        model.eval()
        try:
            pgd: dict[tuple[float, int], torch.Tensor] = {}
            clean = None
            runs = [(e, self.ladder_steps) for e in self.eps_255] + [(self.check_eps_255, s) for s in self.steps]
            for eps, steps in runs:
                if (eps, steps) not in pgd:
                    clean, pgd[eps, steps] = self._outcomes(model, self._pgd(eps, steps), batches)
            _, noise = self._outcomes(model, self._random(self.check_eps_255), batches)
        finally:
            model.train(was_training)
        return self._rows(clean, pgd, noise)

    def _rows(self, clean: torch.Tensor, pgd: dict, noise: torch.Tensor) -> list[dict]:
        n = int(clean.numel())

        def acc_row(statistic: str, outcomes: torch.Tensor, eps_255: float | None, steps: int | None) -> dict:
            return summary_row(statistic, outcomes, **self._at(eps_255, steps))

        rows = [acc_row("clean_accuracy", clean, None, None)]
        rows += [acc_row("pgd_accuracy", out, eps, steps) for (eps, steps), out in sorted(pgd.items())]
        rows.append(acc_row("random_accuracy", noise, self.check_eps_255, 0))
        rows += [self._unbounded(pgd, n), self._more_steps(pgd, n), self._noise(pgd, noise, n)]
        return rows

    def _at(self, eps_255: float | None, steps: int | None) -> dict:
        return {"eps_255": eps_255, "eps": None if eps_255 is None else eps_255 / 255, "steps": steps}

    def _check(self, item: str, passed: bool, n: int, measured: float, threshold: float, detail: str,
               eps_255: float, steps: int, **extra) -> dict:
        return {"statistic": f"check_{item}", "mean": 1.0 if passed else 0.0, "std": None, "n": n, "item": item,
                **self._at(eps_255, steps), "measured": measured, "threshold": threshold, "detail": detail, **extra}

    def _unbounded(self, pgd: dict, n: int) -> dict:
        top = self.eps_255[-1]
        acc = float(pgd[top, self.ladder_steps].double().mean()) if n else float("nan")
        return self._check("unbounded_pgd_reaches_zero", acc <= self.zero_tol, n, acc, self.zero_tol,
                           f"PGD-{self.ladder_steps} at ε = {top:g}/255 leaves {_pct(acc)} "
                           f"({'≤' if acc <= self.zero_tol else '>'} {_pct(self.zero_tol)})", top, self.ladder_steps)

    def _more_steps(self, pgd: dict, n: int) -> dict:
        eps = self.check_eps_255
        pairs = [(few, more) for few, more in zip(self.steps, self.steps[1:])]
        worst = max(pairs, key=lambda p: paired_increase(pgd[eps, p[1]], pgd[eps, p[0]])[1])
        few, more = worst
        rise, low = paired_increase(pgd[eps, more], pgd[eps, few])
        acc_few, acc_more = (float(pgd[eps, s].double().mean()) for s in (few, more))
        passed = low <= self.tol
        return self._check("more_steps_never_help", passed, n, rise, self.tol,
                           f"PGD at ε = {eps:g}/255: {few} steps {_pct(acc_few)}, {more} steps {_pct(acc_more)}; "
                           f"paired rise {100 * rise:+.1f} pp, 95 % lower bound {100 * low:+.1f} pp "
                           f"({'≤' if passed else '>'} {100 * self.tol:g} pp)", eps, more, fewer_steps=few, low=low)

    def _noise(self, pgd: dict, noise: torch.Tensor, n: int) -> dict:
        eps, most = self.check_eps_255, self.steps[-1]
        excess, low = paired_increase(pgd[eps, most], noise)  # how far PGD leaves more accuracy than noise
        acc_pgd, acc_noise = float(pgd[eps, most].double().mean()), float(noise.double().mean())
        passed = low <= self.tol
        return self._check("noise_weaker_than_pgd", passed, n, acc_noise - acc_pgd, -self.tol,
                           f"at ε = {eps:g}/255: uniform noise {_pct(acc_noise)}, PGD-{most} {_pct(acc_pgd)}; "
                           f"PGD's paired excess {100 * excess:+.1f} pp, 95 % lower bound {100 * low:+.1f} pp "
                           f"({'≤' if passed else '>'} {100 * self.tol:g} pp)", eps, most, low=low)
