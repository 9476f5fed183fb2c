"""``npz``: an offline folder of split files (CIFAR-style pixel arrays or Tiny-ImageNet-style JPEG blobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from snnrobust.data.checksums import file_digest, verify_sums
from snnrobust.data.images import RawImages
from snnrobust.data.sources import image_source
from snnrobust.data.transforms import decode_images, hwc_to_chw, resize_to_uint8
from snnrobust.errors import SnnRobustError

TRAIN_FILE = "train.npz"
TEST_FILES = ("test.npz", "val.npz")  # the first one present is the test split


def _pixels(npz) -> np.ndarray:
    return npz["x"]


def _jpeg_blob(npz) -> np.ndarray:
    blob, offsets = npz["jpeg"], npz["offsets"]
    return decode_images(blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1))


# Split-file layouts, recognised by the array that holds the images; each yields (N,H,W,C) uint8.
_LAYOUTS: dict[str, Callable] = {"x": _pixels, "jpeg": _jpeg_blob}


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x NCHW uint8, y int64, wnids or None) from one split file."""
    with np.load(path, allow_pickle=False) as npz:
        layout = next((k for k in _LAYOUTS if k in npz.files), None)
        if layout is None or "y" not in npz.files:
            raise SnnRobustError(f"{path}: expected arrays 'y' and one of {sorted(_LAYOUTS)}, found {npz.files}")
        x = _LAYOUTS[layout](npz)
        if x.ndim == 3:
            x = x[..., None]
        wnids = npz["wnids"] if "wnids" in npz.files else None
        return hwc_to_chw(x.astype(np.uint8, copy=False)), npz["y"].astype(np.int64), wnids


def _split_files(root: Path) -> list[str]:
    if not root.is_dir():
        raise SnnRobustError(f"data folder not found: {root}")
    test = next((f for f in TEST_FILES if (root / f).is_file()), None)
    if not (root / TRAIN_FILE).is_file() or test is None:
        raise SnnRobustError(f"{root} needs {TRAIN_FILE} and one of {', '.join(TEST_FILES)}")
    return [TRAIN_FILE, test]


@image_source("npz")
def build_npz(root: Path, image_size: int | None = None, name: str | None = None,
              verify: bool = True) -> RawImages:
    """Read ``root/train.npz`` and ``root/test.npz`` (or ``val.npz``), checking them against SHA256SUMS."""
    files = _split_files(root)
    hashes = verify_sums(root, files) if verify else {f: file_digest(root / f) for f in files}
    (x_tr, y_tr, wnids), (x_te, y_te, _) = (_read_split(root / f) for f in files)
    if image_size is not None:
        x_tr, x_te = resize_to_uint8(x_tr, image_size), resize_to_uint8(x_te, image_size)
    classes = [str(w) for w in wnids] if wnids is not None else None
    num_classes = len(classes) if classes else int(max(y_tr.max(), y_te.max())) + 1
    return RawImages(x_tr, y_tr, x_te, y_te, name=name or root.resolve().name, num_classes=num_classes,
                     classes=classes, source_sha256=hashes)
