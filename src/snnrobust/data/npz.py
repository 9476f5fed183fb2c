"""``npz``: an offline folder of split files (CIFAR-style pixel arrays or Tiny-ImageNet-style JPEG blobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from snnrobust.data.checksums import file_digest, verify_sums
from snnrobust.data.images import Layout, RawImages, to_nchw
from snnrobust.data.sources import image_source
from snnrobust.data.transforms import decode_images, resize_to_uint8
from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveInt

TRAIN_FILE = "train.npz"
TEST_FILES = ("test.npz", "val.npz")  # the first one present is the test split


def _pixels(npz, layout: str) -> tuple[np.ndarray, str]:
    return npz["x"], layout


def _jpeg_blob(npz, layout: str) -> tuple[np.ndarray, str]:
    blob, offsets = npz["jpeg"], npz["offsets"]
    return decode_images(blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)), "NHWC"


# Split-file formats, recognised by the array that holds the images; each yields (pixels, their layout):
# a pixel array is in the layout the config declares, decoded JPEGs are always NHWC.
_FORMATS: dict[str, Callable] = {"x": _pixels, "jpeg": _jpeg_blob}


def _read_split(path: Path, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x NCHW uint8, y int64, wnids or None) from one split file; dtype, layout and label shape are checked."""
    with np.load(path, allow_pickle=False) as npz:
        fmt = next((k for k in _FORMATS if k in npz.files), None)
        if fmt is None or "y" not in npz.files:
            raise SnnRobustError(f"{path}: expected arrays 'y' and one of {sorted(_FORMATS)}, found {npz.files}")
        x = to_nchw(*_FORMATS[fmt](npz, layout), where=str(path))
        y = npz["y"]
        wnids = npz["wnids"] if "wnids" in npz.files else None
    if y.dtype.kind not in "iu" or y.ndim != 1 or len(y) != len(x):
        raise SnnRobustError(f"{path}: 'y' must be {len(x)} integer labels (1-D), got {y.dtype} {y.shape}")
    return x, y.astype(np.int64), wnids


def _split_files(root: Path) -> list[str]:
    if not root.is_dir():
        raise SnnRobustError(f"data folder not found: {root}")
    test = next((f for f in TEST_FILES if (root / f).is_file()), None)
    if not (root / TRAIN_FILE).is_file() or test is None:
        raise SnnRobustError(f"{root} needs {TRAIN_FILE} and one of {', '.join(TEST_FILES)}")
    return [TRAIN_FILE, test]


def npz_test_size(root: Path, **_) -> int | None:
    """Number of labels in the test file (reads only its small ``y`` array)."""
    root = Path(root)
    test = next((root / f for f in TEST_FILES if (root / f).is_file()), None)
    if test is None:
        return None
    with np.load(test, allow_pickle=False) as npz:
        return int(npz["y"].shape[0]) if "y" in npz.files else None


@image_source("npz", test_size=npz_test_size)
def build_npz(root: Path, image_size: PositiveInt | None = None, name: str | None = None,
              verify: bool = True, layout: Layout = "NHWC", num_classes: PositiveInt | None = None) -> RawImages:
    """Read ``root/train.npz`` and ``root/test.npz`` (or ``val.npz``), checking them against SHA256SUMS.

    ``x`` arrays are uint8 in the declared ``layout``; ``num_classes`` (default: from ``wnids``, else the
    largest label + 1) bounds the labels.
    """
    files = _split_files(root)
    hashes = verify_sums(root, files) if verify else {f: file_digest(root / f) for f in files}
    (x_tr, y_tr, wnids), (x_te, y_te, _) = (_read_split(root / f, layout) for f in files)
    if image_size is not None:
        x_tr, x_te = resize_to_uint8(x_tr, image_size), resize_to_uint8(x_te, image_size)
    classes = [str(w) for w in wnids] if wnids is not None else None
    if num_classes is None:
        num_classes = len(classes) if classes else int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    return RawImages(x_tr, y_tr, x_te, y_te, name=name or root.resolve().name, num_classes=num_classes,
                     classes=classes, source_sha256=hashes)
