"""Training methods: each is a loss on one batch, plugged into the one shared training loop.

Adding a method is one module defining a ``Method`` subclass and one ``@METHODS.register`` line.
Registered: vanilla, at, rat (SNN-RAT), sr (Algorithm 1 of the SR paper), sr_star (SR at adversarial
examples) and spiking_pgd_at (AT with a Spiking-PGD inner attack and a ρ schedule); the adversarial ones share
one inner-attack helper (``methods.adversarial``).
"""

from snnrobust.methods.base import METHODS, Method, make_method
from snnrobust.methods import vanilla, at, rat, sr, spiking_pgd_at  # noqa: F401  (register themselves)

__all__ = ["METHODS", "Method", "make_method"]
