"""Tests for snnrobust.data: every offline source, subsets, determinism, loaders, loopback downloads, errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from snnrobust.data import DATASETS, load_prepared, prepare_dataset
from snnrobust.errors import SnnRobustError

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def data_shared() -> Path:
    """The offline real-data folder; CI has it, so its absence is a failure, not a skip."""
    root = Path(os.environ.get("SNNROBUST_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (root / "cifar10" / "train.npz").is_file():
        pytest.fail(f"shared data not found at {root}; set SNNROBUST_SHARED_DATA to the shared/data folder")
    return root


@pytest.fixture(scope="session")
def data_digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "digits.npz"
    prepare_dataset("digits", out)
    return out


@pytest.fixture
def data_http(tmp_path, monkeypatch):
    """Serve ``tmp_path/www`` on a loopback HTTP server; yields (folder, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _digest(path: Path, algo: str) -> str:
    return hashlib.new(algo, path.read_bytes()).hexdigest()


def _assert_one_line_error(excinfo, *fragments: str) -> None:
    text = str(excinfo.value)
    assert "\n" not in text and text
    for fragment in fragments:
        assert fragment in text, text


# ---------------------------------------------------------------- offline sources

def test_registry_lists_every_source():
    assert set(DATASETS.names()) >= {"digits", "npz", "cifar10", "cifar100", "tinyimagenet", "karate", "planetoid"}


def test_digits_prepares_and_loads(data_digits):
    d = load_prepared(data_digits)
    x, y = d.train
    assert d.kind == "image" and d.num_classes == 10 and d.in_shape == (3, 32, 32)
    assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32) and y.dtype == torch.int64
    assert len(x) + len(d.test[0]) == 1797 and d.meta["n_train"] == len(x)
    assert torch.equal(x[:, 0], x[:, 2]) and int(x.max()) > 200
    assert len(d.meta["mean"]) == 3 and 0 < d.meta["mean"][0] < 1 and d.meta["stand_in_for"] is None
    with np.load(data_digits, allow_pickle=False) as npz:  # readable with no pickle at all
        assert set(npz.files) == {"x_train", "y_train", "x_test", "y_test", "meta"}


def test_digits_image_size_option(tmp_path):
    out = tmp_path / "d16.npz"
    prepare_dataset("digits", out, image_size=16, n_train=20, n_test=10)
    assert load_prepared(out).in_shape == (3, 16, 16)
    with pytest.raises(SnnRobustError, match="'image_size' of data source 'digits' must be an integer, got '16'"):
        prepare_dataset("digits", out, image_size="16")  # values are checked, never parsed from strings


def test_npz_cifar10_subset(tmp_path, data_shared):
    out = tmp_path / "c10.npz"
    prepare_dataset("npz", out, root=data_shared / "cifar10", n_train=100, n_test=50, stand_in_for="CIFAR-100")
    d = load_prepared(out)
    assert d.train[0].shape == (100, 3, 32, 32) and d.test[0].shape == (50, 3, 32, 32)
    assert np.bincount(d.train[1].numpy(), minlength=10).tolist() == [10] * 10
    assert np.bincount(d.test[1].numpy(), minlength=10).tolist() == [5] * 10
    assert d.meta["stand_in_for"] == "CIFAR-100" and d.meta["name"] == "cifar10"
    assert d.meta["source_sha256"]["train.npz"].startswith("3e50c3e6")


def test_npz_tinyimagenet_jpeg_layout(tmp_path, data_shared):
    out = tmp_path / "tin.npz"
    prepare_dataset("npz", out, root=data_shared / "tinyimagenet", n_train=200, n_test=200)
    d = load_prepared(out)
    assert d.num_classes == 200 and d.in_shape == (3, 64, 64)
    assert np.bincount(d.train[1].numpy()).tolist() == [1] * 200
    assert d.meta["classes"][:2] == sorted(d.meta["classes"])[:2] and len(d.meta["classes"]) == 200
    assert set(d.meta["source_sha256"]) == {"train.npz", "val.npz"}


def test_karate_graph(tmp_path):
    out = tmp_path / "karate.npz"
    prepare_dataset("karate", out)
    d = load_prepared(out)
    g = d.graph
    assert d.kind == "graph" and d.num_classes == 4 and g.num_nodes == 34
    assert int(g.train_mask.sum()) == 4 and int(g.val_mask.sum()) == 10 and int(g.test_mask.sum()) == 20
    assert not (g.train_mask & g.val_mask).any() and not (g.val_mask & g.test_mask).any()


def test_planetoid_cora_leaves_shared_folder_clean(tmp_path, data_shared):
    out = tmp_path / "cora.npz"
    prepare_dataset("planetoid", out, root=data_shared / "planetoid", name="cora", scratch=tmp_path / "scratch")
    d = load_prepared(out)
    g = d.graph
    assert tuple(g.x.shape) == (2708, 1433) and g.x.dtype == torch.float32 and tuple(g.edge_index.shape) == (2, 10556)
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]
    assert d.num_classes == 7 and d.meta["num_features"] == 1433
    assert not (data_shared / "planetoid" / "Cora" / "processed").exists()
    assert list((tmp_path / "scratch").iterdir()) == []


# ---------------------------------------------------------------- subsets, determinism, loader

def test_uneven_subset_is_balanced_within_one(tmp_path):
    out = tmp_path / "d.npz"
    prepare_dataset("digits", out, n_train=55, n_test=23)
    counts = np.bincount(load_prepared(out).train[1].numpy(), minlength=10)
    assert counts.sum() == 55 and counts.max() - counts.min() == 1


def test_prepare_is_deterministic(tmp_path):
    paths = [tmp_path / f"{i}.npz" for i in range(3)]
    for p, seed in zip(paths, (0, 0, 1)):
        prepare_dataset("digits", p, n_train=40, n_test=20, subset_seed=seed)
    a, b, c = (np.load(p, allow_pickle=False) for p in paths)
    for key in ("x_train", "y_train", "x_test", "y_test", "meta"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["x_train"], c["x_train"])


def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_loader_is_deterministic_per_seed_and_epoch(data_digits):
    d = load_prepared(data_digits)
    first = _batches(d.loader("train", 64, shuffle=True, seed=3, epoch=2, augment=True, limit=300))
    again = _batches(d.loader("train", 64, shuffle=True, seed=3, epoch=2, augment=True, limit=300))
    other = _batches(d.loader("train", 64, shuffle=True, seed=3, epoch=3, augment=True, limit=300))
    assert len(first) == 5 and sum(len(y) for _, y in first) == 300
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(first, again))
    assert not torch.equal(first[0][1], other[0][1])
    x0, _ = first[0]
    assert x0.dtype == torch.float32 and x0.shape[1:] == (3, 32, 32) and 0.0 <= x0.min() and x0.max() <= 1.0


def test_loader_plain_order_and_augment_shapes(data_digits):
    d = load_prepared(data_digits)
    x, y = next(iter(d.loader("test", 16, shuffle=False, seed=0)))
    assert torch.equal(y, d.test[1][:16]) and torch.allclose(x, d.test[0][:16].float() / 255)
    xa, ya = next(iter(d.loader("test", 16, shuffle=False, seed=0, augment=True)))
    assert torch.equal(ya, y) and xa.shape == x.shape and not torch.equal(xa, x)


# ---------------------------------------------------------------- loopback downloads

def _cifar_archive(path: Path, folder: str, files: dict[str, int], label_key: str, meta: tuple[str, str, int]):
    """A small archive in the real CIFAR python-pickle layout: each image's pixels equal its label."""
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, obj: dict) -> None:
            blob = pickle.dumps(obj)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))

        for name, n in files.items():
            labels = [i % meta[2] for i in range(n)]
            data = np.repeat(np.array(labels, np.uint8)[:, None], 3072, axis=1)
            add(name, {"data": data, label_key: labels})
        add(meta[0], {meta[1]: [f"class{i}" for i in range(meta[2])]})


CIFARS = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py",
                {**{f"data_batch_{i}": 4 for i in range(1, 6)}, "test_batch": 6}, "labels",
                ("batches.meta", "label_names", 10)),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", {"train": 20, "test": 6}, "fine_labels",
                 ("meta", "fine_label_names", 100)),
}


@pytest.mark.parametrize("source", sorted(CIFARS))
def test_cifar_download_over_loopback(tmp_path, data_http, source):
    www, base = data_http
    filename, folder, files, label_key, meta = CIFARS[source]
    _cifar_archive(www / filename, folder, files, label_key, meta)
    out = tmp_path / f"{source}.npz"
    prepare_dataset(source, out, root=tmp_path / "raw", url=f"{base}/{filename}", md5=_digest(www / filename, "md5"))
    d = load_prepared(out)
    x, y = d.train
    assert x.shape == (20, 3, 32, 32) and d.test[0].shape == (6, 3, 32, 32) and d.num_classes == meta[2]
    assert torch.equal(x[:, 0, 0, 0].long(), y)  # pixels encode the label, so the pairing survived
    assert d.meta["classes"][:2] == ["class0", "class1"]
    assert d.meta["source_sha256"][filename] == _digest(www / filename, "sha256")


def test_cifar_bad_md5_is_one_line_error(tmp_path, data_http):
    www, base = data_http
    filename, folder, files, label_key, meta = CIFARS["cifar10"]
    _cifar_archive(www / filename, folder, files, label_key, meta)
    out = tmp_path / "c.npz"
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("cifar10", out, root=tmp_path / "raw", url=f"{base}/{filename}", md5="0" * 32)
    _assert_one_line_error(excinfo, "cifar10", "md5 mismatch")
    assert not out.exists() and not (tmp_path / "raw" / filename).exists()


def _jpeg(colour: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (colour, colour, colour)).save(buf, format="JPEG")
    return buf.getvalue()


def _tiny_zip(path: Path) -> None:
    """Two classes (deliberately listed unsorted in wnids.txt), three train and two val images each."""
    wnids = ["n0200", "n0100"]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "\n".join(wnids) + "\n")
        notes = []
        for c, wnid in enumerate(sorted(wnids)):
            for k in range(3):
                zf.writestr(f"tiny-imagenet-200/train/{wnid}/images/{wnid}_{k}.JPEG", _jpeg(40 + 150 * c))
            for k in range(2):
                name = f"val_{2 * c + k}.JPEG"
                zf.writestr(f"tiny-imagenet-200/val/images/{name}", _jpeg(40 + 150 * c))
                notes.append(f"{name}\t{wnid}\t0\t0\t63\t63")
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join(notes) + "\n")


def test_tinyimagenet_download_over_loopback(tmp_path, data_http):
    www, base = data_http
    _tiny_zip(www / "tiny-imagenet-200.zip")
    out = tmp_path / "tin.npz"
    sha = _digest(www / "tiny-imagenet-200.zip", "sha256")
    prepare_dataset("tinyimagenet", out, root=tmp_path / "raw", url=f"{base}/tiny-imagenet-200.zip", sha256=sha)
    d = load_prepared(out)
    x, y = d.train
    assert x.shape == (6, 3, 64, 64) and d.test[0].shape == (4, 3, 64, 64) and d.num_classes == 2
    assert d.meta["classes"] == ["n0100", "n0200"]
    assert torch.equal((x[:, 0, 32, 32] > 120).long(), y)  # class 1 (n0200) images are the bright ones
    assert d.meta["source_sha256"] == {"tiny-imagenet-200.zip": sha}


def test_tinyimagenet_bad_sha256_leaves_nothing(tmp_path, data_http):
    www, base = data_http
    _tiny_zip(www / "tiny-imagenet-200.zip")
    out = tmp_path / "tin.npz"
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("tinyimagenet", out, root=tmp_path / "raw", url=f"{base}/tiny-imagenet-200.zip",
                        sha256="f" * 64)
    _assert_one_line_error(excinfo, "checksum mismatch")
    # the failed download removes what it created: the archive, and raw/ itself when it made it empty
    assert not out.exists() and (not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == [])


def test_download_http_error_is_one_line(tmp_path, data_http):
    _, base = data_http
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("tinyimagenet", tmp_path / "t.npz", root=tmp_path / "raw", url=f"{base}/nothing.zip",
                        md5="0" * 32)
    _assert_one_line_error(excinfo, "404")
    assert not (tmp_path / "t.npz").exists()


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("source, opts, fragment", [
    ("imagenet", {}, "unknown data source 'imagenet'"),
    ("digits", {"colour": 1}, "unknown option 'colour'"),
    ("digits", {"n_train": "many"}, "'n_train'"),
    ("digits", {"n_train": 100000}, "n_train=100000"),
    ("npz", {}, "needs option 'root'"),
    ("npz", {"root": "/no/such/folder"}, "/no/such/folder"),
    ("planetoid", {"root": "/no/such/folder"}, "/no/such/folder"),
    ("planetoid", {"root": ".", "name": "PubMed"}, "PubMed"),
])
def test_bad_requests_are_one_line_errors_and_keep_the_previous_file(tmp_path, source, opts, fragment):
    out = tmp_path / "out.npz"
    out.write_bytes(b"finished output of an earlier run")
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset(source, out, **opts)
    _assert_one_line_error(excinfo, fragment)
    assert out.read_bytes() == b"finished output of an earlier run" and list(tmp_path.iterdir()) == [out]


def test_sha256_mismatch_names_the_file(tmp_path, data_shared):
    folder = tmp_path / "fake_cifar"
    folder.mkdir()
    for name in ("train.npz", "test.npz"):
        (folder / name).symlink_to(data_shared / "cifar10" / name)
    (folder / "SHA256SUMS").write_text(f"{'0' * 64}  train.npz\n{_digest(folder / 'test.npz', 'sha256')}  test.npz\n")
    out = tmp_path / "out.npz"
    with pytest.raises(SnnRobustError) as excinfo:
        prepare_dataset("npz", out, root=folder, n_train=10, n_test=10)
    _assert_one_line_error(excinfo, "SHA256 mismatch", "train.npz")
    assert not out.exists()


def test_missing_prepared_file(tmp_path):
    with pytest.raises(SnnRobustError) as excinfo:
        load_prepared(tmp_path / "absent.npz")
    _assert_one_line_error(excinfo, "prepared data not found")


def test_truncated_prepared_file(tmp_path, data_digits):
    broken = tmp_path / "broken.npz"
    blob = data_digits.read_bytes()
    broken.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SnnRobustError) as excinfo:
        load_prepared(broken)
    _assert_one_line_error(excinfo, "corrupt", str(broken))


def test_prepared_file_missing_a_key(tmp_path):
    partial = tmp_path / "partial.npz"
    meta = np.array('{"kind": "image", "num_classes": 1, "in_shape": [3, 2, 2]}')
    np.savez(partial, x_train=np.zeros((1, 3, 2, 2), np.uint8), meta=meta)
    with pytest.raises(SnnRobustError) as excinfo:
        load_prepared(partial)
    _assert_one_line_error(excinfo, "missing array 'y_train'")


def test_npz_layout_is_declared_not_guessed(tmp_path):
    """The same images stored NHWC (default) and NCHW (declared) prepare to the same file contents."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    for layout, pixels in (("NHWC", x), ("NCHW", x.transpose(0, 3, 1, 2))):
        root = tmp_path / layout
        root.mkdir()
        for name in ("train.npz", "test.npz"):
            np.savez(root / name, x=pixels, y=y)
        prepare_dataset("npz", tmp_path / f"{layout}.npz", root=root, verify=False, layout=layout)
    a, b = load_prepared(tmp_path / "NHWC.npz"), load_prepared(tmp_path / "NCHW.npz")
    assert torch.equal(a.train[0], b.train[0]) and a.in_shape == (3, 8, 8)
    assert sorted(a.train[0].flatten().tolist()) == sorted(x.flatten().tolist())  # same pixels, moved not cast
    with pytest.raises(SnnRobustError, match="declare layout 'NCHW'"):  # NCHW data read as the default NHWC
        prepare_dataset("npz", tmp_path / "wrong.npz", root=tmp_path / "NCHW", verify=False)
    assert not (tmp_path / "wrong.npz").exists()
