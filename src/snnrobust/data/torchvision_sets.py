"""``cifar10`` / ``cifar100``: torchvision's downloaders (paper scale), with overridable URL and md5."""

from __future__ import annotations

from pathlib import Path
from typing import Callable
from urllib.error import URLError

import numpy as np

from snnrobust.data.checksums import file_digest
from snnrobust.data.images import RawImages, to_nchw
from snnrobust.data.sources import image_source
from snnrobust.errors import SnnRobustError

DEFAULT_ROOT = Path("data/raw")


def _dataset_class(class_name: str, url: str | None, md5: str | None) -> type:
    """torchvision's ``class_name`` with the archive URL/md5 replaced; a replaced archive is trusted for its
    inner files too (their md5s are only known for the official archive)."""
    import torchvision.datasets

    base = getattr(torchvision.datasets, class_name)
    if url is None and md5 is None:
        return base
    unchecked = {
        "train_list": [[name, None] for name, _ in base.train_list],
        "test_list": [[name, None] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": None},
    }
    return type(base.__name__, (base,), {"url": url or base.url, "tgz_md5": md5 or base.tgz_md5, **unchecked})


def _load(cls: type, name: str, root: Path) -> RawImages:
    archive = root / cls.filename
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=False)
    except (RuntimeError, OSError, URLError) as exc:
        actual = file_digest(archive, "md5") if archive.is_file() else None
        if actual is not None and actual != cls.tgz_md5:
            archive.unlink()  # a corrupt or wrong archive must not be picked up next time
            raise SnnRobustError(f"{name}: md5 mismatch for {cls.url}: expected {cls.tgz_md5}, got {actual}") from None
        reason = " ".join(str(exc).split())
        raise SnnRobustError(f"{name}: could not download or read {cls.url} into {root}: {reason}") from None
    sha = {cls.filename: file_digest(archive)} if archive.is_file() else {}
    # torchvision keeps CIFAR pixels as (N, 32, 32, 3) uint8.
    return RawImages(to_nchw(train.data, "NHWC", f"{name} train"), np.asarray(train.targets, np.int64),
                     to_nchw(test.data, "NHWC", f"{name} test"), np.asarray(test.targets, np.int64),
                     name=name, num_classes=len(train.classes), classes=list(train.classes), source_sha256=sha)


CIFAR_TEST_SIZE = 10_000  # CIFAR-10 and CIFAR-100 test sets


def _register(name: str, class_name: str) -> Callable:
    @image_source(name, test_size=lambda **_: CIFAR_TEST_SIZE)
    def build(root: Path = DEFAULT_ROOT, url: str | None = None, md5: str | None = None) -> RawImages:
        """Download (if needed, md5-checked by torchvision) and read the official python-pickle archive."""
        return _load(_dataset_class(class_name, url, md5), name, root)

    return build


build_cifar10 = _register("cifar10", "CIFAR10")
build_cifar100 = _register("cifar100", "CIFAR100")
