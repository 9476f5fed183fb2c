"""Checksum-verified downloads: stream to a temporary file, check, then rename into place."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from snnrobust.data.checksums import file_digest
from snnrobust.errors import SnnRobustError
from snnrobust.io import atomic_path


def _expected(sha256: str | None, md5: str | None) -> dict[str, str]:
    wanted = {algo: h.lower() for algo, h in (("sha256", sha256), ("md5", md5)) if h}
    if not wanted:
        raise SnnRobustError("refusing to download without a checksum (give sha256 or md5)")
    return wanted


def _mismatch(wanted: dict[str, str], actual: dict[str, str]) -> str | None:
    for algo, digest in wanted.items():
        if actual[algo] != digest:
            return f"{algo} expected {digest}, got {actual[algo]}"
    return None


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def download(url: str, dest: str | Path, *, sha256: str | None = None, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with the right checksum is already there.

    A failed download leaves nothing behind: no partial file, and no folder it created (e.g. an empty
    ``raw/download/`` after an offline attempt); folders that hold other files are kept."""
    dest = Path(dest)
    wanted = _expected(sha256, md5)
    if dest.is_file() and _mismatch(wanted, {a: file_digest(dest, a) for a in wanted}) is None:
        return dest
    created = _missing_folders(dest.parent)
    try:
        _fetch(url, dest, wanted, timeout)
    except BaseException:
        for folder in created:  # deepest first; a folder that is not empty stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return dest


def _fetch(url: str, dest: Path, wanted: dict[str, str], timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, check it, rename it into place."""
    request = urllib.request.Request(url, headers={"User-Agent": "snnrobust"})
    try:
        with atomic_path(dest) as tmp:
            hashers = {algo: hashlib.new(algo) for algo in wanted}
            with urllib.request.urlopen(request, timeout=timeout) as resp, open(tmp, "wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
            problem = _mismatch(wanted, {a: h.hexdigest() for a, h in hashers.items()})
            if problem:
                raise SnnRobustError(f"checksum mismatch for {url}: {problem}")
    except urllib.error.HTTPError as exc:
        raise SnnRobustError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise SnnRobustError(f"download failed: {url}: {getattr(exc, 'reason', exc)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SnnRobustError(f"download failed: {url}: {type(exc).__name__}: {exc}") from None
