"""``cifar10_dvs``: CIFAR10-DVS event recordings (SR paper, Table 2) integrated into T frames by spikingjelly.

Paper scale: the ten official per-class zips (figshare) are downloaded with the project's checksum-verified
``download``; their URLs and md5s are read at run time from spikingjelly's ``CIFAR10DVS.resource_url_md5()``
(``mirror`` replaces the host, ``md5s`` the checksums, e.g. for a local copy). Each zip is extracted into a
temporary folder, turned into event files by spikingjelly's own ``.aedat`` reader
(``CIFAR10DVS.create_raw_from_extracted``) and integrated with
``integrate_events_by_fixed_frames_number(events, split_by, frames, 128, 128)``: what
``CIFAR10DVS(root, data_type='frame', frames_number=10, split_by='number')`` gives, frames [T, 2, 128, 128].

Stored values: event counts per (frame, polarity, pixel) as uint8, clipped at 255 (``meta['clipped_fraction']``
says how many were). ``size`` downsamples by area pooling times the area ratio (128/size)², so a value stays
"events on this pixel's area" (exact block sums when size divides 128); the model's normalisation undoes the
loader's fixed 1/255 scale. Split (App. D: 9:1 per class): in spikingjelly's file order the first
⌈train_fraction·n⌉ recordings of each class train, as ``split_to_train_test_set(0.9, ..., random_split=False)``
does; ``split_seed`` makes it a seeded random per-class split instead.

The prepared file has kind ``events``: ``x_train``/``x_test`` uint8 [N, T, 2, H, W] (batch first, so batches
are drawn as for images), ``in_shape`` the per-frame [2, H, W] the backbone reads, ``frames`` = T.

Default and cpu scale never download this: a config declares a labelled stand-in instead, e.g.::

    datasets:
      digits_dvs: {source: digits, options: {image_size: 32, stand_in_for: CIFAR10-DVS}}
    studies:
      sr:
        report: {stand_ins: {digits: CIFAR-10, digits_dvs: CIFAR10-DVS}}

(a separate dataset key, because ``stand_ins`` maps one dataset key to one paper dataset). The stand-in runs
Table 2's recipe (T = 10, batch 24, FGSM-AT) on static images through the direct encoder, not event frames.
"""

from __future__ import annotations

import math
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from snnrobust.data.checksums import file_digest
from snnrobust.data.download import download
from snnrobust.data.images import ImageOptions, balanced_subset, channel_stats, check_labels
from snnrobust.data.sources import DATASETS, Source
from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveInt, Range, Seed

NAME = "cifar10_dvs"
SENSOR = 128  # CIFAR10DVS.get_H_W(): the DVS128 sensor's 128 × 128 pixels
PER_CLASS = 1000  # official recordings per class (10,000 in all)
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


def _resources(mirror: str | None, md5s: dict | None) -> list[tuple[str, str, str]]:
    """(file name, url, md5) of each class zip, in label order; spikingjelly's list unless overridden."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS, CIFAR10DVS_CLASS_NAMES

    official = {name: (url, md5) for name, url, md5 in CIFAR10DVS.resource_url_md5()}
    names = [f"{c}.zip" for c in CIFAR10DVS_CLASS_NAMES]
    if set(names) != set(official):
        raise SnnRobustError(f"spikingjelly's CIFAR10DVS lists {sorted(official)}, expected {names}")
    if md5s is not None:
        if set(md5s) != set(names) or not all(isinstance(v, str) and _MD5.match(v) for v in md5s.values()):
            raise SnnRobustError(f"option md5s of {NAME!r} must map each of {', '.join(names)} to a 32-digit md5")
    out = []
    for name in names:
        url, md5 = official[name]
        url = f"{mirror.rstrip('/')}/{name}" if mirror else url
        out.append((name, url, (md5s or {}).get(name, md5)))
    return out


def _pool_counts(frames: np.ndarray, size: int | None) -> tuple[np.ndarray, int]:
    """Counts [T, 2, H, W] → (uint8 [T, 2, size, size] clipped at 255, number of clipped values)."""
    counts = torch.from_numpy(np.asarray(frames, np.float32))
    if size is not None and size != counts.shape[-1]:
        gain = counts.shape[-2] * counts.shape[-1] / (size * size)
        counts = F.adaptive_avg_pool2d(counts, size).mul_(gain).round_()
    return counts.clamp(0, 255).to(torch.uint8).numpy(), int((counts > 255).sum())


def _integrate(event_file: Path, frames: int, split_by: str) -> np.ndarray:
    """One event file (t, x, y, p) → frames [T, 2, 128, 128] by spikingjelly's fixed-frames-number rule."""
    from spikingjelly.datasets.utils import integrate_events_by_fixed_frames_number

    with np.load(event_file, allow_pickle=False) as npz:
        events = {k: npz[k] for k in ("t", "x", "y", "p")}
    if events["t"].size < frames:
        raise SnnRobustError(f"{event_file.name}: {events['t'].size} events cannot fill {frames} frames")
    try:
        return integrate_events_by_fixed_frames_number(events, split_by, frames, SENSOR, SENSOR)
    except (IndexError, ValueError) as exc:  # e.g. split_by 'time' with an empty time slice
        raise SnnRobustError(f"{event_file.name}: cannot integrate into {frames} frames: {exc}") from None


def _class_frames(archive: Path, cls: str, frames: int, split_by: str, size: int | None,
                  scratch: Path) -> tuple[list[np.ndarray], int]:
    """Frames of every recording in one class zip, in spikingjelly's (sorted file name) order."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS

    with tempfile.TemporaryDirectory(dir=scratch, prefix=f".{cls}-") as tmp:
        extract, raw = Path(tmp) / "extract", Path(tmp) / "raw"
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{cls}/")]  # skips e.g. __MACOSX/
            if not members:
                raise SnnRobustError(f"{archive.name}: no top folder {cls}/")
            zf.extractall(extract, members)
        raw.mkdir()
        CIFAR10DVS.create_raw_from_extracted(extract, raw)  # spikingjelly's .aedat reader → t, x, y, p
        files = sorted((raw / cls).glob("*.npz"))
        if not files:
            raise SnnRobustError(f"{archive.name}: no .aedat recordings in {cls}/")
        pooled = [_pool_counts(_integrate(f, frames, split_by), size) for f in files]
    return [x for x, _ in pooled], sum(c for _, c in pooled)


def _split(n: int, train_fraction: float, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (train, test) positions: the first ⌈f·n⌉ train, as spikingjelly's split does."""
    order = np.arange(n) if rng is None else rng.permutation(n)
    cut = math.ceil(n * train_fraction)
    return order[:cut], order[cut:]


@dataclass
class RawEvents:
    """Both splits as built: uint8 frames [N, T, 2, H, W] and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: list[str]
    clipped_fraction: float
    source_sha256: dict[str, str] = field(default_factory=dict)


def cifar10_dvs_test_size(train_fraction: float = 0.9, md5s: dict | None = None, **_) -> int | None:
    """Test split size of the official data (unknown for replaced archives)."""
    return None if md5s is not None else 10 * (PER_CLASS - math.ceil(PER_CLASS * train_fraction))


def build_cifar10_dvs(root: Path = Path("data/raw/cifar10_dvs"), frames: PositiveInt = 10,
                      split_by: Literal["number", "time"] = "number",
                      size: Annotated[int, Range(ge=1, le=SENSOR)] | None = None,
                      train_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.9, split_seed: Seed | None = None,
                      mirror: str | None = None, md5s: dict | None = None) -> RawEvents:
    """Download (md5-checked) the ten class zips into ``root/download`` unless there already, then build
    the frames of every recording and split each class ``train_fraction`` : rest."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS_CLASS_NAMES

    resources = _resources(mirror, md5s)
    archives = [download(url, root / "download" / name, md5=md5) for name, url, md5 in resources]
    rng = None if split_seed is None else np.random.default_rng(split_seed)
    xs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    ys: dict[str, list[int]] = {"train": [], "test": []}
    clipped = 0
    for label, (cls, archive) in enumerate(zip(CIFAR10DVS_CLASS_NAMES, archives)):
        samples, n_clipped = _class_frames(archive, cls, frames, split_by, size, root)
        clipped += n_clipped
        for split, idx in zip(("train", "test"), _split(len(samples), train_fraction, rng)):
            xs[split] += [samples[i] for i in idx]
            ys[split] += [label] * len(idx)
    if not xs["test"]:
        raise SnnRobustError(f"{NAME}: train_fraction={train_fraction} leaves no test recordings")
    x_train, x_test = np.stack(xs["train"]), np.stack(xs["test"])
    return RawEvents(x_train, np.asarray(ys["train"], np.int64), x_test, np.asarray(ys["test"], np.int64),
                     num_classes=len(CIFAR10DVS_CLASS_NAMES), classes=list(CIFAR10DVS_CLASS_NAMES),
                     clipped_fraction=clipped / (x_train.size + x_test.size),
                     source_sha256={a.name: file_digest(a) for a in archives})


def finish_events(raw: RawEvents, opts: ImageOptions, source: str,
                  source_opts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Balanced subsets (n_train / n_test as for images), per-polarity train statistics, arrays and meta."""
    picks = {"train": balanced_subset(raw.y_train, opts.n_train, opts.subset_seed * 2, "n_train"),
             "test": balanced_subset(raw.y_test, opts.n_test, opts.subset_seed * 2 + 1, "n_test")}
    arrays: dict[str, np.ndarray] = {}
    for split, idx in picks.items():
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        check_labels(y, raw.num_classes, f"{NAME} {split} split", n=len(x))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = np.ascontiguousarray(x[idx]), y[idx].astype(np.int64)
    x_train = arrays["x_train"]
    mean, std = channel_stats(x_train.reshape(-1, *x_train.shape[2:]))  # over samples and frames
    meta = {"kind": "events", "source": source, "name": NAME, "num_classes": raw.num_classes,
            "in_shape": list(x_train.shape[2:]), "frames": int(x_train.shape[1]), "mean": mean, "std": std,
            "classes": raw.classes, "clipped_fraction": raw.clipped_fraction, "stand_in_for": opts.stand_in_for,
            "source_sha256": dict(raw.source_sha256), "n_train": len(picks["train"]), "n_test": len(picks["test"]),
            "subset_seed": opts.subset_seed, "options": source_opts}
    return arrays, meta


DATASETS.register(NAME)(Source(NAME, "events", build_cifar10_dvs, ImageOptions, finish_events,
                               cifar10_dvs_test_size))
