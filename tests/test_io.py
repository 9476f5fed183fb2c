"""Atomic writes (no partial file, orphans of killed writers cleaned), byte-reproducible torch files,
early writability checks, and the strict YAML loader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from snnrobust.errors import SnnRobustError
from snnrobust.io import atomic_path, check_writable, remove_orphaned_temps, torch_load, torch_save, write_json
from snnrobust.yamlio import load_yaml_strict


def test_torch_save_gives_identical_bytes_for_identical_content(tmp_path):
    torch.manual_seed(0)
    state = {"w": torch.randn(4, 3), "spec": json.dumps({"a": 1}), "n": 3}
    torch_save(state, tmp_path / "a" / "model.pt")
    torch_save({k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}, tmp_path / "b" / "model.pt")
    torch_save(state, tmp_path / "other_name.pt")
    blobs = [p.read_bytes() for p in (tmp_path / "a/model.pt", tmp_path / "b/model.pt", tmp_path / "other_name.pt")]
    assert blobs[0] == blobs[1] == blobs[2]
    assert torch.equal(torch_load(tmp_path / "a/model.pt")["w"], state["w"])


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "r.json"
    write_json(out, {"v": 1})
    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphans_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import snnrobust.io as sio

    dead = tmp_path / f".model.pt.{sio._HOST}-{_dead_pid()}.abc123.tmp"
    live = tmp_path / f".model.pt.{sio._HOST}-{os.getpid()}.def456.tmp"
    unrelated = tmp_path / ".notes.tmp"
    for p in (dead, live, unrelated):
        p.write_bytes(b"x")
    assert remove_orphaned_temps(tmp_path) == [dead]
    assert live.exists() and unrelated.exists()


def test_sigkilled_writer_leaves_an_orphan_that_the_next_write_cleans(tmp_path):
    script = textwrap.dedent(f"""
        import time
        from snnrobust.io import atomic_path
        with atomic_path({str(tmp_path / 'model.pt')!r}) as tmp:
            tmp.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    orphans = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(orphans) == 1 and not (tmp_path / "model.pt").exists()
    time.sleep(0.05)
    write_json(tmp_path / "other.json", {"ok": True})  # any later write to the folder cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_check_writable_fails_before_work(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.json")  # folders that do not exist yet are fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(SnnRobustError, match="is not a folder"):
        check_writable(tmp_path / "file" / "out.json", "--out")
    with pytest.raises(SnnRobustError, match="is a folder, not a file"):
        check_writable(tmp_path, "--out")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        with pytest.raises(SnnRobustError, match="not writable"):
            check_writable(ro / "out.json")


@pytest.mark.parametrize("text, needle", [
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    ("{}\n", "empty mapping"),
    ("- a\n- b\n", "must be a mapping"),
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "duplicate key 'c' at line 4 (first at line 3)"),
    ("a: 1\na: 1\n", "duplicate key 'a' at line 2"),
    ("a: [1\n", "not valid YAML at line 2"),
])
def test_strict_yaml_rejects_config_pitfalls(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SnnRobustError) as excinfo:
        load_yaml_strict(path)
    assert needle in str(excinfo.value) and str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_strict_yaml_reads_yaml12_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nwd: 5E-4\nn: 10\ns: '1e-3'\nv: v1e3\nf: 0.5\n")
    assert load_yaml_strict(path) == {"lr": 0.001, "wd": 0.0005, "n": 10, "s": "1e-3", "v": "v1e3", "f": 0.5}
    with pytest.raises(SnnRobustError, match="config file not found"):
        load_yaml_strict(tmp_path / "absent.yaml")
