"""Pixel-level helpers: resizing to uint8, JPEG decoding and train-time augmentation."""

from __future__ import annotations

import io
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_CHUNK = 1024


def resize_to_uint8(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly resize (N,C,H,W) pixels in [0,255] to (N,C,size,size) uint8, in chunks to bound memory."""
    out = np.empty((x.shape[0], x.shape[1], size, size), dtype=np.uint8)
    for start in range(0, x.shape[0], _CHUNK):
        chunk = torch.from_numpy(np.asarray(x[start:start + _CHUNK], dtype=np.float32))
        if chunk.shape[-2:] != (size, size):
            chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=size < max(chunk.shape[-2:]))
        out[start:start + _CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def decode_images(blobs: Iterable[bytes]) -> np.ndarray:
    """Decode encoded images (JPEG, PNG) to (N,H,W,3) uint8 RGB; greyscale ones are converted."""
    arrays = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images differ in size: {sorted(shapes)[:3]}")
    return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random horizontal flip (probability 1/2), driven by ``generator``; event frames [B, T, C, H, W]
    get one flip per sample, the same for all its frames (the trail paper's only augmentation)."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-sample random crop from a zero-padded batch plus random horizontal flip, driven by ``generator``;
    event frames [B, T, C, H, W] get one crop and flip per sample, the same for all its frames."""
    shape = x.shape
    x = x.reshape(shape[0], -1, *shape[-2:])
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    cols = torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(0), cols)
    rows = oy[:, None] + torch.arange(h)
    cols = ox[:, None] + cols
    return padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]].reshape(shape)
