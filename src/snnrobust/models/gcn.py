"""Two-layer GCN (Kipf & Welling): GCNConv → ReLU → dropout → GCNConv, on (x, edge_index), and the same
weights on a dense, differentiable adjacency (``forward_dense``), which a topology attack differentiates."""

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

    def forward_dense(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """``forward`` on a dense adjacency [N, N] (``adj[i, j]`` = weight of the edge j → i, as
        ``dense_adjacency`` builds it): the same weights and normalisation, differentiable in ``adj``."""
        a_norm = gcn_norm_dense(adj)
        h = F.relu(_dense_conv(self.conv1, x, a_norm))
        h = F.dropout(h, p=self.dropout, training=self.training)
        return _dense_conv(self.conv2, h, a_norm)


def dense_adjacency(edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dense [N, N] adjacency of ``edge_index`` in message-passing order: ``adj[target, source]`` (duplicate
    edges add up, as GCNConv's aggregation does); a symmetric matrix for an undirected graph."""
    adj = torch.zeros(num_nodes, num_nodes, dtype=dtype, device=edge_index.device)
    ones = torch.ones(edge_index.shape[1], dtype=dtype, device=edge_index.device)
    return adj.index_put_((edge_index[1], edge_index[0]), ones, accumulate=True)


def gcn_norm_dense(adj: torch.Tensor) -> torch.Tensor:
    """GCN normalisation D^-1/2 (A + I) D^-1/2 with D the row sums of A + I (Kipf & Welling, Eq. 2).

    As GCNConv's ``add_remaining_self_loops``: a node with a self-loop keeps its weight, the others get 1.
    """
    diag = adj.diagonal()
    a_hat = adj + torch.diag((diag == 0).to(adj.dtype))
    d_inv_sqrt = a_hat.sum(1).pow(-0.5)
    d_inv_sqrt = d_inv_sqrt.masked_fill(torch.isinf(d_inv_sqrt), 0.0)
    return d_inv_sqrt[:, None] * a_hat * d_inv_sqrt[None, :]


def _dense_conv(conv: nn.Module, x: torch.Tensor, a_norm: torch.Tensor) -> torch.Tensor:
    """One GCNConv layer on a normalised dense adjacency: Â (x Wᵀ) + b."""
    out = a_norm @ conv.lin(x)
    return out if conv.bias is None else out + conv.bias


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
