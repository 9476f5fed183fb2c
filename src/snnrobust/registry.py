"""Name → factory registries (PyG-resolver style): one decorator line registers a component.

Every registry checks options the same way (``snnrobust.options``): names and values against the
factory's annotated signature, or its ``option_types`` declaration when it takes ``**kwargs``.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

from snnrobust.errors import SnnRobustError
from snnrobust.options import coerce_options, declared_options

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
        """Keyword options the registered factory declares (None if it takes undeclared ``**kwargs``)."""
        declared, open_ = declared_options(self.get(name))
        return None if open_ else set(declared)

    def check_options(self, name: str, opts: dict, *, supplied: Iterable[str] = ()) -> dict:
        """``opts`` with every name and value checked (one-line error otherwise), values as declared.

        ``supplied`` names options the caller passes itself (e.g. an attack's ``eps``): not required here.
        """
        return self._checked(name, opts, supplied)

    def create(self, name: str, **opts: Any):
        """Call the registered factory with ``opts`` after checking their names and values."""
        return self.get(name)(**self._checked(name, opts, ()))

    def _checked(self, name: str, opts: dict, supplied: Iterable[str]) -> dict:
        return coerce_options(self.get(name), opts, f"{self.kind} {_normalise(str(name))!r}", supplied=supplied)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return _normalise(str(name)) in self._items

    def __iter__(self):
        return iter(sorted(self._items))
