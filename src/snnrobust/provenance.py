"""Provenance stamped into every result: spec hash, code version, seed, device, library versions."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

import snnrobust


def spec_hash(spec: dict) -> str:
    """Short SHA-256 of the canonical JSON of a job spec (what a result depends on)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one."""
    root = Path(snnrobust.__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "nogit"
    return f"{snnrobust.__version__}+{rev}"


def provenance(spec: dict) -> dict:
    return {
        "spec_hash": spec_hash(spec),
        "code_version": code_version(),
        "torch": torch.__version__,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
