"""Deterministic batches: the order and augmentation depend only on (seed, epoch), so a resumed run
sees exactly the batches an uninterrupted one would; feeds give the training loop image mini-batches
or a full graph, by the data's kind, on the run's device."""

from __future__ import annotations

from typing import Callable, Iterator, Literal

import numpy as np
import torch
from torch import nn

from snnrobust.data.transforms import random_crop_flip, random_flip
from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry


#: Training augmentations by the recipe's ``augment`` value: ``true`` random crop (pad 4) + horizontal flip,
#: ``flip`` horizontal flip only (the trail paper's recipe); ``false`` none. Each draws from the (seed, epoch)
#: generator, so the batches of an epoch are the same on every run and on resume.
AUGMENTATIONS: dict[object, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    True: random_crop_flip,
    "flip": random_flip,
}
Augment = bool | Literal["flip"]


def augmentation(augment: Augment) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """The transform an ``augment`` value names (None for false); any other value is a one-line error."""
    if augment is False:
        return None
    for key, transform in AUGMENTATIONS.items():
        if augment == key and type(augment) is type(key):
            return transform
    raise SnnRobustError(f"augment must be true (crop + flip), 'flip' (flip only) or false, got {augment!r}")


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch) through numpy's SeedSequence (well-mixed, reproducible)."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class BatchLoader:
    """Iterable of (x float32 in [0,1] [B,C,H,W], y int64 [B]); every iteration replays the same batches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 epoch: int = 0, augment: Augment = False, limit: int | None = None):
        if batch_size < 1:
            raise SnnRobustError(f"batch_size must be at least 1, got {batch_size}")
        if limit is not None and limit < 1:
            raise SnnRobustError(f"limit must be at least 1, got {limit}")
        n = len(x) if limit is None else min(limit, len(x))
        self.x, self.y = x[:n], y[:n]
        self.batch_size, self.shuffle, self.seed, self.epoch, self.augment = batch_size, shuffle, seed, epoch, augment
        self._transform = augmentation(augment)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = epoch_generator(self.seed, self.epoch)
        n = len(self.x)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            xb = self.x[idx].float().div_(255.0)
            if self._transform is not None:
                xb = self._transform(xb, gen)
            yield xb, self.y[idx]


class OnDevice:
    """An iterable of (x, y) batches moved to ``device`` as they are drawn (a no-op on CPU)."""

    def __init__(self, batches, device: torch.device):
        self.batches, self.device = batches, torch.device(device)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.batches:
            yield x.to(self.device), y.to(self.device)


class MaskedNodes(nn.Module):
    """A node classifier seen as features-in, logits-of-some-nodes-out: ``forward(x) =
    model(x, edge_index)[mask]``, so the image training loop, its methods and the attacks apply unchanged."""

    def __init__(self, model: nn.Module, edge_index: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.model, self.edge_index, self.mask = model, edge_index, mask
        self.spiking, self.T = getattr(model, "spiking", False), getattr(model, "T", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.edge_index)[self.mask]


#: Stream tag of the validation hold-out in the (seed, tag) seed sequence (never an epoch number).
_HOLDOUT_STREAM = 0x76616C69


def holdout_split(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) of an n-example training set: ``val_size`` examples drawn by a
    permutation seeded from ``seed`` alone (the same split every epoch and on resume), both in index order."""
    if not 1 <= val_size < n:
        raise SnnRobustError(f"val_size must be between 1 and {n - 1} (the training split has {n} examples), "
                             f"got {val_size}")
    state = np.random.SeedSequence([int(seed), _HOLDOUT_STREAM]).generate_state(1, np.uint64)[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF))
    return order[val_size:].sort().values, order[:val_size].sort().values


class ImageFeed:
    """Image mini-batches for the training loop: shuffled and augmented per (seed, epoch) on the CPU
    (so the data order does not depend on the device), then moved to ``device``.

    With ``val_size`` a validation split is held out of the training split (``holdout_split``): training
    batches (and ``train_limit``) draw only from the rest, ``val()`` gives the held-out examples, and the
    test split is never touched by either.
    """

    def __init__(self, data, cfg, device: torch.device):
        self.data, self.cfg, self.device = data, cfg, torch.device(device)
        self.train_index = self.val_index = None
        if cfg.val_size is not None:
            x, y = data.split("train")
            self.train_index, self.val_index = holdout_split(len(y), cfg.val_size, cfg.seed)
            if cfg.train_limit is not None and cfg.train_limit > len(self.train_index):
                raise SnnRobustError(f"asked for {cfg.train_limit} training examples of {data.path}, which has only "
                                     f"{len(self.train_index)} after holding out val_size={cfg.val_size}")
            self._train = x[self.train_index], y[self.train_index]
            self._val = x[self.val_index], y[self.val_index]

    def train(self, epoch: int) -> OnDevice:
        c = self.cfg
        if self.val_index is None:
            return OnDevice(self.data.loader("train", c.batch_size, shuffle=True, seed=c.seed, epoch=epoch,
                                             augment=c.augment, limit=c.train_limit), self.device)
        return OnDevice(BatchLoader(*self._train, c.batch_size, shuffle=True, seed=c.seed, epoch=epoch,
                                    augment=c.augment, limit=c.train_limit), self.device)

    def val(self) -> OnDevice:
        """The held-out validation examples, unshuffled (an error without ``val_size``)."""
        if self.val_index is None:
            raise SnnRobustError("no validation split: set the training option val_size")
        return OnDevice(BatchLoader(*self._val, self.cfg.eval_batch_size, shuffle=False, seed=self.cfg.seed),
                        self.device)

    def test(self, limit: int | None) -> OnDevice:
        """The first ``limit`` test images, unshuffled (the fixed evaluation subset)."""
        return OnDevice(self.data.loader("test", self.cfg.eval_batch_size, shuffle=False, seed=self.cfg.seed,
                                         limit=limit), self.device)

    def view(self, model: nn.Module, split: str) -> nn.Module:
        return model


class GraphFeed:
    """Full-batch node classification: one batch per epoch holding every node's features; the loss and
    the scores see only the split's nodes (train or test mask) through ``MaskedNodes``."""

    def __init__(self, data, cfg, device: torch.device):
        for option, off in (("augment", False), ("train_limit", None), ("eval_limit", None), ("val_size", None)):
            if getattr(cfg, option) is not off:
                raise SnnRobustError(f"train option {option} does not apply to graph data {data.path}")
        graph = data.graph
        self.device = torch.device(device)
        self.x, self.y, self.edge_index = (t.to(self.device) for t in (graph.x, graph.y, graph.edge_index))
        self.masks = {"train": graph.train_mask.to(self.device), "test": graph.test_mask.to(self.device)}

    def _split(self, split: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(self.x, self.y[self.masks[split]])]

    def train(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self._split("train")

    def test(self, limit: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if limit is not None:
            raise SnnRobustError(f"an evaluation limit ({limit}) does not apply to graph data: every test node is scored")
        return self._split("test")

    def view(self, model: nn.Module, split: str) -> nn.Module:
        return MaskedNodes(model, self.edge_index, self.masks[split])


FEEDS: Registry[Callable] = Registry("data kind")
FEEDS.register("image")(ImageFeed)
FEEDS.register("events")(ImageFeed)  # pre-encoded frames [N, T, C, H, W] batch like images
FEEDS.register("graph")(GraphFeed)


def make_feed(data, cfg, device: torch.device | str = "cpu"):
    """The training loop's view of prepared ``data`` (by its kind), with batches on ``device``."""
    return FEEDS.get(data.kind)(data, cfg, device)
