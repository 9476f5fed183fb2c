"""``tinyimagenet``: the official tiny-imagenet-200.zip (paper scale), checksum-verified, read from the zip."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from snnrobust.data.checksums import file_digest
from snnrobust.data.download import download
from snnrobust.data.images import RawImages, to_nchw
from snnrobust.data.sources import image_source
from snnrobust.data.transforms import decode_images
from snnrobust.errors import SnnRobustError

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
OFFICIAL_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FILENAME = "tiny-imagenet-200.zip"


def _number(name: str) -> int:
    """Numeric suffix of ``n01443537_12.JPEG`` or ``val_12.JPEG`` (for a stable natural order)."""
    match = re.search(r"_(\d+)\.\w+$", name)
    return int(match.group(1)) if match else -1


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise SnnRobustError(f"{zf.filename}: missing {name}") from None


def _top(zf: zipfile.ZipFile) -> str:
    """The archive's top folder prefix (``tiny-imagenet-200/``), found through its wnids.txt."""
    tops = [n[: -len("wnids.txt")] for n in zf.namelist() if n.endswith("wnids.txt") and n.count("/") <= 1]
    if not tops:
        raise SnnRobustError(f"{zf.filename}: no wnids.txt; not a Tiny-ImageNet archive")
    return tops[0]


def _train_members(zf: zipfile.ZipFile, top: str, index: dict[str, int]) -> tuple[list[str], list[int]]:
    pattern = re.compile(re.escape(top) + r"train/([^/]+)/images/[^/]+\.jpe?g$", re.IGNORECASE)
    found = [(index[m.group(1)], _number(n), n) for n in zf.namelist()
             if (m := pattern.match(n)) and m.group(1) in index]
    found.sort()
    return [n for _, _, n in found], [c for c, _, _ in found]


def _val_members(zf: zipfile.ZipFile, top: str, index: dict[str, int]) -> tuple[list[str], list[int]]:
    lines = _read(zf, top + "val/val_annotations.txt").decode().splitlines()
    rows = [line.split("\t")[:2] for line in lines if line.strip()]
    found = sorted((_number(f), top + "val/images/" + f, index[w]) for f, w in rows if w in index)
    return [n for _, n, _ in found], [c for _, _, c in found]


def _decode(zf: zipfile.ZipFile, names: list[str]) -> np.ndarray:
    return to_nchw(decode_images(_read(zf, n) for n in names), "NHWC", zf.filename)


@image_source("tinyimagenet")
def build_tinyimagenet(root: Path = Path("data/raw"), url: str = OFFICIAL_URL, sha256: str | None = None,
                       md5: str | None = None) -> RawImages:
    """Download the archive (official md5 unless a checksum is given) and decode train/ and val/ (as test).

    Labels follow sorted wnid order, as torchvision's ImageFolder on train/ would give.
    """
    if sha256 is None and md5 is None:
        md5 = OFFICIAL_MD5
    archive = download(url, root / FILENAME, sha256=sha256, md5=md5)
    with zipfile.ZipFile(archive) as zf:
        top = _top(zf)
        wnids = sorted(w.strip() for w in _read(zf, top + "wnids.txt").decode().split() if w.strip())
        index = {w: i for i, w in enumerate(wnids)}
        train_names, y_train = _train_members(zf, top, index)
        test_names, y_test = _val_members(zf, top, index)
        if not train_names or not test_names:
            raise SnnRobustError(f"{archive}: no train or val images found")
        x_train, x_test = _decode(zf, train_names), _decode(zf, test_names)
    return RawImages(x_train, np.asarray(y_train, np.int64), x_test, np.asarray(y_test, np.int64),
                     name="tinyimagenet", num_classes=len(wnids), classes=wnids,
                     source_sha256={FILENAME: file_digest(archive)})
