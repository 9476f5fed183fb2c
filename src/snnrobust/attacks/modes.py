"""The model's mode while an attack differentiates it: ``eval`` (the default) or ``train`` (batch
statistics in BatchNorm, as the trail code attacks). A train-mode attack never changes the model:
BatchNorm running statistics are restored afterwards, and the caller's mode always comes back."""

import contextlib
from typing import Iterator

import torch
from torch import nn

from snnrobust.registry import Registry

MODES: Registry[bool] = Registry("attack mode")
MODES.register("eval")(False)
MODES.register("train")(True)


@contextlib.contextmanager
def attack_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Within the block ``model`` is in ``mode``; on exit its mode and BatchNorm buffers are as before."""
    training = MODES.get(mode)
    was_training = model.training
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: b.clone() for k, b in m.named_buffers(recurse=False)} for m in norms] if training else []
    model.train(training)
    try:
        yield model
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for k, b in m.named_buffers(recurse=False):
                    b.copy_(buffers[k])
        model.train(was_training)
