"""Modification times of a stage's files, kept beside them: DVC restores content, not mtimes.

Snakemake reruns a job whose input is newer than its output unless it recorded the input's checksum,
which it does only for files up to 1 MB; `make reproduce` re-renders the report when a result is newer
than it. A pull writes files in any order, so the pusher's mtimes are restored from this manifest:
after a pull the workspace looks to both exactly as it did to the pusher.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from snnrobust.sharing.stages import Stage


def write(root: Path, stage: Stage) -> None:
    """Record the mtime (ns) of every file of ``stage`` in its manifest (atomic write)."""
    from snnrobust.io import write_json

    write_json(root / stage.mtimes, {path: (root / path).stat().st_mtime_ns for path in stage.files})


def restore(root: Path, stage: Stage) -> int:
    """Give every file of ``stage`` the mtime its manifest recorded; returns how many were set."""
    recorded = json.loads((root / stage.mtimes).read_text())
    for path, ns in recorded.items():
        os.utime(root / path, ns=(ns, ns))
    return len(recorded)
