"""Spiking-PGD adversarial training (Hou, Gao & Liu, ICLR 2026, Sec. 5.3 and App. B): PGD-AT whose inner attack is
Spiking-PGD (PGD with activation reuse), its reuse threshold ρ set per epoch by a constant or an exponential schedule.

The paper's schedule (Sec. 5.3, App. B): ρ(t) = ρ0·(e^{−λt/N} − e^{−λ})/(1 − e^{−λ}) at epoch t of N, so ρ(0) = ρ0
and ρ(N) = 0 (the paper writes ρ(T); N is meant). Epochs count from 0 as in the released ``spiking_train.py``, so
the last epoch, N − 1, still has ρ > 0. The released code's inner attack is PGD-10 at ε 8/255, α 2/255 with
random start (our defaults); it runs the attack with the model in train mode (``mode: train``, a config value).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from snnrobust.errors import SnnRobustError
from snnrobust.methods.at import AT
from snnrobust.methods.base import METHODS
from snnrobust.options import NonNegativeFloat, PositiveFloat, Range, UnitInterval

#: The released AT's inner attack (``spiking_train.py``): PGD-10, α 2/255, random start, at ε 8/255.
SPGD_ATTACK = {"name": "spiking_pgd", "options": {"steps": 10, "alpha": 2 / 255, "random_start": True}}
SPGD_EPS = 8 / 255
#: The paper's ρ0 and the λ it recommends (Sec. 5.3: "with λ = 2.0 Spiking-PGD nearly matches PGD-AT").
RHO0, DECAY = 0.1, 2.0

Schedule = Literal["constant", "exponential"]


def exponential_rho(rho0: float, decay: float, epoch: int, epochs: int) -> float:
    """ρ(t) = ρ0·(e^{−λt/N} − e^{−λ})/(1 − e^{−λ}) (Sec. 5.3 / App. B) at epoch t = ``epoch`` of N = ``epochs``:
    ρ0 at t = 0, decreasing to 0 at t = N; 0 past N (a run longer than the schedule's horizon)."""
    floor = math.exp(-decay)
    return max(0.0, rho0 * (math.exp(-decay * epoch / epochs) - floor) / (1.0 - floor))


def _spiking_inner(attack: dict | None) -> dict:
    """The inner attack spec: Spiking-PGD (name optional), its options without ``rho`` (the method sets it)."""
    if attack is None:
        return {"name": SPGD_ATTACK["name"], "options": dict(SPGD_ATTACK["options"])}
    if not isinstance(attack, dict) or set(attack) - {"name", "options"}:
        raise SnnRobustError(f"the inner attack must be {{name, options}}, got {attack!r}")
    name = attack.get("name", "spiking_pgd")
    if name != "spiking_pgd":
        raise SnnRobustError(f"method 'spiking_pgd_at': the inner attack is spiking_pgd, got {name!r} "
                             "(use method 'at' for another attack)")
    options = attack.get("options") or {}
    if isinstance(options, dict) and "rho" in options:
        raise SnnRobustError("method 'spiking_pgd_at': set rho as the method's option (its schedule's rho0), "
                             "not in the inner attack's options")
    return {"name": name, "options": options}


@METHODS.register("spiking_pgd_at")
class SpikingPGDAT(AT):
    """AT (``at``'s loss) on Spiking-PGD examples; before epoch t the inner attack's ρ is ``rho`` (``schedule:
    constant``) or ``exponential_rho(rho, decay, t, epochs)``. ``epochs`` is the schedule's N, set to the run's
    epoch count (the loop does not tell a method its length). Metric columns: ``rho`` of the epoch, ``precision``
    (percent of the layer forwards the inner attack requested over the epoch that it computed: the released code's "precision",
    Tab. 3) and ``precision_flops`` (the same weighted by MACs). ρ = 0 trains exactly as ``at`` with PGD."""

    name = "spiking_pgd_at"

    def __init__(self, attack: dict | None = None, eps: Annotated[float, Range(ge=0, le=1)] = SPGD_EPS,
                 clean_weight: UnitInterval = 0.0, rho: NonNegativeFloat = RHO0, schedule: Schedule = "constant",
                 decay: PositiveFloat = DECAY, epochs: Annotated[int, Range(ge=1)] | None = None):
        rho, decay = float(rho), float(decay)
        if not rho >= 0.0:
            raise SnnRobustError(f"method {self.name!r}: rho must be >= 0, got {rho}")
        if schedule not in ("constant", "exponential"):
            raise SnnRobustError(f"method {self.name!r}: unknown schedule {schedule!r}; choose one of: "
                                 "constant, exponential")
        if not decay > 0.0:
            raise SnnRobustError(f"method {self.name!r}: decay must be > 0, got {decay}")
        if schedule == "exponential" and epochs is None:
            raise SnnRobustError(f"method {self.name!r}: schedule exponential needs option epochs "
                                 "(N of the schedule: the run's number of epochs)")
        super().__init__(_spiking_inner(attack), eps, clean_weight)
        self.rho, self.schedule, self.decay, self.epochs = rho, schedule, decay, epochs
        self.current_rho = self.rho_at(0)
        self.inner.attack.rho = self.current_rho
        self._epoch_start = (0.0, 0.0, 0.0, 0.0)

    def rho_at(self, epoch: int) -> float:
        """The inner attack's ρ during epoch ``epoch`` (0-based)."""
        if self.schedule == "constant":
            return self.rho
        return exponential_rho(self.rho, self.decay, epoch, self.epochs)

    def _layer_counts(self) -> tuple[float, float, float, float]:
        c = self.cost
        return c.layer_forwards, c.layer_forwards_computed, c.layer_macs, c.layer_macs_computed

    def on_epoch_start(self, epoch, model, optimizer):
        self.current_rho = self.rho_at(epoch)
        self.inner.attack.rho = self.current_rho
        self._epoch_start = self._layer_counts()

    def epoch_metrics(self):
        asked, done, macs, macs_done = (now - then for now, then in zip(self._layer_counts(), self._epoch_start))
        # in percent, as the paper's Precision (%) and the loop's accuracy columns
        return {"rho": self.current_rho,
                "precision": 100.0 * done / asked if asked else 100.0,
                "precision_flops": 100.0 * macs_done / macs if macs else 100.0}
