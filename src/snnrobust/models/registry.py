"""The model registry: arch name → factory(num_classes, in_shape, **opts) -> nn.Module."""

from typing import Callable, Iterable

from torch import nn

from snnrobust.registry import Registry


class ModelRegistry(Registry):
    """Model factories take the data's ``num_classes`` and ``in_shape`` first; a config sets only the rest."""

    DATA_INPUTS = ("num_classes", "in_shape")

    def check_options(self, name: str, opts: dict, *, supplied: Iterable[str] = ()) -> dict:
        """Each option's name and value, then (if the factory declares ``cross_check(opts)``) the options
        together: values valid alone but not side by side (a pooling under a stem without a pool) fail here,
        at config time, rather than in the job that builds the model."""
        checked = super().check_options(name, opts, supplied=(*self.DATA_INPUTS, *supplied))
        cross_check = getattr(self.get(name), "cross_check", None)
        if cross_check is not None:
            cross_check(checked)
        return checked


MODELS: ModelRegistry = ModelRegistry("arch")
