"""Spiking-PGD (Hou, Gao & Liu, "Fine-grained iterative adversarial attacks with limited computation budget",
ICLR 2026, Alg. 2): PGD run with activation reuse on the model's Conv2d/Linear layers (``attacks/reuse.py``).

The loop is PGD's own; this attack only puts the reuse context around the model and starts one reuse iteration
per gradient. Its cost columns (``forward_share``, ``forward_share_flops``, ``backward_share_flops``) come from
the attack's :class:`~snnrobust.attacks.base.Cost`.
"""

from typing import Annotated, Literal

from snnrobust.attacks.base import ATTACKS
from snnrobust.attacks.pgd import PGD
from snnrobust.attacks.reuse import activation_reuse
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range


@ATTACKS.register("spiking_pgd")
class SpikingPGD(PGD):
    """PGD whose layers reuse their cached output while their input changes by less than ``rho`` (relative ℓ2
    over the batch, Eq. 3) and backpropagate the virtual surrogate gradient Aᵀ(∂L/∂ô) (Sec. 4.3), or zero with
    ``virtual_grad: false``. ``ungated`` lists module paths that always compute; ``reference`` picks the input
    the gate compares with (``previous``: Eq. 3 and the released code; ``computed``: the input of the last
    computed output). ρ = 0 is PGD bit for bit.

    Beyond the paper (off by default; their result columns appear only when on): ``backward_reuse`` lets a reused
    layer whose upstream gradient changed by less than ρ return its last input gradient (skipping Aᵀg);
    ``block_reuse`` gates residual blocks as units, so a reused block also skips its BN/activation/add and
    backpropagates through the graph kept from the iteration that computed it (``attacks/reuse.py``)."""

    name = "spiking_pgd"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        steps: Annotated[int, Range(ge=1)] = 10,
        alpha: Annotated[float, Range(ge=0)] | None = None,
        random_start: bool = True,
        rho: Annotated[float, Range(ge=0)] = 0.0,
        virtual_grad: bool = True,
        ungated: list[str] | None = None,
        reference: Literal["previous", "computed"] = "previous",
        backward_reuse: bool = False,
        block_reuse: bool = False,
        **common,
    ):
        super().__init__(eps, steps=steps, alpha=alpha, random_start=random_start, **common)
        rho = float(rho)
        if not rho >= 0.0:
            raise SnnRobustError(f"spiking_pgd rho must be >= 0, got {rho}")
        if reference not in ("previous", "computed"):
            raise SnnRobustError(f"spiking_pgd reference must be 'previous' or 'computed', got {reference!r}")
        for option, value in (("backward_reuse", backward_reuse), ("block_reuse", block_reuse)):
            if not isinstance(value, bool):
                raise SnnRobustError(f"spiking_pgd {option} must be true or false, got {value!r}")
        self.rho, self.virtual_grad, self.reference = rho, bool(virtual_grad), reference
        self.backward_reuse, self.block_reuse = backward_reuse, block_reuse
        self.ungated = [str(p) for p in (ungated or [])]
        self._reuse = None

    def __call__(self, model, x, y, generator=None):
        with activation_reuse(model, self.rho, self.virtual_grad, self.ungated, self.reference, cost=self.cost,
                              backward_reuse=self.backward_reuse, block_reuse=self.block_reuse) as reuse:
            self._reuse = reuse
            try:
                return super().__call__(model, x, y, generator)
            finally:
                self._reuse = None

    def loss_gradient(self, view, z, y):
        """Alg. 2 lines 3-8: each gradient is one iteration t of the gated forward and the virtual backward."""
        if self._reuse is not None:
            self._reuse.next_iteration()
        return super().loss_gradient(view, z, y)

    def columns(self):
        extra = {k: True for k in ("backward_reuse", "block_reuse") if getattr(self, k)}
        return {**super().columns(), "rho": self.rho, "virtual_grad": self.virtual_grad,
                "ungated": ",".join(self.ungated) or None, "reference": self.reference, **extra}
