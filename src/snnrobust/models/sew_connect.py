"""SEW-ResNet's residual ADD as a module, so hooks (the trail paper's per-operation gradient sparsity, Figs. 3/5)
can see both of its inputs.

spikingjelly's SEW blocks call the function ``sew_function(a, b, cnf)``, which no module hook reaches. ``modular_add``
turns every SEW block of a built network into a subclass whose forward is spikingjelly's, with that call replaced by
the child module ``connect`` (an :class:`Add`). The Add has no parameters or buffers (checkpoints are unchanged) and
x + y is commutative in IEEE arithmetic, so outputs and gradients are bit-identical (tested). Its inputs are always
(shortcut, residual): branch 0 is the identity or downsampled shortcut, branch 1 the block's conv path.
"""

from __future__ import annotations

import torch
from torch import nn

from snnrobust.errors import SnnRobustError


class Add(nn.Module):
    """x + y as a module (SEW ``cnf='ADD'``, Fang et al. 2021): a hookable residual connection, stateless."""

    def forward(self, shortcut: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return shortcut + residual


class _ModuleConnect:
    """The forward of spikingjelly's SEW BasicBlock / Bottleneck (conv → BN → neuron per stage, spiking downsample on
    the shortcut), calling ``self.connect(shortcut, residual)`` where spikingjelly calls ``sew_function``."""

    n_stages = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i in range(1, self.n_stages + 1):
            out = getattr(self, f"sn{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out)))
        shortcut = x if self.downsample is None else self.downsample_sn(self.downsample(x))
        return self.connect(shortcut, out)


#: spikingjelly SEW block class name → its number of conv → BN → neuron stages.
STAGES = {"BasicBlock": 2, "Bottleneck": 3}


def _modular(base: str) -> type:
    """``Modular<base>``: spikingjelly's SEW block ``base`` with a module connection, made on first use (importing
    spikingjelly's SEW module costs about 2 s) and kept as a module attribute, so a pickled model finds it."""
    name = f"Modular{base}"
    if name not in globals():
        from spikingjelly.activation_based.model import sew_resnet

        globals()[name] = type(name, (_ModuleConnect, getattr(sew_resnet, base)),
                               {"n_stages": STAGES[base], "__module__": __name__})
    return globals()[name]


def __getattr__(name: str) -> type:
    base = name.removeprefix("Modular")
    if name.startswith("Modular") and base in STAGES:
        return _modular(base)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_sew_block(module: nn.Module) -> bool:
    """Exactly one of spikingjelly's SEW block classes (a block already made modular is not)."""
    cls = type(module)
    return cls.__module__.endswith("activation_based.model.sew_resnet") and cls.__name__ in STAGES


def modular_add(net: nn.Module) -> nn.Module:
    """Give every SEW block of ``net`` (built with ``cnf='ADD'``) an :class:`Add` child ``connect`` that its forward
    calls; other cnf values are refused (only ADD is a sum, hence order-free and bit-identical)."""
    for block in [m for m in net.modules() if _is_sew_block(m)]:
        if block.cnf != "ADD":
            raise SnnRobustError(f"modular_add needs SEW blocks with cnf='ADD', got cnf={block.cnf!r}")
        block.__class__ = _modular(type(block).__name__)  # same attributes, spikingjelly's forward, module connection
        block.connect = Add()
    return net
