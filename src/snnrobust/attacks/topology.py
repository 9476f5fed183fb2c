"""Topology attack (Xu et al., IJCAI 2019, "Topology Attack and Defense for Graph Neural Networks: An
Optimization Perspective"): PGD on a relaxed edge-flip vector s ∈ [0, 1]^{N(N-1)/2}, then random sampling.

The attack's ``eps`` is its budget as a fraction of the clean graph's undirected edges (Xu et al. flip 5%):
at most ⌊eps·|E|⌋ node pairs flip, in both directions. It perturbs graph structure, not pixels, so it runs
on a node classifier seen through ``MaskedNodes`` (features in, logits of the attacked nodes out) whose graph
model has ``forward_dense``; its points (space ``topology``) are perturbed graphs, which ``predict`` scores, so
``evaluate_attack`` and ``Transfer`` run it as they run any attack.

(No ``from __future__ import annotations``: the typed-option checker reads the annotations as objects.)
"""

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn

from snnrobust.attacks.base import ATTACKS, Attack, AttackView
from snnrobust.attacks.spaces import SPACES
from snnrobust.errors import SnnRobustError
from snnrobust.options import PositiveFloat, PositiveInt, Range, Seed

#: The authors' released step sizes: η_t = lr/√t with lr 200 for the mean CE, 0.1 for margin losses (CW).
DEFAULT_LR = {"ce": 200.0}
MARGIN_LR = 0.1


@dataclass
class PerturbedGraph:
    """A point of the topology space: node features and a dense adjacency (binary, symmetric, zero diagonal)."""

    x: torch.Tensor
    adj: torch.Tensor

    def detach(self) -> "PerturbedGraph":
        return PerturbedGraph(self.x.detach(), self.adj.detach())


class TopologySpace:
    """The graph's structure: points are ``PerturbedGraph``s, seen by a node classifier (``MaskedNodes``:
    ``model``, ``edge_index``, ``mask``) whose graph model runs on a dense adjacency (``forward_dense``)."""

    name = "topology"
    batch_dim = 0  # the attacked nodes
    needs_spiking = False

    def check(self, model: nn.Module) -> None:
        inner = getattr(model, "model", None)
        if not (hasattr(model, "edge_index") and hasattr(model, "mask") and hasattr(inner, "forward_dense")):
            raise SnnRobustError(f"attack space 'topology' perturbs a graph's edges: it needs a graph model with a "
                                 f"dense forward seen on its nodes (MaskedNodes), got {type(model).__name__}")

    def start(self, model: nn.Module, x: torch.Tensor) -> PerturbedGraph:
        return PerturbedGraph(x.detach(), undirected_adjacency(model.edge_index, x.shape[0], x.dtype))

    def forward(self, model: nn.Module, z: PerturbedGraph) -> torch.Tensor:
        return model.model.forward_dense(z.x, z.adj)[model.mask]

    def bounds(self, model: nn.Module, z: PerturbedGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return z.adj.new_tensor(0.0), z.adj.new_tensor(1.0)


SPACES.register("topology")(TopologySpace())


def undirected_adjacency(edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The dense adjacency of an undirected simple graph; a directed graph, a self-loop or a repeated edge
    is a one-line error (the attack flips node pairs, so it needs A binary, symmetric, zero diagonal)."""
    from snnrobust.models.gcn import dense_adjacency

    adj = dense_adjacency(edge_index, num_nodes, dtype)
    if adj.diagonal().any():
        raise SnnRobustError("the topology attack needs a graph without self-loops")
    if (adj > 1).any() or not torch.equal(adj, adj.T):
        raise SnnRobustError("the topology attack needs an undirected graph without repeated edges")
    return adj


def project_budget(a: torch.Tensor, budget: float, tol: float = 1e-7) -> torch.Tensor:
    """Euclidean projection of ``a`` onto {s : 0 ≤ s ≤ 1, 1ᵀs ≤ budget} (Xu et al., Sec. 4, projection Π_S):
    clip to [0, 1] if that keeps the budget, else clip(a − μ) with the μ > 0 where 1ᵀclip(a − μ) = budget,
    found by bisection. μ is taken from the feasible end of the bracket, so the sum never exceeds the budget."""
    s = a.clamp(0, 1)
    if float(s.sum()) <= budget:
        return s
    lo, hi = 0.0, float(a.max())  # sum(clip(a - lo)) > budget >= sum(clip(a - hi)) = 0
    while hi - lo > tol * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if float((a - mid).clamp(0, 1).sum()) > budget:
            lo = mid
        else:
            hi = mid
    return (a - hi).clamp(0, 1)


@ATTACKS.register("topology")
class TopologyAttack(Attack):
    """PGD topology attack: ``steps`` projected gradient-ascent steps on the relaxed flips s, step η_t = lr/√t,
    then the best of ``samples`` Bernoulli(s) draws within the budget (Xu et al., Sec. 4)."""

    name = "topology"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        steps: PositiveInt = 200,
        samples: PositiveInt = 20,
        lr: PositiveFloat | None = None,
        seed: Seed | None = None,
        loss: str = "ce",
        gradient: dict | None = None,
        space: Literal["topology"] = "topology",
        mode: Literal["eval", "train"] = "eval",
    ):
        super().__init__(eps, loss=loss, gradient=gradient, space=space, mode=mode)
        self.steps, self.samples = int(steps), int(samples)
        if self.steps < 1 or self.samples < 1:
            raise SnnRobustError(f"steps and samples must be >= 1, got {steps} and {samples}")
        self.lr = float(DEFAULT_LR.get(loss, MARGIN_LR) if lr is None else lr)
        self.seed = None if seed is None else int(seed)
        self._outcome: dict[str, Any] = {}

    def budget_for(self, adj: torch.Tensor) -> int:
        """The edge flips allowed on the clean graph ``adj``: ⌊eps·|E|⌋ (an error if more than its node pairs)."""
        n = adj.shape[0]
        edges, pairs = int(adj.triu(1).sum()), n * (n - 1) // 2
        budget = math.floor(self.eps * edges + 1e-9)
        if budget > pairs:
            raise SnnRobustError(f"topology budget eps={self.eps:g} of {edges} edges is {budget} edge flips, more than "
                                 f"the {pairs} node pairs of the {n}-node graph")
        return budget

    def perturb(self, view: AttackView, z: PerturbedGraph, y: torch.Tensor,
                generator: torch.Generator | None) -> PerturbedGraph:
        adj = z.adj
        budget = self.budget_for(adj)
        iu = torch.triu_indices(*adj.shape, offset=1, device=adj.device)
        s = adj.new_zeros(iu.shape[1])
        if budget > 0:  # with no budget the projection keeps s = 0: nothing to optimise
            for t in range(1, self.steps + 1):
                s = project_budget(s + self.lr / math.sqrt(t) * self._gradient(view, z, iu, s, y), budget)
            s = self._sample(view, z, iu, s, y, budget, generator)
        self._outcome = {"num_edges": int(adj.triu(1).sum()), "budget_edges": budget, "flips": int(s.sum())}
        return PerturbedGraph(z.x, flip(adj, iu, s))

    def _objective(self, view: AttackView, z: PerturbedGraph, iu: torch.Tensor, s: torch.Tensor,
                   y: torch.Tensor) -> torch.Tensor:
        """The attack loss at flips s: the mean over the attacked nodes (Xu et al.'s CE or margin loss, Sec. 4)."""
        return self._loss_fn(view(PerturbedGraph(z.x, flip(z.adj, iu, s))), y).mean()

    def _gradient(self, view, z, iu, s, y) -> torch.Tensor:
        """∇_s of the attack loss at the relaxed flips s: one forward and one backward pass, counted."""
        s = s.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self._objective(view, z, iu, s, y), s)
        self.cost.forward += 1
        self.cost.backward += 1
        return grad

    def _sample(self, view, z, iu, s, y, budget: int, generator) -> torch.Tensor:
        """Binary flips from the relaxed s (Xu et al., Sec. 4, random sampling): of ``samples`` Bernoulli(s)
        draws, the one with the highest loss among those within the budget; if none is, the ``budget`` largest
        entries of s."""
        if self.seed is not None:
            generator = torch.Generator(device=s.device).manual_seed(self.seed)
        best, best_loss = None, -math.inf
        with torch.no_grad():
            for _ in range(self.samples):
                u = torch.bernoulli(s.clamp(0, 1), generator=generator)
                if float(u.sum()) > budget:
                    continue
                loss = float(self._objective(view, z, iu, u, y))
                self.cost.forward += 1
                if loss > best_loss:
                    best, best_loss = u, loss
        if best is None:
            best = torch.zeros_like(s)
            best[s.topk(min(budget, int((s > 0).sum()))).indices] = 1.0
        return best

    def columns(self) -> dict[str, Any]:
        """The shared columns, the attack's own options, ``eps_unit`` and, after a run, the clean graph's
        undirected edges (``num_edges``), the flips allowed (``budget_edges``) and those made (``flips``)."""
        return {**super().columns(), "eps_unit": "edge_fraction", "samples": self.samples, "lr": self.lr,
                "sample_seed": self.seed, **self._outcome}


def flip(adj: torch.Tensor, iu: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """A' = A + (1 − 2A) ∘ S (Xu et al., Eq. 2, with C = 1 − I − 2A off the diagonal): S symmetric with s on
    the node pairs ``iu`` (upper triangle) and a zero diagonal; differentiable in s, binary for binary s."""
    upper = torch.zeros_like(adj).index_put((iu[0], iu[1]), s)
    return adj + (1 - 2 * adj) * (upper + upper.T)
