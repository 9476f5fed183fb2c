"""Graph sources: ``karate`` (embedded in PyG) and ``planetoid`` (Cora/CiteSeer from local raw files only)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from snnrobust.data.checksums import verify_sums
from snnrobust.data.graphdata import RawGraph, import_pyg
from snnrobust.data.sources import graph_source
from snnrobust.errors import SnnRobustError

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer"}
PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@graph_source("karate")
def build_karate(n_val: int = 10, split_seed: int = 0) -> RawGraph:
    """Zachary's karate club; PyG's one-node-per-class train mask, the rest split seeded into val/test."""
    data = import_pyg("torch_geometric.datasets").KarateClub()[0]
    rest = np.flatnonzero(~data.train_mask.numpy())
    if not 0 <= n_val < len(rest):
        raise SnnRobustError(f"n_val={n_val} must be between 0 and {len(rest) - 1}")
    rest = np.random.default_rng(split_seed).permutation(rest)
    for mask, nodes in (("val_mask", rest[:n_val]), ("test_mask", rest[n_val:])):
        setattr(data, mask, torch.zeros(data.num_nodes, dtype=torch.bool))
        getattr(data, mask)[torch.from_numpy(nodes)] = True
    return RawGraph(data, name="karate", num_classes=int(data.y.max()) + 1)


def _raw_files(root: Path, name: str) -> list[str]:
    """Relative paths of the eight raw files; a missing one is a one-line error (we never download)."""
    rel = [f"{name}/raw/ind.{name.lower()}.{part}" for part in PLANETOID_PARTS]
    missing = [r for r in rel if not (root / r).is_file()]
    if missing:
        raise SnnRobustError(f"planetoid raw file not found: {root / missing[0]} (downloads are disabled)")
    return rel


@graph_source("planetoid")
def build_planetoid(root: Path, name: str = "Cora", scratch: Path | None = None, verify: bool = True) -> RawGraph:
    """Load ``root/<Name>/raw`` through PyG in a scratch folder (PyG writes processed/ beside raw/)."""
    if name.lower() not in PLANETOID_NAMES:
        raise SnnRobustError(f"unknown planetoid name {name!r}; choose one of: {', '.join(PLANETOID_NAMES.values())}")
    name = PLANETOID_NAMES[name.lower()]
    rel = _raw_files(root, name)
    hashes = verify_sums(root, rel) if verify else {}
    Planetoid = import_pyg("torch_geometric.datasets").Planetoid
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="planetoid.") as tmp:
        (Path(tmp) / name).mkdir()
        (Path(tmp) / name / "raw").symlink_to((root / name / "raw").resolve(), target_is_directory=True)
        dataset = Planetoid(tmp, name)
        data = dataset[0]
        return RawGraph(data, name=name, num_classes=dataset.num_classes, source_sha256=hashes)
