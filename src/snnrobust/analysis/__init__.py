"""Analyses of trained models: ∇x f_y norms (``grad_norms``), its distribution (``grad_hist``, SR Fig. 4)
and heatmaps (``grad_heatmap``, Fig. 5), random vs adversarial vulnerability (``vulnerability``, Eqs. 5-7).

``ANALYSES`` is the registry the ``analyze`` verb dispatches through (see ``analysis/registry.py``);
importing this package registers every analysis module.
"""

from snnrobust.analysis import heatmaps, histograms, vulnerability  # noqa: F401  (register themselves)
from snnrobust.analysis.gradients import fy_two_logit, grad_fy, gradient_norm_stats
from snnrobust.analysis.registry import ANALYSES

__all__ = ["ANALYSES", "fy_two_logit", "grad_fy", "gradient_norm_stats"]
