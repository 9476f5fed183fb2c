"""The trail paper's sparsity figures registered in ``FIGURES``: each kind's pure data function
(``panels_trail.TRAIL_PANELS``) drawn by the shared ``figures.draw``. Importing this module registers them."""

from __future__ import annotations

from snnrobust.report.figures import FIGURES, _drawer
from snnrobust.report.panels_trail import TRAIL_PANELS

for _kind, _shape in TRAIL_PANELS.items():
    FIGURES.register(_kind)(_drawer(_kind, _shape))
