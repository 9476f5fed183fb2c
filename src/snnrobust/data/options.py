"""Kept for imports: the option checker lives in ``snnrobust.options`` (one mechanism for every registry)."""

from snnrobust.options import coerce_options

__all__ = ["coerce_options"]
