"""Deterministic mini-batches: the order and augmentation depend only on (seed, epoch), so a resumed run
sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from snnrobust.data.transforms import random_crop_flip
from snnrobust.errors import SnnRobustError


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch) through numpy's SeedSequence (well-mixed, reproducible)."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class BatchLoader:
    """Iterable of (x float32 in [0,1] [B,C,H,W], y int64 [B]); every iteration replays the same batches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 epoch: int = 0, augment: bool = False, limit: int | None = None):
        if batch_size < 1:
            raise SnnRobustError(f"batch_size must be at least 1, got {batch_size}")
        if limit is not None and limit < 1:
            raise SnnRobustError(f"limit must be at least 1, got {limit}")
        n = len(x) if limit is None else min(limit, len(x))
        self.x, self.y = x[:n], y[:n]
        self.batch_size, self.shuffle, self.seed, self.epoch, self.augment = batch_size, shuffle, seed, epoch, augment

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = epoch_generator(self.seed, self.epoch)
        n = len(self.x)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            xb = self.x[idx].float().div_(255.0)
            if self.augment:
                xb = random_crop_flip(xb, gen)
            yield xb, self.y[idx]
