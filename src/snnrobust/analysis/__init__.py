"""Analyses of trained models (gradient sparsity and norms; later per-operation sparsity, cost).

``ANALYSES`` is the registry the ``analyze`` verb dispatches through (see ``analysis/registry.py``).
"""

from snnrobust.analysis.gradients import fy_two_logit, grad_fy, gradient_norm_stats
from snnrobust.analysis.registry import ANALYSES

__all__ = ["ANALYSES", "fy_two_logit", "grad_fy", "gradient_norm_stats"]
