"""Temporary per-instance ``forward`` overrides: how gradient rules and activation reuse wrap a model's modules
without subclassing or copying them, leaving the model exactly as before on exit."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

from torch import nn

_NO_OWN_FORWARD = object()


@contextlib.contextmanager
def instance_forwards(patches: Iterable[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Within the block each module's ``forward`` is its given callable (an instance attribute); on exit, also on an
    exception, the module's own instance ``forward`` comes back, or none (its class's) where it had none."""
    patches = list(patches)  # every callable is built before any forward is replaced
    saved = [(m, m.__dict__.get("forward", _NO_OWN_FORWARD)) for m, _ in patches]
    try:
        for m, forward in patches:
            m.forward = forward
        yield
    finally:
        for m, own in saved:
            if own is _NO_OWN_FORWARD:
                m.__dict__.pop("forward", None)
            else:
                m.forward = own
