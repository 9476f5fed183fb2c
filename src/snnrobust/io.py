"""Atomic file writes and safe checkpoint loading: no partial output survives a failure.

A write goes to ``.<name>.<host>-<pid>.<random>.tmp`` beside the target and is renamed into place
only when complete. A writer killed with SIGKILL cannot clean up, so every write first removes the
temporary files in its folder whose writer is gone (same host, dead pid; another host's after a day).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from snnrobust.errors import SnnRobustError

_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_TMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[^.]+\.tmp$")
_FOREIGN_TMP_AGE_S = 24 * 3600


def _writer_gone(match: re.Match, path: Path) -> bool:
    """Whether the process that named a temporary file can no longer finish it."""
    if match["host"] != _HOST:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > _FOREIGN_TMP_AGE_S
        return False
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def remove_orphaned_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writers that died (e.g. SIGKILL) in ``folder``; return them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TMP.match(entry.name)
            if match and entry.is_file(follow_symlinks=False) and _writer_gone(match, Path(entry.path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(path: str | os.PathLike, what: str = "output") -> None:
    """Fail now, before any work, if ``path`` could not be written later (one-line error naming it)."""
    path = Path(path)
    if path.is_dir():
        raise SnnRobustError(f"{what} {path} is a folder, not a file")
    folder = path.parent
    while not folder.exists():
        if folder == folder.parent:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise SnnRobustError(f"cannot write {what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SnnRobustError(f"cannot write {what} {path}: folder {folder} is not writable")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory: the archive's inner folder name is then fixed ("archive"), not
    taken from a random temporary file name, so equal content gives equal bytes."""
    buf = io.BytesIO()
    import torch  # here, not at the top: report verbs write files without paying torch's import

    torch.save(obj, buf)
    return buf.getvalue()


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """Save ``obj`` atomically; the same content always gives the same bytes."""
    write_bytes(path, torch_bytes(obj))


def torch_load(path: str | os.PathLike) -> Any:
    """Load a checkpoint with ``weights_only=True``; a missing or corrupt file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SnnRobustError(f"checkpoint not found: {path}")
    try:
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, wrong format, unpickling refused
        raise SnnRobustError(f"corrupt or truncated checkpoint {path}: {type(exc).__name__}") from None
