"""Where an attack perturbs: ``pixel`` (the image, through the model's encoder) or ``spike`` (the
encoded input sequence of an SNN, as the trail paper's code does). A space maps the clean batch to
the attack's starting point, runs the model from a point, and gives the box a point must stay in.
"""

import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry


class PixelSpace:
    """Perturb pixels in [0, 1]; any pixel-in, logits-out model."""

    name = "pixel"
    batch_dim = 0  # points are [B, ...]
    needs_spiking = False  # any model (the config check reads this before a job runs)

    def check(self, model: nn.Module) -> None:
        pass

    def start(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x.detach()

    def forward(self, model: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return model(z)

    def bounds(self, model: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z.new_tensor(0.0), z.new_tensor(1.0)


class SpikeSpace:
    """Perturb the encoded sequence [T, B, ...] of a spiking model (``encode``/``forward_encoded``),
    kept inside the values its encoder can emit."""

    name = "spike"
    batch_dim = 1  # points are the encoded sequence [T, B, ...]
    needs_spiking = True  # only a spiking model (a factory with ``spiking = True``), checked at config time

    def check(self, model: nn.Module) -> None:
        if not (getattr(model, "spiking", False) and hasattr(model, "encode") and hasattr(model, "forward_encoded")):
            raise SnnRobustError(
                f"attack space 'spike' needs a spiking model with an input encoder, got {type(model).__name__}"
            )

    def start(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.encode(x).detach().contiguous()

    def forward(self, model: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return model.forward_encoded(z)

    def bounds(self, model: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(b.to(device=z.device, dtype=z.dtype) for b in model.encoded_bounds())


SPACES: Registry[object] = Registry("attack space")
SPACES.register("pixel")(PixelSpace())
SPACES.register("spike")(SpikeSpace())
