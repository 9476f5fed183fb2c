"""Distribution of the components of ∇x f_y (SR Fig. 4, Sec. 5.5) as a fixed-bin histogram.

Fig. 4 compares "the normalized distribution of ∇x f_y(x)" of a vanilla, an AT and an SR* SNN: how
concentrated the components are around zero. Our reading: each sample's gradient is divided by its
own max |g| (``scale: sample_max``), so the histogram compares the *shape* (sparsity) of the
gradients on one common range [−1, 1]; their size is what ``grad_norms`` (L1, L2) reports. With
``scale: none`` the raw components are binned on [−limit, limit]. "Normalized" is also read as a
density: the bins integrate to the fraction of components inside the range (1 with ``sample_max``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch

from snnrobust.analysis.registry import ANALYSES, FyReading, PerSampleAnalysis, summary_row
from snnrobust.options import Range

#: How a sample's gradient is scaled before binning (a registry of one-liners, not an if-chain).
SCALINGS = {
    "sample_max": lambda flat: flat / flat.abs().amax(1, keepdim=True).clamp_min(torch.finfo(flat.dtype).tiny),
    "none": lambda flat: flat,
}


def gradient_histogram(grad: torch.Tensor, bins: int, limit: float, scale: str = "sample_max",
                       zero_tol: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-sample density on ``bins`` equal bins of [−limit, limit] (``hist``: [B, bins]), the fraction of
    components with |g| ≤ zero_tol (``zero_fraction``) and of scaled components outside the range
    (``outside_fraction``). A density times the bin width summed over bins is 1 − outside_fraction.
    An all-zero gradient stays all zeros under ``sample_max`` (it has no scale)."""
    flat = grad.detach().flatten(1).double()
    values = SCALINGS[scale](flat)
    width = 2.0 * limit / bins
    inside = values.abs() <= limit
    index = ((values + limit) / width).floor().long().clamp(0, bins - 1)  # the right edge +limit joins the last bin
    counts = torch.zeros(flat.shape[0], bins, dtype=torch.float64, device=flat.device)
    counts.scatter_add_(1, index, inside.double())
    size = flat.shape[1]
    return {
        "hist": counts / (size * width),
        "zero_fraction": (flat.abs() <= zero_tol).double().mean(1),
        "outside_fraction": 1.0 - inside.double().mean(1),
    }


@ANALYSES.register("grad_hist")
class GradHist(PerSampleAnalysis):
    """Fig. 4: the density of ∇x f_y's components on fixed bins, averaged over the evaluation samples
    (so every sample weighs the same), plus the fraction of exact zeros (|g| ≤ ``zero_tol``).

    Rows: ``statistic: hist`` once per bin (``bin``, ``bin_left``, ``bin_right``; ``mean`` is the
    density, ``std`` its spread over samples), then ``zero_fraction`` and ``outside_fraction``. An odd
    ``bins`` (the default) puts a bin centred on 0."""

    STATISTICS = ("hist", "zero_fraction", "outside_fraction")

    def __init__(self, fy: FyReading = "released", bins: Annotated[int, Range(ge=2, le=1000)] = 101,
                 scale: Literal["sample_max", "none"] = "sample_max",
                 limit: Annotated[float, Range(gt=0)] = 1.0,
                 zero_tol: Annotated[float, Range(ge=0)] = 0.0):
        self.fy, self.bins, self.scale = fy, int(bins), scale
        self.limit, self.zero_tol = float(limit), float(zero_tol)

    def per_sample(self, model, x, y) -> dict:
        from snnrobust.analysis.gradients import grad_fy

        return gradient_histogram(grad_fy(model, x, y, fy=self.fy), self.bins, self.limit, self.scale, self.zero_tol)

    def labels(self) -> dict:
        return {"fy": self.fy, "scale": self.scale, "zero_tol": self.zero_tol}

    def rows(self, values: dict) -> list[dict]:
        edges = torch.linspace(-self.limit, self.limit, self.bins + 1, dtype=torch.float64)
        hist = values["hist"]
        rows = [summary_row("hist", hist[:, i], bin=i, bin_left=float(edges[i]), bin_right=float(edges[i + 1]),
                            **self.labels()) for i in range(self.bins)]
        return rows + [summary_row(name, values[name], **self.labels())
                       for name in ("zero_fraction", "outside_fraction")]
