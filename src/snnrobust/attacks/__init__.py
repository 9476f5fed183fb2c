"""Attacks: one sign-gradient core (base.py) with plug-in losses, gradient rules, spaces and modes;
each attack is one module and one registry line (FGSM, PGD, I-FGSM, MI-FGSM, R+FGSM, APGD, uniform
noise, the SR paper's surrogate/RGA ensemble, Spiking-PGD's activation reuse); transfer wraps any attack
with a source model."""

from snnrobust.attacks.base import (ATTACKS, Attack, AttackView, Cost, SignGradientAttack, check_attack_options,
                                    make_attack)
from snnrobust.attacks import (apgd, ensemble, fgsm, ifgsm, pgd, random_noise, rfgsm,  # noqa: F401
                               spiking_pgd)  # (register themselves)
from snnrobust.attacks import topology  # noqa: F401  (registers the graph attack and its space)
from snnrobust.attacks.ensemble import Ensemble
from snnrobust.attacks.evaluate import evaluate_attack
from snnrobust.attacks.gradient_rules import GRADIENT_RULES, GradientRule, make_gradient_rule, rate_gradient
from snnrobust.attacks.losses import LOSSES
from snnrobust.attacks.modes import MODES, attack_mode
from snnrobust.attacks.reuse import ActivationReuse, activation_reuse
from snnrobust.attacks.spaces import SPACES
from snnrobust.attacks.transfer import Transfer

__all__ = ["ATTACKS", "ActivationReuse", "Attack", "AttackView", "Cost", "Ensemble", "GRADIENT_RULES", "GradientRule",
           "LOSSES", "MODES", "SPACES", "SignGradientAttack", "Transfer", "activation_reuse", "attack_mode",
           "check_attack_options", "evaluate_attack", "make_attack", "make_gradient_rule", "rate_gradient"]
