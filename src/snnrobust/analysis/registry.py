"""The analyses registry: name → an analysis object whose options are typed in its ``__init__``.

An analysis is called on a model (eval mode, on its device) and the fixed evaluation batches and
returns tidy rows (one per statistic); the ``analyze`` verb adds labels, timing and provenance.
Adding an analysis is one class here (or in its own module) and one ``@ANALYSES.register`` line.
"""

from __future__ import annotations

from typing import Annotated, Iterable, Literal

from snnrobust.options import Range
from snnrobust.registry import Registry

ANALYSES: Registry = Registry("analysis")


@ANALYSES.register("grad_norms")
class GradNorms:
    """Sparsity and size of ∇x f_y with the SR paper's two-logit f_y (Eq. 9): per-sample L0 fraction,
    L1 and L2, summarised as mean/std over the evaluation subset. ``fy``: which logits enter f_y
    (``paper``: summed over T, Eq. 8; ``released``: time-mean, as the released code)."""

    STATISTICS = ("l0_fraction", "l1", "l2")

    def __init__(self, fy: Literal["paper", "released"] = "released",
                 zero_tol: Annotated[float, Range(ge=0)] = 0.0):
        self.fy = fy
        self.zero_tol = float(zero_tol)

    def __call__(self, model, batches: Iterable) -> list[dict]:
        import torch

        from snnrobust.analysis.gradients import grad_fy, gradient_norm_stats

        per_stat: dict[str, list] = {name: [] for name in self.STATISTICS}
        for x, y in batches:
            stats = gradient_norm_stats(grad_fy(model, x, y, fy=self.fy), self.zero_tol)
            for name in self.STATISTICS:
                per_stat[name].append(stats[name].detach().cpu())
        rows = []
        for name, chunks in per_stat.items():
            values = torch.cat(chunks).double()
            rows.append({"statistic": name, "mean": float(values.mean()), "std": float(values.std(unbiased=False)),
                         "n": int(values.numel()), "zero_tol": self.zero_tol, "fy": self.fy})
        return rows
