"""The Spiking-PGD paper's cost figure (Fig. 5) and redundancy heatmap (Fig. 1, Tables 1-2) registered in ``FIGURES``: each kind's pure data function
(``panels_spgd.SPGD_PANELS``) drawn by the shared ``figures.draw``. Importing this module registers them."""

from __future__ import annotations

from snnrobust.report.figures import FIGURES, _drawer
from snnrobust.report.panels_spgd import SPGD_PANELS

for _kind, _shape in SPGD_PANELS.items():
    FIGURES.register(_kind)(_drawer(_kind, _shape))
