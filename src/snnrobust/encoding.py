"""Input encoders: an image batch [B, C, H, W] → an input sequence [T, B, C, H, W].

Each encoder also says which values its output can take (``bounds``), so a spike-space attack knows
the box it must stay in, and whether it reads raw pixels in [0, 1] (``reads_raw_pixels``), in which
case the model must not normalise before it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry

ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder")


@ENCODERS.register("direct")
class DirectEncoder(nn.Module):
    """Direct coding: the same analogue image is the input current at every one of the T steps."""

    reads_raw_pixels = False

    def __init__(self, T: int):
        super().__init__()
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape)

    def bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every step carries the input itself, so the input's bounds hold at every step."""
        return lo, hi

    def extra_repr(self) -> str:
        return f"T={self.T}"


@ENCODERS.register("events")
class EventFrames(nn.Module):
    """Pre-encoded event frames (CIFAR10-DVS), batch first [B, T, C, H, W] as batches are drawn → [T, B, C, H, W]."""

    reads_raw_pixels = False

    def __init__(self, T: int):
        super().__init__()
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.T:
            raise SnnRobustError(f"the events encoder needs [B, {self.T}, C, H, W] frames, got {tuple(x.shape)}")
        return x.transpose(0, 1)

    def bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return lo, hi

    def extra_repr(self) -> str:
        return f"T={self.T}"


class _PhaseBits(torch.autograd.Function):
    """Forward: the phase-coded spikes; backward: straight-through (identity per time step)."""

    @staticmethod
    def forward(ctx, x, weights, shifts, levels):
        byte = torch.round(x.clamp(0.0, 1.0) * 255.0)  # the 8-bit pixel value
        q = torch.floor(byte * (levels / 256.0))  # its top K bits (= byte when K = 8)
        bits = torch.remainder(torch.floor(q.unsqueeze(0) / shifts), 2.0)
        return bits * weights

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out.sum(0), None, None, None


@ENCODERS.register("phase")
class PhaseEncoder(nn.Module):
    """Phase coding (Kim et al. 2018): step t carries bit-plane k = mod(t−1, K) of the pixel, MSB
    first, weighted by ω(t) = 2^−(1+mod(t−1,K)); the input is in [0, 1], pixel byte = round(255x).

    Over any full K-step cycle Σ_t ω(t)·s(t) = q/2^K with q the top K bits of the byte (byte/256 for
    K = 8). T > K repeats the bit-planes (as the trail code does with T = 10, K = 8).
    ``weighted=False`` emits the bare bits: the released trail code never applies ω(t).

    Bit extraction has zero gradient almost everywhere, so the backward is a straight-through
    estimator: each step's output is treated as the identity of the pixel, ∂out[t]/∂x = 1, i.e. the
    attack sees the gradient it would see under direct coding (BPDA with the identity).
    """

    reads_raw_pixels = True  # bit-planes of round(255x): normalised values would be meaningless

    def __init__(self, T: int, K: int = 8, weighted: bool = True):
        super().__init__()
        if not isinstance(K, int) or not 1 <= K <= 8:
            raise SnnRobustError(f"phase coding needs an integer K in 1..8 (bits of a pixel), got {K!r}")
        self.T, self.K, self.weighted = T, K, bool(weighted)
        k = torch.arange(T) % K  # mod(t−1, K) for t = 1..T
        self.register_buffer("shifts", (2.0 ** (K - 1 - k)), persistent=False)
        omega = 2.0 ** -(1.0 + k) if weighted else torch.ones(T)
        self.register_buffer("weights", omega, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifts = self.shifts.to(x.dtype).reshape(-1, *([1] * x.dim()))
        weights = self.weights.to(x.dtype).reshape(-1, *([1] * x.dim()))
        return _PhaseBits.apply(x, weights, shifts, float(2**self.K))

    def bounds(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step t is a spike of height ω(t) (1 unweighted) or nothing: [0, ω(t)], shaped [T, 1, 1, 1, 1]."""
        upper = self.weights.reshape(-1, 1, 1, 1, 1)
        return torch.zeros_like(upper), upper

    def extra_repr(self) -> str:
        return f"T={self.T}, K={self.K}, weighted={self.weighted}"


def make_encoder(name: str, T: int, **opts) -> nn.Module:
    """Encoder ``name`` for ``T`` steps, mapping [B, C, H, W] → [T, B, C, H, W]."""
    cls = ENCODERS.get(name)
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise SnnRobustError(f"T must be a positive integer, got {T!r}")
    try:
        return cls(T, **opts)
    except TypeError as e:
        raise SnnRobustError(f"bad option for encoder {name!r}: {e}") from None
