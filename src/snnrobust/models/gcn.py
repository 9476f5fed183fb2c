"""Two-layer GCN (Kipf & Welling): GCNConv → ReLU → dropout → GCNConv, on (x, edge_index)."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models.registry import MODELS
from snnrobust.options import Range


class GCN(nn.Module):
    """forward(x [N, F], edge_index [2, E]) → logits [N, num_classes]."""

    spiking = False
    T = 1

    def __init__(self, num_features: int, num_classes: int, hidden: int, dropout: float):
        super().__init__()
        from snnrobust.data.graphdata import import_pyg

        GCNConv = import_pyg("torch_geometric.nn").GCNConv  # imported here: PyG is slow and only graphs need it

        self.conv1 = GCNConv(num_features, hidden)
        self.conv2 = GCNConv(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x, edge_index))
        h = F.dropout(h, p=self.dropout, training=self.training)
        return self.conv2(h, edge_index)


@MODELS.register("gcn")
def gcn(num_classes: int, in_shape: tuple, hidden: Annotated[int, Range(ge=1)] = 16,
        dropout: Annotated[float, Range(ge=0, lt=1)] = 0.5) -> nn.Module:
    """``in_shape = (num_features,)``."""
    if len(in_shape) != 1:
        raise SnnRobustError(f"gcn needs in_shape=(num_features,), got {tuple(in_shape)}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise SnnRobustError(f"option hidden must be an integer >= 1, got {hidden!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise SnnRobustError(f"option dropout must be in [0, 1), got {dropout!r}")
    return GCN(in_shape[0], num_classes, hidden, float(dropout))
