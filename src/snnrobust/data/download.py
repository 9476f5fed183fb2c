"""Checksum-verified downloads: stream to a temporary file, check, then rename into place."""

from __future__ import annotations

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


def download(url: str, dest: str | Path, *, sha256: str | None = None, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with the right checksum is already there."""
    dest = Path(dest)
    wanted = _expected(sha256, md5)
    if dest.is_file() and _mismatch(wanted, {a: file_digest(dest, a) for a in wanted}) is None:
        return dest
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
    return dest
