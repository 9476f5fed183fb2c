"""The model registry: arch name → factory(num_classes, in_shape, **opts) -> nn.Module."""

from typing import Callable, Iterable

from torch import nn

from snnrobust.registry import Registry


class ModelRegistry(Registry):
    """Model factories take the data's ``num_classes`` and ``in_shape`` first; a config sets only the rest."""

    DATA_INPUTS = ("num_classes", "in_shape")

    def check_options(self, name: str, opts: dict, *, supplied: Iterable[str] = ()) -> dict:
        return super().check_options(name, opts, supplied=(*self.DATA_INPUTS, *supplied))


MODELS: ModelRegistry = ModelRegistry("arch")
