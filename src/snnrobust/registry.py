"""Name → factory registries (PyG-resolver style): one decorator line registers a component."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, TypeVar

from snnrobust.errors import SnnRobustError

T = TypeVar("T")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class Registry(Generic[T]):
    """A named table of factories; unknown names fail with the list of valid choices."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = _normalise(name)

        def deco(obj: T) -> T:
            if key in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        key = _normalise(str(name))
        if key not in self._items:
            raise SnnRobustError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"
            )
        return self._items[key]

    def option_names(self, name: str) -> set[str] | None:
        """Keyword options the registered factory takes (None if it takes any ``**kwargs``)."""
        factory = self.get(name)
        target = factory.__init__ if inspect.isclass(factory) else factory
        params = inspect.signature(target).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        return set(params) - {"self"}

    def check_options(self, name: str, opts: dict) -> None:
        """One-line error naming the options the factory does not take."""
        allowed = self.option_names(name)
        unknown = sorted(set(opts) - allowed) if allowed is not None else []
        if unknown:
            raise SnnRobustError(f"{self.kind} {name!r} has no option(s) {', '.join(unknown)}")

    def create(self, name: str, **opts: Any):
        """Call the registered factory with ``opts``; an option it does not take is a one-line error."""
        self.check_options(name, opts)
        return self.get(name)(**opts)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return _normalise(str(name)) in self._items

    def __iter__(self):
        return iter(sorted(self._items))
