"""The shared graph pipeline: what a graph source builds (RawGraph) and how it becomes prepared arrays."""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

GRAPH_MASKS = ("train_mask", "val_mask", "test_mask")


def import_pyg(module: str) -> ModuleType:
    """Import a torch_geometric module on first use (PyG is slow to import), hushing the torch.jit
    deprecation warning PyG itself triggers, so a CLI error stays one line on stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        return importlib.import_module(module)


@dataclass
class RawGraph:
    """One node-classification graph with train/val/test masks, as a source built it."""

    data: Any  # torch_geometric.data.Data (imported lazily: PyG is slow to import)
    name: str
    num_classes: int
    source_sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class GraphOptions:
    """Options every graph source accepts (none yet; kept so graph and image sources share one path)."""


def finish_graph(raw: RawGraph, opts: GraphOptions, source: str,
                 source_opts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Turn a PyG ``Data`` into the arrays and meta of a prepared graph file."""
    d = raw.data
    arrays = {
        "x": d.x.numpy().astype(np.float32),
        "edge_index": d.edge_index.numpy().astype(np.int64),
        "y": d.y.numpy().astype(np.int64),
        **{m: getattr(d, m).numpy().astype(bool) for m in GRAPH_MASKS},
    }
    meta = {
        "kind": "graph",
        "source": source,
        "name": raw.name,
        "num_classes": int(raw.num_classes),
        "num_features": int(arrays["x"].shape[1]),
        "in_shape": [int(arrays["x"].shape[1])],
        "num_nodes": int(arrays["x"].shape[0]),
        "num_edges": int(arrays["edge_index"].shape[1]),
        **{f"n_{m[:-5]}": int(arrays[m].sum()) for m in GRAPH_MASKS},
        "source_sha256": dict(raw.source_sha256),
        "options": source_opts,
    }
    return arrays, meta
