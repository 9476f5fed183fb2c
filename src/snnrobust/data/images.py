"""The shared image pipeline: what a source builds (RawImages) and how it becomes a prepared file's arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveInt, Seed


@dataclass
class RawImages:
    """Full train/test splits as a source built them: uint8 (N,C,H,W) pixels and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    classes: list[str] | None = None
    source_sha256: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Fail loudly if a source produced arrays that break the prepared-file contract (nothing is cast)."""
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, (int, np.integer)) \
                or self.num_classes < 1:
            raise SnnRobustError(f"{self.name}: num_classes must be a positive integer, got {self.num_classes!r}")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            where = f"{self.name} {split} split"
            check_pixels(x, where)
            check_labels(y, self.num_classes, where, n=len(x))
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise SnnRobustError(f"{self.name}: train images are {self.x_train.shape[1:]} but test images are "
                                 f"{self.x_test.shape[1:]}")


@dataclass
class ImageOptions:
    """Options every image source accepts: balanced subset sizes, their seed, and a stand-in label."""

    n_train: PositiveInt | None = None
    n_test: PositiveInt | None = None
    subset_seed: Seed = 0
    stand_in_for: str | None = None


# Where the channel axis of an (N, ·, ·, ·) pixel array sits; a source declares it, nobody guesses.
Layout = Literal["NHWC", "NCHW"]
_CHANNEL_AXIS: dict[str, int] = {"NHWC": 3, "NCHW": 1}
CHANNELS = (1, 3)


def check_pixels(x: np.ndarray, where: str) -> None:
    """uint8 (N, C, H, W) pixels with C in (1, 3): anything else is a one-line error naming ``where``."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise SnnRobustError(f"{where}: pixels must be uint8 0..255, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4 or x.shape[1] not in CHANNELS:
        raise SnnRobustError(f"{where}: pixels must be (N, C, H, W) with C in {CHANNELS}, got shape {x.shape}")


def check_labels(y: np.ndarray, num_classes: int, where: str, n: int | None = None) -> None:
    """Integer 1-D labels in [0, num_classes), ``n`` of them: no float, no (N, 1), no out-of-range label."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        raise SnnRobustError(f"{where}: labels must be integers, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.ndim != 1:
        raise SnnRobustError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if n is not None and len(y) != n:
        raise SnnRobustError(f"{where}: {len(y)} labels for {n} images")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise SnnRobustError(f"{where}: labels span {int(y.min())}..{int(y.max())}, outside 0..{num_classes - 1}")


def to_nchw(x: np.ndarray, layout: str, where: str) -> np.ndarray:
    """Contiguous (N, C, H, W) uint8 from pixels in the declared ``layout``; (N, H, W) is greyscale.

    Never casts and never guesses: a wrong dtype, or a channel axis that does not hold 1 or 3
    channels, is a one-line error (that names the other layout when it would fit).
    """
    if layout not in _CHANNEL_AXIS:
        raise SnnRobustError(f"{where}: unknown layout {layout!r}; choose one of: {', '.join(_CHANNEL_AXIS)}")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise SnnRobustError(f"{where}: pixels must be uint8 0..255, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 3:
        x = np.expand_dims(x, _CHANNEL_AXIS[layout])
    if x.ndim != 4:
        raise SnnRobustError(f"{where}: pixels must be 3-D or 4-D, got shape {x.shape}")
    axis = _CHANNEL_AXIS[layout]
    if x.shape[axis] not in CHANNELS:
        other = next(name for name, a in _CHANNEL_AXIS.items() if a != axis)
        hint = f"; it looks like {other}: declare layout {other!r}" if x.shape[_CHANNEL_AXIS[other]] in CHANNELS else ""
        raise SnnRobustError(f"{where}: shape {x.shape} has {x.shape[axis]} channels on the {layout} channel "
                             f"axis, expected {' or '.join(map(str, CHANNELS))}{hint}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NHWC" else x)


def balanced_subset(y: np.ndarray, n: int | None, seed: int, what: str) -> np.ndarray:
    """Indices of a class-balanced subset of size ``n`` (all when None), in a seeded random order.

    Each class gets ``n // k`` examples; the first ``n % k`` classes (label order) get one more.
    """
    rng = np.random.default_rng(seed)
    if n is None:
        return rng.permutation(len(y))
    classes = np.unique(y)
    if not 0 < n <= len(y):
        raise SnnRobustError(f"{what}={n} must be between 1 and {len(y)}")
    base, extra = divmod(n, len(classes))
    picks = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        want = base + (i < extra)
        if want > len(members):
            raise SnnRobustError(f"{what}={n}: class {c} has only {len(members)} examples, needs {want}")
        picks.append(rng.choice(members, want, replace=False))
    return rng.permutation(np.concatenate(picks))


def channel_stats(x: np.ndarray, chunk: int = 512) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N,C,H,W) pixels scaled to [0,1], accumulated in float64."""
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].astype(np.float64) / 255.0
        total += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    count = max(x.shape[0] * x.shape[2] * x.shape[3], 1)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return [float(v) for v in mean], [float(v) for v in std]


def finish_images(raw: RawImages, opts: ImageOptions, source: str,
                  source_opts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Subset, compute train statistics and assemble the arrays and meta of a prepared image file."""
    raw.check()
    train = balanced_subset(raw.y_train, opts.n_train, opts.subset_seed * 2, "n_train")
    test = balanced_subset(raw.y_test, opts.n_test, opts.subset_seed * 2 + 1, "n_test")
    arrays = {
        "x_train": np.ascontiguousarray(raw.x_train[train]),
        "y_train": raw.y_train[train].astype(np.int64),
        "x_test": np.ascontiguousarray(raw.x_test[test]),
        "y_test": raw.y_test[test].astype(np.int64),
    }
    mean, std = channel_stats(arrays["x_train"])
    meta: dict[str, Any] = {
        "kind": "image",
        "source": source,
        "name": raw.name,
        "num_classes": int(raw.num_classes),
        "in_shape": list(arrays["x_train"].shape[1:]),
        "mean": mean,
        "std": std,
        "stand_in_for": opts.stand_in_for,
        "source_sha256": dict(raw.source_sha256),
        "n_train": len(train),
        "n_test": len(test),
        "subset_seed": opts.subset_seed,
        "options": source_opts,
    }
    if raw.classes is not None:
        meta["classes"] = list(raw.classes)
    return arrays, meta
