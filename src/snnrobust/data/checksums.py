"""File digests and SHA256SUMS verification, so every byte the data layer reads is the byte it expects."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from snnrobust.errors import SnnRobustError

SUMS_FILE = "SHA256SUMS"


def file_digest(path: str | Path, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_sums(folder: Path) -> dict[str, str]:
    """Parse ``folder/SHA256SUMS`` (``<hash>  <relative path>`` lines) into {path: hash}."""
    path = folder / SUMS_FILE
    if not path.is_file():
        raise SnnRobustError(f"checksum list not found: {path}")
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, _, name = line.strip().partition(" ")
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def verify_sums(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """Check each named file of ``folder`` against its SHA256SUMS line; return {name: sha256}."""
    sums = read_sums(folder)
    verified: dict[str, str] = {}
    for name in names:
        if name not in sums:
            raise SnnRobustError(f"{folder / name} is not listed in {folder / SUMS_FILE}")
        actual = file_digest(folder / name)
        if actual != sums[name]:
            raise SnnRobustError(
                f"SHA256 mismatch for {folder / name}: expected {sums[name]}, got {actual}"
            )
        verified[name] = actual
    return verified
