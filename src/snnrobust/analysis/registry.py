"""The analyses registry: name → an analysis object whose options are typed in its ``__init__``.

An analysis is called on a model (eval mode, on its device) and the fixed evaluation batches and
returns tidy rows (one per statistic); the ``analyze`` verb adds labels, timing and provenance.
Adding an analysis is one class here (or in its own module) and one ``@ANALYSES.register`` line.
Every row carries ``statistic`` and ``mean`` (the value the report reads), usually with ``std`` and
``n`` over the evaluation samples; ``STATISTICS`` lists the statistic names a class can emit (claims
may select them as metrics).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Iterable, Literal

from snnrobust.options import Range
from snnrobust.registry import Registry

ANALYSES: Registry = Registry("analysis")

#: Which logits enter f_y (see ``gradients.FY_READINGS``): summed over T (``paper``, Eq. 8) or time-mean.
FyReading = Literal["paper", "released"]


def summary_row(statistic: str, values, **extra) -> dict:
    """Mean / population std / count of per-sample ``values``; NaN entries (undefined for that sample) are left
    out, and with none left mean and std are None (JSON null, not the non-standard NaN)."""
    values = values.double().flatten()
    values = values[~values.isnan()]
    n = int(values.numel())
    mean = float(values.mean()) if n else None
    std = float(values.std(unbiased=False)) if n else None
    return {"statistic": statistic, "mean": mean, "std": std, "n": n, **extra}


class PerSampleAnalysis:
    """Base of analyses that compute per-sample statistics batch by batch and summarise them over the
    evaluation subset: a subclass writes ``per_sample`` (name → tensor with the batch first) and
    ``labels`` (option values repeated on every row); ``rows`` may be overridden for non-scalar data."""

    STATISTICS: tuple[str, ...] = ()

    def per_sample(self, model, x, y) -> dict:
        raise NotImplementedError

    def labels(self) -> dict:
        return {}

    def collect(self, model, batches: Iterable) -> dict:
        """name → the per-sample values of every batch, concatenated (float64, on the CPU)."""
        import torch

        chunks: dict[str, list] = defaultdict(list)
        for x, y in batches:
            for name, values in self.per_sample(model, x, y).items():
                chunks[name].append(values.detach().double().cpu())
        return {name: torch.cat(parts) for name, parts in chunks.items()}

    def rows(self, values: dict) -> list[dict]:
        return [summary_row(name, values[name], **self.labels()) for name in self.STATISTICS]

    def __call__(self, model, batches: Iterable) -> list[dict]:
        return self.rows(self.collect(model, batches))


@ANALYSES.register("grad_norms")
class GradNorms(PerSampleAnalysis):
    """Sparsity and size of ∇x f_y with the SR paper's two-logit f_y (Eq. 9): per-sample L0 fraction,
    L1 and L2, summarised as mean/std over the evaluation subset. ``fy``: which logits enter f_y
    (``paper``: summed over T, Eq. 8; ``released``: time-mean, as the released code)."""

    STATISTICS = ("l0_fraction", "l1", "l2")

    def __init__(self, fy: FyReading = "released", zero_tol: Annotated[float, Range(ge=0)] = 0.0):
        self.fy = fy
        self.zero_tol = float(zero_tol)

    def per_sample(self, model, x, y) -> dict:
        from snnrobust.analysis.gradients import grad_fy, gradient_norm_stats

        return gradient_norm_stats(grad_fy(model, x, y, fy=self.fy), self.zero_tol)

    def labels(self) -> dict:
        return {"zero_tol": self.zero_tol, "fy": self.fy}
