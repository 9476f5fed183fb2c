"""Reading a prepared file back: ``load_prepared`` checks its arrays and wraps them in ``PreparedData``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnrobust.data.graphdata import GRAPH_MASKS
from snnrobust.data.images import check_labels, check_pixels
from snnrobust.data.loader import BatchLoader
from snnrobust.data.store import read_prepared
from snnrobust.errors import SnnRobustError

# Required arrays per kind: name → (dtype kind code, ndim).
_SCHEMA: dict[str, dict[str, tuple[str, int]]] = {
    "image": {"x_train": ("u", 4), "y_train": ("i", 1), "x_test": ("u", 4), "y_test": ("i", 1)},  # HWC never
    "graph": {"x": ("f", 2), "edge_index": ("i", 2), "y": ("i", 1), **{m: ("b", 1) for m in GRAPH_MASKS}},
    "events": {"x_train": ("u", 5), "y_train": ("i", 1), "x_test": ("u", 5), "y_test": ("i", 1)},  # N,T,C,H,W
}
_SPLITS = ("train", "test")


_META_KEYS = ("num_classes", "in_shape")


def _check_image(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Pixels uint8 (N, C, H, W) matching ``in_shape``, labels 1-D integers in [0, num_classes)."""
    for split in _SPLITS:
        where = f"prepared data {path} ({split} split)"
        x = arrays[f"x_{split}"]
        check_pixels(x, where)
        check_labels(arrays[f"y_{split}"], meta["num_classes"], where, n=len(x))
        if list(x.shape[1:]) != list(meta["in_shape"]):
            raise SnnRobustError(f"{where}: images are {tuple(x.shape[1:])} but meta in_shape is {meta['in_shape']}")


def _check_graph(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Finite node features, edges between existing nodes, labels in range, one mask entry per node."""
    where = f"prepared data {path}"
    n = len(arrays["x"])
    if not np.isfinite(arrays["x"]).all():
        raise SnnRobustError(f"{where}: node features contain NaN or infinite values")
    edges = arrays["edge_index"]
    if edges.shape[0] != 2 or (edges.size and (edges.min() < 0 or edges.max() >= n)):
        raise SnnRobustError(f"{where}: edge_index must be (2, E) with node ids in 0..{n - 1}")
    check_labels(arrays["y"], meta["num_classes"], where, n=n)
    for mask in GRAPH_MASKS:
        if len(arrays[mask]) != n:
            raise SnnRobustError(f"{where}: {mask} has {len(arrays[mask])} entries for {n} nodes")


def _check_events(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Frames uint8 (N, T, C, H, W) with (C, H, W) = in_shape and T = meta frames; labels in range."""
    for split in _SPLITS:
        where = f"prepared data {path} ({split} split)"
        x = arrays[f"x_{split}"]
        check_labels(arrays[f"y_{split}"], meta["num_classes"], where, n=len(x))
        if list(x.shape[2:]) != list(meta["in_shape"]) or x.shape[1] != meta.get("frames"):
            raise SnnRobustError(f"{where}: frames are {tuple(x.shape[1:])} but meta says "
                                 f"{meta.get('frames')} x {meta['in_shape']}")


# Per-kind value checks, run after the schema (dtype family and rank) holds.
_VALUE_CHECKS = {"image": _check_image, "graph": _check_graph, "events": _check_events}


def _check(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every array the kind needs, with the right dtype family and rank, the meta keys readers use, and
    values that keep the contract (label range, shapes, finiteness)."""
    kind = meta["kind"]
    if kind not in _SCHEMA:
        raise SnnRobustError(f"corrupt prepared data {path}: unknown kind {kind!r}")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise SnnRobustError(f"corrupt prepared data {path}: meta lacks {missing[0]!r}")
    classes = meta["num_classes"]
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise SnnRobustError(f"corrupt prepared data {path}: num_classes must be a positive integer, got {classes!r}")
    for key, (code, ndim) in _SCHEMA[kind].items():
        if key not in arrays:
            raise SnnRobustError(f"corrupt prepared data {path}: missing array {key!r}")
        if arrays[key].dtype.kind != code or arrays[key].ndim != ndim:
            found = f"{arrays[key].dtype} with ndim {arrays[key].ndim}"
            raise SnnRobustError(f"corrupt prepared data {path}: {key} is {found}")
    _VALUE_CHECKS[kind](path, meta, arrays)


@dataclass
class PreparedData:
    """A prepared dataset in memory; image splits as uint8 tensors, graphs as a PyG ``Data``."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.meta["in_shape"])

    def _need(self, kind: str) -> None:
        kinds = ("image", "events") if kind == "image" else (kind,)  # event frames batch like images
        if self.kind not in kinds:
            raise SnnRobustError(f"{self.path} holds {self.kind} data, not {kind} data")

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x uint8 [N,C,H,W], y int64 [N]) of the image split ``name`` ('train' or 'test')."""
        self._need("image")
        if name not in _SPLITS:
            raise SnnRobustError(f"unknown split {name!r}; choose one of: {', '.join(_SPLITS)}")
        return torch.from_numpy(self.arrays[f"x_{name}"]), torch.from_numpy(self.arrays[f"y_{name}"])

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("train")

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("test")

    def loader(self, split: str, batch_size: int, shuffle: bool, seed: int, epoch: int = 0,
               augment: bool | str = False, limit: int | None = None) -> BatchLoader:
        """Batches of the first ``limit`` examples of ``split`` (all if None).

        Order (``shuffle``) and augmentation (``true``: random crop, pad 4, + horizontal flip; ``"flip"``: the flip
        only) depend only on (seed, epoch).
        """
        x, y = self.split(split)
        if limit is not None and limit > len(x):
            raise SnnRobustError(f"asked for {limit} examples of the {split} split of {self.path}, "
                                 f"which has only {len(x)}")
        return BatchLoader(x, y, batch_size, shuffle, seed, epoch=epoch, augment=augment, limit=limit)

    @property
    def graph(self):
        """The graph as a ``torch_geometric.data.Data`` with x, edge_index, y and the three masks."""
        from torch_geometric.data import Data

        self._need("graph")
        return Data(**{k: torch.from_numpy(self.arrays[k]) for k in _SCHEMA["graph"]})


def load_prepared(path: str | Path) -> PreparedData:
    """Load and check a file written by ``prepare_dataset``; missing or corrupt files are one-line errors."""
    path = Path(path)
    arrays, meta = read_prepared(path)
    _check(path, meta, arrays)
    return PreparedData(path, meta, arrays)
