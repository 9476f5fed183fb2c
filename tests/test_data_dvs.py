"""The ``cifar10_dvs`` source against tiny synthetic class zips served on loopback.

The zips hold real ``.aedat`` (AER-DAT 2.0) files: a '#' header, then big-endian uint32 (address, timestamp)
pairs with the DVS128 address layout (x in bits 1-7, y in bits 8-14, polarity in bit 0), so spikingjelly's
own reader parses them. Expected frames are computed here from the generated events, independently of
spikingjelly: reading maps sensor (x, y, pol) to frame [1 - pol, 127 - x, 127 - y], and split_by 'number'
gives frame i the events [i·⌊N/T⌋, (i+1)·⌊N/T⌋) (the last frame takes the rest).
"""

from __future__ import annotations

import hashlib
import math
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from snnrobust.data import DATASETS, prepare_dataset
from snnrobust.data.store import read_prepared
from snnrobust.errors import SnnRobustError
from test_data import _assert_one_line_error, data_http  # noqa: F401  (the loopback server fixture)

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NUMBERS = (0, 1, 2, 10)  # sorted file names put _10 before _2: the order spikingjelly's folders use
T = 4


def _events(cls: int, number: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 * cls + number)
    n = int(rng.integers(40, 60))
    return {"x": rng.integers(0, 128, n), "y": rng.integers(0, 128, n), "pol": rng.integers(0, 2, n),
            "t": np.cumsum(rng.integers(1, 50, n))}


def _aedat(ev: dict[str, np.ndarray]) -> bytes:
    addr = (ev["y"] << 8) | (ev["x"] << 1) | ev["pol"]
    body = np.stack([addr, ev["t"]], axis=1).astype(">u4").tobytes()
    return b"#!AER-DAT2.0\r\n# synthetic test recording\r\n" + body


def _expected_frames(ev: dict[str, np.ndarray]) -> np.ndarray:
    n = len(ev["t"])
    frames = np.zeros((T, 2, 128, 128), np.int64)
    step = n // T
    which = np.minimum(np.arange(n) // step, T - 1)
    np.add.at(frames, (which, 1 - ev["pol"], 127 - ev["x"], 127 - ev["y"]), 1)
    return frames


@pytest.fixture
def dvs_archives(data_http):
    """Ten class zips on the loopback server; yields (base URL, md5s, {(label, number): frames}, folder)."""
    www, base = data_http
    expected, md5s = {}, {}
    for label, cls in enumerate(CLASSES):
        path = www / f"{cls}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for number in NUMBERS:
                ev = _events(label, number)
                zf.writestr(f"{cls}/cifar10_{cls}_{number}.aedat", _aedat(ev))
                expected[(label, number)] = _expected_frames(ev)
        md5s[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return base, md5s, expected, www


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse (and record) any name lookup or connection that is not loopback."""
    tried: list[str] = []
    allowed = {"127.0.0.1", "localhost", "::1"}
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in allowed:
            tried.append(str(host))
            raise OSError(f"test: no network ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in allowed:
            tried.append(str(address[0]))
            raise OSError(f"test: no network ({address[0]})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


def _which(x: np.ndarray, expected: dict, size: int | None = None) -> list[tuple[int, int]]:
    """The (label, number) of the recording each stored sample is, by exact frame equality."""
    def pooled(f):
        k = 128 // size if size else 1
        return f.reshape(T, 2, 128 // k, k, 128 // k, k).sum(axis=(3, 5))
    keys = list(expected)
    table = np.stack([pooled(expected[k]) for k in keys])
    found = []
    for sample in x.astype(np.int64):
        hits = np.flatnonzero((table == sample).all(axis=(1, 2, 3, 4)))
        assert len(hits) == 1
        found.append(keys[hits[0]])
    return found


def test_registered_and_reads_urls_from_spikingjelly():
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS

    assert DATASETS.get("cifar10_dvs").kind == "events"
    assert [n for n, _, _ in CIFAR10DVS.resource_url_md5()] == [f"{c}.zip" for c in CLASSES]


def test_prepare_frames_labels_and_split(tmp_path, dvs_archives, loopback_only):
    base, md5s, expected, _ = dvs_archives
    out = tmp_path / "dvs.npz"
    prepare_dataset("cifar10_dvs", out, root=tmp_path / "raw", frames=T, train_fraction=0.5, mirror=base,
                    md5s=md5s)
    arrays, meta = read_prepared(out)
    x_tr, y_tr, x_te, y_te = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    assert x_tr.shape == (20, T, 2, 128, 128) and x_te.shape == (20, T, 2, 128, 128) and x_tr.dtype == np.uint8
    assert meta["kind"] == "events" and meta["in_shape"] == [2, 128, 128] and meta["frames"] == T
    assert meta["num_classes"] == 10 and meta["classes"] == list(CLASSES) and meta["clipped_fraction"] == 0
    # Per class the first ceil(0.5 * 4) = 2 recordings in sorted-file-name order train: _0, _1; _10, _2 test.
    train, test = _which(x_tr, expected), _which(x_te, expected)
    assert sorted(train) == sorted((c, n) for c in range(10) for n in (0, 1))
    assert sorted(test) == sorted((c, n) for c in range(10) for n in (2, 10))
    assert [c for c, _ in train] == y_tr.tolist() and [c for c, _ in test] == y_te.tolist()
    assert set(meta["source_sha256"]) == set(md5s)
    assert not loopback_only  # nothing but loopback was looked up or connected to
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["download"]  # scratch folders removed


def test_size_pools_counts_and_seeded_split_is_deterministic(tmp_path, dvs_archives, loopback_only):
    base, md5s, expected, _ = dvs_archives
    opts = dict(root=tmp_path / "raw", frames=T, size=32, train_fraction=0.75, split_seed=3, mirror=base, md5s=md5s)
    prepare_dataset("cifar10_dvs", tmp_path / "a.npz", **opts)
    prepare_dataset("cifar10_dvs", tmp_path / "b.npz", **opts)
    (a, meta), (b, _) = read_prepared(tmp_path / "a.npz"), read_prepared(tmp_path / "b.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["x_train"].shape == (30, T, 2, 32, 32) and meta["in_shape"] == [2, 32, 32]
    test = _which(a["x_test"], expected, size=32)  # each pooled value is the 4 × 4 block's event count
    assert sorted(c for c, _ in test) == list(range(10))  # ceil(0.75 * 4) = 3 train, 1 test per class
    # split_seed: per class (in label order) a permutation of the sorted recordings; the last one tests.
    rng, in_order = np.random.default_rng(3), sorted(NUMBERS, key=lambda n: f"cifar10_x_{n}.aedat")
    assert sorted(test) == [(c, in_order[rng.permutation(4)[3]]) for c in range(10)]
    assert {n for _, n in test} != {2}  # not the file-order split, which would test _2 of every class


def test_wrong_md5_is_one_line_error_and_leaves_nothing(tmp_path, dvs_archives, loopback_only):
    base, md5s, _, _ = dvs_archives
    out = tmp_path / "dvs.npz"
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("cifar10_dvs", out, root=tmp_path / "raw", frames=T, mirror=base,
                        md5s={**md5s, "bird.zip": "0" * 32})
    _assert_one_line_error(excinfo, "checksum mismatch", "bird.zip")
    assert not out.exists()
    left = sorted(p.name for p in (tmp_path / "raw" / "download").iterdir())
    assert left == ["airplane.zip", "automobile.zip"]  # the verified ones before it; no bird.zip, no temp file


def test_bad_md5_option_fails_before_any_download(tmp_path, loopback_only):
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("cifar10_dvs", tmp_path / "dvs.npz", root=tmp_path / "raw", md5s={"airplane.zip": "0" * 32})
    _assert_one_line_error(excinfo, "md5s", "truck.zip")
    assert not (tmp_path / "raw").exists() and not loopback_only


def test_default_urls_are_official_and_never_reached_in_tests(tmp_path, loopback_only):
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("cifar10_dvs", tmp_path / "dvs.npz", root=tmp_path / "raw")
    _assert_one_line_error(excinfo, "download failed", "https://ndownloader.figshare.com/files/")
    assert loopback_only == ["ndownloader.figshare.com"]  # refused by the guard: no byte left this machine
    assert not (tmp_path / "dvs.npz").exists()
    assert not (tmp_path / "raw").exists()  # the failed download removed the folders it made (raw/download/)


def test_train_fraction_matches_spikingjelly_rounding():
    from snnrobust.data.cifar10_dvs import cifar10_dvs_test_size

    assert cifar10_dvs_test_size() == 10 * (1000 - math.ceil(1000 * 0.9)) == 1000
    assert cifar10_dvs_test_size(md5s={}) is None


def test_prepared_events_train_and_attack_an_snn(tmp_path, dvs_archives, loopback_only):
    """The prepared frames load, batch (crop/flip per sample, same for all frames), feed an SNN through the
    events encoder (T = frames) and take an FGSM-AT step and an FGSM attack: Table 2's path end to end."""
    import torch

    from snnrobust.attacks import evaluate_attack, make_attack
    from snnrobust.data import load_prepared
    from snnrobust.data.loader import make_feed
    from snnrobust.data.transforms import random_crop_flip
    from snnrobust.training import TrainConfig
    from snnrobust.methods import make_method
    from snnrobust.models import build_model

    base, md5s, _, _ = dvs_archives
    out = tmp_path / "dvs.npz"
    prepare_dataset("cifar10_dvs", out, root=tmp_path / "raw", frames=T, size=16, train_fraction=0.5, mirror=base,
                    md5s=md5s)
    data = load_prepared(out)
    feed = make_feed(data, TrainConfig(epochs=1, batch_size=8, augment=True, seed=0), torch.device("cpu"))
    x, y = next(iter(feed.train(0)))
    assert x.shape == (8, T, 2, 16, 16) and x.dtype == torch.float32 and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    flipped = random_crop_flip(x[:4], torch.Generator().manual_seed(0))
    assert flipped.shape == x[:4].shape
    # one crop/flip per sample: every frame of a sample moved the same way as frame 0
    shift = random_crop_flip(torch.arange(16.0).expand(4, T, 2, 16, 16).clone(), torch.Generator().manual_seed(0))
    assert torch.equal(shift, shift[:, :1].expand_as(shift))
    torch.manual_seed(0)
    model = build_model("snn_vgg_tiny", 10, tuple(data.meta["in_shape"]), T=T, width=0.25, encoder="events")
    method = make_method("at", attack={"name": "fgsm"}, eps=2 / 255)
    loss, logits = method.loss(model.train(), x[:8], y[:8])
    loss.backward()
    assert logits.shape == (8, 10) and torch.isfinite(loss)
    result = evaluate_attack(model.eval(), make_attack("fgsm", eps=8 / 255), [(x[:8], y[:8])], progress=False)
    assert result["n"] == 8 and result["robust_acc"] <= 100.0
