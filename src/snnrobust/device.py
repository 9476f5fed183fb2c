"""`device: auto | cpu | cuda` → a torch.device; asking for CUDA where there is none is a one-line error."""

from __future__ import annotations

import torch

from snnrobust.errors import SnnRobustError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a silent fallback."""
    name = "auto" if name is None else str(name).strip().lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise SnnRobustError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SnnRobustError(f"device {name!r} requested but no CUDA GPU is present (use device: cpu or auto)")
    return torch.device(name)
