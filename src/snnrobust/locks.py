"""Tell a stale Snakemake lock from a live run, so an interrupted ``make reproduce`` resumes by itself.

Snakemake locks a working directory with files under ``.snakemake/locks/`` and removes them when it
exits; a SIGKILL leaves them behind and every later run refuses to start. The lock records no
process, so liveness is read from the process table: a lock is live while a ``snakemake`` process
or one of its ``python -m snnrobust`` jobs (other than our own ancestors) runs in this directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from snnrobust.errors import SnnRobustError

LOCK_DIR = Path(".snakemake") / "locks"


@dataclass(frozen=True)
class Process:
    pid: int
    cwd: Path | None  # None when it cannot be read (no /proc, or another user's process)
    argv: tuple[str, ...]


def _is_run(argv: tuple[str, ...]) -> bool:
    """A Snakemake process (``snakemake``, ``python .../bin/snakemake``, ``python -m snakemake``) or one of
    its jobs (``python -m snnrobust <verb>``, which outlives a SIGKILL of snakemake alone)."""
    return any(os.path.basename(a) in ("snakemake", "snnrobust") for a in argv[:3])


def _proc_processes() -> list[Process]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = tuple(a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a)
        except OSError:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            cwd = None
        found.append(Process(int(entry.name), cwd, argv))
    return found


def _ps_processes() -> list[Process]:
    """Fallback without /proc (macOS): every process, with an unknown working directory."""
    out = subprocess.run(["ps", "-axo", "pid=,command="], capture_output=True, text=True, check=False).stdout
    rows = (line.strip().split(None, 1) for line in out.splitlines() if line.strip())
    return [Process(int(r[0]), None, tuple(r[1].split())) for r in rows if len(r) == 2 and r[0].isdigit()]


def _ancestors() -> set[int]:
    """This process and its parents (the make recipe's shell names snakemake in its command line)."""
    pids, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def live_runs(workdir: str | os.PathLike) -> list[int]:
    """Pids of Snakemake runs and jobs working in ``workdir`` (any, where the cwd cannot be read)."""
    workdir = Path(workdir).resolve()
    processes = _proc_processes() if Path("/proc/self").exists() else _ps_processes()
    mine = _ancestors()
    return sorted(p.pid for p in processes
                  if p.pid not in mine and _is_run(p.argv) and (p.cwd is None or p.cwd == workdir))


def lock_files(workdir: str | os.PathLike) -> list[Path]:
    folder = Path(workdir) / LOCK_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def clear_stale_lock(workdir: str | os.PathLike = ".") -> bool:
    """Remove Snakemake's lock in ``workdir`` if no live run holds it; True if one was removed.

    A live run is a one-line error: a second concurrent run must be refused, not unlocked.
    """
    locks = lock_files(workdir)
    if not locks:
        return False
    live = live_runs(workdir)
    if live:
        raise SnnRobustError(
            f"another Snakemake run is active in {Path(workdir).resolve()} (pid {', '.join(map(str, live))}); "
            "wait for it to finish or stop it"
        )
    shutil.rmtree(Path(workdir) / LOCK_DIR, ignore_errors=True)
    return True
