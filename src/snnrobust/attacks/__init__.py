"""Attacks: one sign-gradient core (base.py); each attack is one module and one registry line."""

from snnrobust.attacks.base import ATTACKS, Attack, Cost, SignGradientAttack, make_attack
from snnrobust.attacks import fgsm, pgd  # noqa: F401  (register themselves)
from snnrobust.attacks.evaluate import evaluate_attack

__all__ = ["ATTACKS", "Attack", "Cost", "SignGradientAttack", "make_attack", "evaluate_attack"]
