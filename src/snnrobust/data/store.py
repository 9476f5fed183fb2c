"""The prepared-file format on disk: one .npz of plain arrays plus a JSON ``meta`` string (no pickle)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from snnrobust.errors import SnnRobustError
from snnrobust.io import atomic_path


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def write_prepared(out: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` and ``meta`` to ``out`` atomically (compressed npz)."""
    text = json.dumps(meta, sort_keys=True, default=_jsonable)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, meta=np.array(text), **arrays)


def read_prepared(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read every array and the meta of a prepared file; missing or unreadable files are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise SnnRobustError(f"prepared data not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(str(arrays.pop("meta")[()]))
    except KeyError:
        raise SnnRobustError(f"corrupt prepared data {path}: no 'meta' entry") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise SnnRobustError(f"corrupt or truncated prepared data {path}: {type(exc).__name__}") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise SnnRobustError(f"corrupt prepared data {path}: meta has no 'kind'")
    return arrays, meta
