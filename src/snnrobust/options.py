"""Typed options for every registered component: a signature annotation is the declaration.

A component declares each option's type and range in its factory's signature, e.g.
``steps: Annotated[int, Range(ge=1)]`` or ``form: Literal["paper", "released"]``; the one checker
(``coerce_options``, built on top of these markers) validates config values against it at parse
time, so a bad value fails before any job is planned. Floats must be finite unless ``finite=False``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option: ``ge``/``gt`` below, ``le``/``lt`` above (None = unbounded)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True

    def describe(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                 f"<= {self.le:g}" if self.le is not None else "", f"< {self.lt:g}" if self.lt is not None else ""]
        return " and ".join(p for p in parts if p) or "any value"

    def holds(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
