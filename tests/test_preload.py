"""The warm-start server (snnrobust.preload): a job run through it behaves as the job's own process would
(exit code, stdout/stderr, working directory, environment), falls back when it cannot be used, and a worker
never outlives its job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SMALL_SNN_SPEC
from snnrobust import preload

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server (imports torch once) and its socket path."""
    path = str(tmp_path_factory.mktemp("preload") / "socket")
    proc = subprocess.Popen([sys.executable, "-m", "snnrobust.preload", "serve", path],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() < deadline, "preload server did not start"
        time.sleep(0.05)
    yield path, proc.pid
    proc.terminate()
    proc.wait(timeout=10)


def _job(args, env=None, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "snnrobust", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, **kw)


def _validate(config: str) -> list[str]:
    return ["validate-config", "--config", config, "--schema", SCHEMA]


def test_a_job_through_the_server_answers_as_its_own_process(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config/default.yaml").read_text().replace("n_eval: 128", "n_eval: -3", 1))
    for config in ("config/default.yaml", str(bad)):
        alone = _job(_validate(config), cwd=ROOT)
        warm = _job(_validate(config), env={preload.ENV: server[0]}, cwd=ROOT)
        assert (warm.returncode, warm.stdout, warm.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert warm.returncode == 2 and warm.stderr.count("\n") == 1 and "n_eval" in warm.stderr


def test_the_worker_gets_the_jobs_directory_and_environment(server, tmp_path):
    (tmp_path / "here.yaml").write_text("scale: [\n")  # a relative path resolves only in the job's directory
    plain = _job(_validate("here.yaml"), env={preload.ENV: server[0]}, cwd=tmp_path)
    debug = _job(_validate("here.yaml"), env={preload.ENV: server[0], "SNNROBUST_DEBUG": "1"}, cwd=tmp_path)
    assert plain.returncode == debug.returncode == 2
    assert "here.yaml" in plain.stderr and "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr  # the job's own SNNROBUST_DEBUG reached the worker


def test_no_server_or_another_library_copy_falls_back_to_the_jobs_own_process(server, tmp_path, monkeypatch):
    gone = _job(_validate("config/default.yaml"), env={preload.ENV: str(tmp_path / "no-socket")}, cwd=ROOT)
    assert gone.returncode == 0 and "ok" in gone.stdout
    monkeypatch.setenv(preload.ENV, server[0])
    monkeypatch.setattr(preload, "_identity", lambda: {"python": "/elsewhere/python", "package": "/elsewhere"})
    assert preload.delegate(["--help"]) is None  # refused: the job would run another copy's code


def test_a_library_changed_since_the_server_started_falls_back(server, monkeypatch):
    """A ``git pull`` mid-run: the server's forks would run the code it imported on the job's new data files."""
    monkeypatch.setenv(preload.ENV, server[0])
    monkeypatch.setattr(preload, "source_stamp", lambda root: "files-edited-since")
    assert preload.delegate(["--help"]) is None


def test_the_source_stamp_changes_with_any_code_or_data_file(tmp_path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    code, data = tmp_path / "pkg" / "mod.py", tmp_path / "pkg" / "values.yaml"
    code.write_text("x = 1\n")
    data.write_text("a: 1\n")
    first = preload.source_stamp(str(tmp_path))
    (tmp_path / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"compiled")  # not a source: same stamp
    assert preload.source_stamp(str(tmp_path)) == first
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 1))
    second = preload.source_stamp(str(tmp_path))
    assert second != first
    code.unlink()
    assert preload.source_stamp(str(tmp_path)) not in (first, second)


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (its supervisors and their workers), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _long_job(server, digits_npz, tmp_path):
    """A training job of many epochs, started through the server; returns it once its worker runs."""
    path, server_pid = server
    spec = {**SMALL_SNN_SPEC, "train": {**SMALL_SNN_SPEC["train"], "epochs": 500}}
    job = subprocess.Popen([sys.executable, "-m", "snnrobust", "train", "--data", str(digits_npz), "--spec",
                            json.dumps(spec), "--out-model", str(tmp_path / "model.pt"), "--out-metrics",
                            str(tmp_path / "metrics.csv"), "--out-run", str(tmp_path / "run.json"),
                            "--checkpoint", str(tmp_path / "ckpt" / "last.pt"), "--no-progress"],
                           env={**os.environ, preload.ENV: path}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _until(lambda: len(_descendants(server_pid)) == 2), "no supervisor and worker appeared"
    return job


def test_a_signal_to_the_job_reaches_its_worker(server, digits_npz, tmp_path):
    job = _long_job(server, digits_npz, tmp_path)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert _until(lambda: not _descendants(server[1]))
    assert not (tmp_path / "model.pt").exists()


def test_a_worker_never_outlives_a_killed_job(server, digits_npz, tmp_path):
    job = _long_job(server, digits_npz, tmp_path)
    job.kill()  # SIGKILL: the job cannot pass it on; its supervisor sees the job's end of the socket close
    job.wait(timeout=30)
    assert _until(lambda: not _descendants(server[1]))


def test_run_serves_the_command_and_leaves_nothing_behind(tmp_path):
    script = (f"import os, subprocess, sys; p = os.environ[{preload.ENV!r}]; print(p); "
              f"sys.exit(subprocess.run([sys.executable, '-m', 'snnrobust', 'validate-config', '--config', "
              f"'config/default.yaml', '--schema', {SCHEMA!r}]).returncode + 3)")
    out = subprocess.run([sys.executable, "-m", "snnrobust.preload", "run", "--", sys.executable, "-c", script],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 3, out.stderr  # the command's own exit code
    socket_path = out.stdout.splitlines()[0]
    assert "config/default.yaml: ok" in out.stdout
    assert not os.path.exists(socket_path) and not os.path.exists(os.path.dirname(socket_path))


def test_help_exits_as_in_its_own_process(server):
    alone = _job(["attack", "--help"], cwd=ROOT)
    warm = _job(["attack", "--help"], env={preload.ENV: server[0]}, cwd=ROOT)
    assert (warm.returncode, warm.stdout) == (alone.returncode, alone.stdout) == (0, alone.stdout)
    assert "--spec" in warm.stdout
