"""Analyses of trained models: ∇x f_y norms (``grad_norms``), its distribution (``grad_hist``, SR Fig. 4)
and heatmaps (``grad_heatmap``, Fig. 5), random vs adversarial vulnerability (``vulnerability``, Eqs. 5-7); the trail
paper's gradient sparsity per operation and first-layer weight-gradient sparsity (``op_sparsity``, Figs. 3/5, Thm 4.4);
a gradient-masking checklist (``masking_checklist``, Carlini et al. 2019); the Spiking-PGD paper's activation/gradient
redundancy across PGD iterations (``redundancy``, Tables 1-2, Fig. 1).

``ANALYSES`` is the registry the ``analyze`` verb dispatches through (see ``analysis/registry.py``);
importing this package registers every analysis module.
"""

from snnrobust.analysis import heatmaps, histograms, op_sparsity, vulnerability  # noqa: F401  (register themselves)
from snnrobust.analysis import masking  # noqa: F401  (registers masking_checklist)
from snnrobust.analysis import redundancy  # noqa: F401  (registers redundancy: Spiking-PGD Tables 1-2, Fig. 1)
from snnrobust.analysis.gradients import fy_two_logit, grad_fy, gradient_norm_stats
from snnrobust.analysis.registry import ANALYSES

__all__ = ["ANALYSES", "fy_two_logit", "grad_fy", "gradient_norm_stats"]
