"""Per-sample rows of a point in an attack's space: pixels are [B, ...], the encoded spike sequence is
[T, B, ...]. Attacks that decide per sample (APGD's step sizes, the worst of several noise draws, an
ensemble's cascade) select and mask rows along the space's sample dimension."""

import torch

def sample_dim(space) -> int:
    """The dimension of a point in ``space`` that indexes samples (each space declares ``batch_dim``)."""
    return int(space.batch_dim)


def per_sample(values: torch.Tensor, like: torch.Tensor, dim: int) -> torch.Tensor:
    """``values`` [B] shaped to broadcast against a point ``like`` whose sample dim is ``dim``."""
    shape = [1] * like.dim()
    shape[dim] = -1
    return values.reshape(shape)


def where_rows(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows of ``a`` where ``mask`` [B] holds, rows of ``b`` elsewhere."""
    return torch.where(per_sample(mask, a, dim), a, b)
