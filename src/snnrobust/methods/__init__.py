"""Training methods: each is a loss on one batch, plugged into the one shared training loop.

Adding a method is one module defining a ``Method`` subclass and one ``@METHODS.register`` line.
"""

from snnrobust.methods.base import METHODS, Method, make_method
from snnrobust.methods import vanilla  # noqa: F401  (registers itself)

__all__ = ["METHODS", "Method", "make_method"]
