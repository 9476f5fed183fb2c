"""Per-pixel heatmaps of |∇x f_y| for a few samples (SR Fig. 5, Sec. 5.5), as tidy rows.

Fig. 5 shows, for a few CIFAR-10 images, the heatmap of ∇x f_y of a vanilla SNN (dense, cluttered)
and of an SR-SNN (sparse, with texture). A pixel's value here is Σ_c |∂f_y/∂x_c| over the channels
(and any other leading input axes, e.g. time of an event input), mean-pooled down to at most
``size``×``size`` so the rows stay small; the image itself (channel mean, pooled the same way) comes
along so a figure can show it above the heatmaps. The samples are the first ``samples`` of the fixed
evaluation subset, the same for every model.
"""

from __future__ import annotations

from typing import Annotated, Iterable

import torch
import torch.nn.functional as F

from snnrobust.analysis.registry import ANALYSES, FyReading
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range


def pixel_map(t: torch.Tensor, size: int, reduce: str) -> torch.Tensor:
    """[B, ..., H, W] → [B, h, w]: ``reduce`` (``sum`` or ``mean``) over the axes before H, W, then mean-pooled
    to h = min(H, size), w = min(W, size)."""
    if t.dim() < 3:
        raise SnnRobustError(f"grad_heatmap needs image inputs [batch, ..., height, width], got shape {list(t.shape)}")
    flat = t.reshape(t.shape[0], -1, *t.shape[-2:])
    maps = flat.sum(1) if reduce == "sum" else flat.mean(1)
    out = (min(maps.shape[-2], size), min(maps.shape[-1], size))
    return maps if out == tuple(maps.shape[-2:]) else F.adaptive_avg_pool2d(maps[:, None], out)[:, 0]


def map_rows(statistic: str, maps: torch.Tensor, labels: torch.Tensor, **extra) -> list[dict]:
    """One row per sample and pixel: {statistic, sample, label, row, col, mean}."""
    maps = maps.detach().double().cpu()
    return [{"statistic": statistic, "sample": s, "label": int(labels[s]), "row": r, "col": c,
             "mean": float(maps[s, r, c]), **extra}
            for s in range(maps.shape[0]) for r in range(maps.shape[1]) for c in range(maps.shape[2])]


@ANALYSES.register("grad_heatmap")
class GradHeatmap:
    """Fig. 5: ``heatmap`` rows (Σ over channels of |∇x f_y|, per pixel) and ``image`` rows (the input's
    channel mean) for the first ``samples`` evaluation samples; ``mean`` holds the pixel value."""

    STATISTICS = ("heatmap", "image")

    def __init__(self, fy: FyReading = "released", samples: Annotated[int, Range(ge=1, le=64)] = 4,
                 size: Annotated[int, Range(ge=1, le=128)] = 32, image: bool = True):
        self.fy, self.samples, self.size, self.image = fy, int(samples), int(size), image

    def __call__(self, model, batches: Iterable) -> list[dict]:
        from snnrobust.analysis.gradients import grad_fy

        xs, ys, have = [], [], 0
        for x, y in batches:
            if have >= self.samples:
                break
            take = min(self.samples - have, x.shape[0])
            xs.append(x[:take])
            ys.append(y[:take])
            have += take
        if not xs:
            raise SnnRobustError("grad_heatmap: the evaluation subset is empty")
        x, y = torch.cat(xs), torch.cat(ys)
        labels = y.cpu()
        rows = map_rows("heatmap", pixel_map(grad_fy(model, x, y, fy=self.fy).abs(), self.size, "sum"), labels,
                        fy=self.fy)
        if self.image:
            rows += map_rows("image", pixel_map(x, self.size, "mean"), labels, fy=self.fy)
        return rows
