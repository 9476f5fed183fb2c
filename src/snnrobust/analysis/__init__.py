"""Analyses of trained models (gradient sparsity and norms; later per-operation sparsity, cost)."""

from snnrobust.analysis.gradients import fy_two_logit, grad_fy, gradient_norm_stats

__all__ = ["fy_two_logit", "grad_fy", "gradient_norm_stats"]
