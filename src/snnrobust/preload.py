"""Warm start for many small jobs: torch and the library are imported once, and each job's verb runs in a fork.

At default scale a job is 2-5 s, of which about 1.8 s is importing torch, spikingjelly and pandas. Under
``python -m snnrobust.preload run -- <command>`` (what ``make reproduce`` does with the local profile) a server
imports them once; each ``python -m snnrobust <verb> ...`` a job starts sees ``SNNROBUST_PRELOAD``, hands its argv,
environment, working directory and its stdin/stdout/stderr (passed as file descriptors, SCM_RIGHTS) to the server,
which forks a worker that runs the verb as the job's own process would. The job waits and exits with the worker's
status; a signal it gets is passed on to the worker, and a worker whose job died is killed. Snakemake, its logs,
benchmarks and per-file outputs see an ordinary job.

Anything unexpected falls back to running in the job's own process, with the same outputs: no server, a server of
another interpreter or another copy of the library, a library whose files changed since the server imported it (a
``git pull`` mid-run: the worker would run the old code on the new data files), or a refused connection. Slurm jobs never use it (the Makefile
wraps the local profile only).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ENV = "SNNROBUST_PRELOAD"
_HEADER = struct.Struct("!Q")  # request length, sent with the job's three file descriptors
_PID = struct.Struct("!q")  # worker pid, or -1: refused, run it yourself
_STATUS = struct.Struct("!i")  # the worker's exit code (negative: killed by that signal)
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
#: imported by the server before it accepts jobs: what most verbs need and is slow to import
WARM_MODULES = ("torch", "numpy", "pandas", "spikingjelly.activation_based.neuron", "snnrobust.cli",
                "snnrobust.commands.attack", "snnrobust.commands.train", "snnrobust.commands.analyze",
                "snnrobust.commands.prepare", "snnrobust.commands.report", "snnrobust.attacks", "snnrobust.analysis",
                "snnrobust.methods", "snnrobust.models", "snnrobust.training", "snnrobust.data",
                "snnrobust.report.figures")


def _identity() -> dict:
    """What must match between a job and the server for the worker to be the job's own code: the interpreter, the
    copy of the library and the state of its files."""
    import snnrobust

    package = os.path.realpath(snnrobust.__file__)
    return {"python": os.path.realpath(sys.executable), "package": package,
            "source": source_stamp(os.path.dirname(package))}


def source_stamp(root: str) -> str:
    """A digest of every code and data file under ``root`` (relative path, size, mtime): it changes when any is
    edited, added or removed. A few milliseconds for this library (3.7 ms measured, 2 busy cores)."""
    import hashlib

    digest = hashlib.sha1()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".yml", ".json")):
                st = os.stat(os.path.join(folder, name))
                rel = os.path.relpath(os.path.join(folder, name), root)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


# ---------------------------------------------------------------- the job's side (no heavy import here)

def delegate(argv: list[str]) -> int | None:
    """Run ``python -m snnrobust <argv>`` in the server's worker and return its exit code; None when there is
    no usable server (the caller then runs the verb itself)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return None
    with conn:
        request = json.dumps({"argv": [sys.argv[0], *argv], "env": dict(os.environ), "cwd": os.getcwd(),
                              **_identity()}).encode()
        try:
            socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
            conn.sendall(request)
            (pid,) = _PID.unpack(_recv_exact(conn, _PID.size))
        except (OSError, EOFError):
            return None
        if pid < 0:
            return None
        previous = {sig: signal.signal(sig, lambda s, _f: _kill(pid, s)) for sig in _FORWARDED}
        try:
            (status,) = _STATUS.unpack(_recv_exact(conn, _STATUS.size))
        except (OSError, EOFError):
            print("snnrobust: error: the preload server stopped while running this job", file=sys.stderr)
            return 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- the server's side

def _worker(request: dict, fds: list[int]) -> None:
    """In the forked worker: become the job's process (fds, cwd, environment, argv, threads) and run the verb."""
    for sig in (*_FORWARDED, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else os.cpu_count() or 1)
    from snnrobust.cli import main

    code = 1
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's --help and its own exits
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        os._exit(code)


def _supervise(conn: socket.socket, identity: dict) -> None:
    """In a forked supervisor: read one job, fork its worker, wait for it (or for the job to vanish), answer."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    msg, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    try:
        (length,) = _HEADER.unpack(msg)
        request = json.loads(_recv_exact(conn, length))
    except (struct.error, EOFError, ValueError):
        os._exit(0)
    if len(fds) != 3 or {k: request.get(k) for k in identity} != identity:
        conn.sendall(_PID.pack(-1))  # another interpreter, copy or state of the library: the job runs itself
        os._exit(0)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        conn.close()
        _worker(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(_PID.pack(pid))
    pidfd = os.pidfd_open(pid)
    import select

    ready, _, _ = select.select([conn, pidfd], [], [])
    if pidfd not in ready:  # the job closed its end (killed): its worker must not outlive it
        _kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(_STATUS.pack(os.waitstatus_to_exitcode(status)))
    except OSError:
        pass
    os._exit(0)


def serve(path: str, parent: int | None = None) -> None:
    """Import the warm modules, then fork a supervisor per job until SIGTERM (or until ``parent`` exits)."""
    import importlib

    identity = _identity()  # the files as they are imported: a job sees their state when it starts
    for name in WARM_MODULES:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears only once the server can take jobs
    listener.listen(64)
    listener.settimeout(1.0)
    while parent is None or os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        if os.fork() == 0:
            listener.close()
            _supervise(conn, identity)
        conn.close()


def run(command: list[str], timeout: float = 120.0) -> int:
    """Start a server, run ``command`` with ``SNNROBUST_PRELOAD`` pointing at it, stop the server; its exit code.
    A server that is not up within ``timeout`` seconds is not waited for: the jobs then start on their own."""
    folder = tempfile.mkdtemp(prefix="snnrobust-preload-")
    path = os.path.join(folder, "socket")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    server = subprocess.Popen([sys.executable, "-m", "snnrobust.preload", "serve", path, str(os.getpid())], env=env)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job_env = {**os.environ, ENV: path} if os.path.exists(path) else dict(os.environ)
    if ENV not in job_env:
        print("snnrobust: warning: preload server did not start; jobs import torch themselves", file=sys.stderr)
    child = subprocess.Popen(command, env=job_env)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the terminal's ^C reached the command too: wait for it to stop
                continue
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        for name in (path, path + ".tmp"):
            if os.path.exists(name):
                os.unlink(name)
        os.rmdir(folder)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"] and len(args) in (2, 3):
        serve(args[1], int(args[2]) if len(args) == 3 else None)
        return 0
    if args[:1] == ["run"] and len(args) > 2 and args[1] == "--":
        return run(args[2:])
    print("usage: python -m snnrobust.preload run -- COMMAND [ARG ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
