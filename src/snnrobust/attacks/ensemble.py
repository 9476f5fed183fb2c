"""The SR paper's ensemble attack (Sec. 5, App. E/G): one base attack run with several gradient rules;
a sample is broken if any member breaks it.

Members run as a cascade (AutoAttack style): member k attacks only the samples that are still
classified correctly after members < k, and the point kept per sample is the first breaking
member's (the last member's for samples none breaks), so ``predict`` on it gives the per-sample
worst case. ``cascade: false`` runs every member on every clean-correct sample (the SR code's
``val_ensemble``): same outcome, more passes.

Config shapes::

    {name: ensemble, options: {attack: {name: pgd, options: {steps: 10}},
                               members: [{rule: surrogate, name: triangle, gamma: 1}, {rule: rga}]}}
    members: {surrogate: triangle, gamma: {start: 0.1, stop: 3.0, step: 0.1}}   # App. G: 30 members

A member ``null`` is the model's own surrogate. ``loss``, ``space`` and ``mode`` are set on the
ensemble and apply to every member; ``eps`` is the ensemble's. ``reading`` says where the members'
rules apply in a black-box transfer (:class:`~snnrobust.attacks.transfer.Transfer`): ``source``
(the paper: the source model is differentiated with each rule; success is checked on the target)
or ``released`` (the SR code applies them to the target, so on the source every member is the
source's own surrogate: repeats with fresh random starts). White-box, both readings are the same.
"""

import contextlib
import math
from typing import Annotated, Any, Iterator, Literal

import torch
from torch import nn

from snnrobust.attacks.base import ATTACKS, Attack, make_attack
from snnrobust.attacks.gradient_rules import make_gradient_rule
from snnrobust.attacks.rows import sample_dim
from snnrobust.errors import SnnRobustError
from snnrobust.options import Range

#: The SR paper's ensemble (App. E): triangle γ=1, sigmoid γ=4, atan γ=2 (BPTT) and RGA.
SR_MEMBERS = [
    {"rule": "surrogate", "name": "triangle", "gamma": 1.0},
    {"rule": "surrogate", "name": "sigmoid", "gamma": 4.0},
    {"rule": "surrogate", "name": "atan", "gamma": 2.0},
    {"rule": "rga"},
]
MAX_MEMBERS = 1000
#: Options of the base attack that the ensemble sets itself.
ENSEMBLE_SETS = ("eps", "gradient", "loss", "space", "mode")


def _base_attack(spec: Any) -> tuple[str, dict]:
    """(name, options) of the base attack spec ``{name, options}``."""
    if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "options"}:
        raise SnnRobustError(f"ensemble attack must be a mapping {{name, options}}, got {spec!r}")
    name, options = spec["name"], spec.get("options") or {}
    if not isinstance(options, dict):
        raise SnnRobustError(f"ensemble base attack options must be a mapping, got {options!r}")
    if str(name).strip().lower() == "ensemble":
        raise SnnRobustError("ensemble base attack cannot be an ensemble")
    clash = [k for k in ENSEMBLE_SETS if k in options]
    if clash:
        raise SnnRobustError(f"ensemble: set {clash[0]!r} on the ensemble (or as members), "
                             "not in its base attack's options")
    return name, options


def _number(spec: dict, key: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SnnRobustError(f"ensemble gamma sweep {key} must be a finite number, got {value!r}")
    return float(value)


def _sweep(spec: dict) -> tuple[list[dict], str]:
    """``{surrogate: name, gamma: {start, stop, step} | [values]}`` → one surrogate member per γ (stop included)."""
    if set(spec) != {"surrogate", "gamma"}:
        raise SnnRobustError(f"ensemble members as a mapping is a gamma sweep {{surrogate, gamma}}, got keys "
                             f"{', '.join(sorted(map(str, spec)))}")
    name, gamma = spec["surrogate"], spec["gamma"]
    if isinstance(gamma, dict):
        if set(gamma) != {"start", "stop", "step"}:
            raise SnnRobustError(f"ensemble gamma sweep needs start, stop and step, got {gamma!r}")
        start, stop, step = (_number(gamma, k) for k in ("start", "stop", "step"))
        if step <= 0 or stop < start:
            raise SnnRobustError(f"ensemble gamma sweep needs step > 0 and stop >= start, got {gamma!r}")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_MEMBERS:
            raise SnnRobustError(f"ensemble gamma sweep gives {count} members; at most {MAX_MEMBERS}")
        values = [round(start + i * step, 10) for i in range(count)]
        label = f"{name}:gamma={start:g}..{stop:g}/{step:g}"
    elif isinstance(gamma, list) and gamma:
        values, label = gamma, None
    else:
        raise SnnRobustError(f"ensemble gamma sweep gamma must be {{start, stop, step}} or a list, got {gamma!r}")
    return [{"rule": "surrogate", "name": name, "gamma": g} for g in values], label


def member_specs(members: Any) -> tuple[list[dict | None], str | None]:
    """(gradient-rule specs, a compact label or None) of the ``members`` option."""
    if isinstance(members, dict):
        return _sweep(members)
    if not isinstance(members, (list, tuple)):
        raise SnnRobustError(f"ensemble members must be a list of gradient rules or a gamma sweep, got {members!r}")
    if not members:
        raise SnnRobustError("ensemble needs at least one member")
    if len(members) > MAX_MEMBERS:
        raise SnnRobustError(f"ensemble has {len(members)} members; at most {MAX_MEMBERS}")
    return list(members), None


@contextlib.contextmanager
def _drawn_for_all(attack: Attack, rows: torch.Tensor, n: int, dim: int) -> Iterator[None]:
    """Within the block ``attack`` draws its random start for all ``n`` samples and keeps ``rows``, so a
    sample's start is the same whether the others are attacked with it or not."""
    start = getattr(attack, "start", None)
    if start is None or rows.numel() == n:
        yield
        return

    def start_rows(view, z, generator):
        shape = list(z.shape)
        shape[dim] = n
        full = z.new_zeros(shape).index_copy_(dim, rows, z)
        return start(view, full, generator).index_select(dim, rows)

    own = attack.__dict__.get("start")
    attack.start = start_rows
    try:
        yield
    finally:
        if own is None:
            del attack.start
        else:
            attack.start = own


@ATTACKS.register("ensemble")
class Ensemble(Attack):
    """One base attack × several gradient rules, as a cascade; see the module docstring.

    Cost is in whole-batch passes: a member's pass over b of a batch's B samples counts b/B, and
    checking success on the judge costs one forward pass per member (plus one on the clean batch).
    ``member_broken`` counts, per member, the samples it broke first (since the last cost reset).
    """

    name = "ensemble"

    def __init__(
        self,
        eps: Annotated[float, Range(ge=0)],
        attack: dict | None = None,
        members: list[dict | None] | dict | None = None,
        cascade: bool = True,
        reading: Literal["source", "released"] = "source",
        **common,
    ):
        super().__init__(eps, **common)
        if self.gradient is not None:
            raise SnnRobustError("ensemble: gradient rules are its members; set 'members', not 'gradient'")
        if reading not in ("source", "released"):
            raise SnnRobustError(f"ensemble reading must be 'source' or 'released', got {reading!r}")
        self.attack = {"name": "pgd"} if attack is None else attack
        base_name, base_options = _base_attack(self.attack)
        self.members = [dict(m) for m in SR_MEMBERS] if members is None else members
        specs, label = member_specs(self.members)
        shared = {"eps": self.eps, "loss": self.loss, "space": self.space, "mode": self.mode, **base_options}
        try:
            self._base_name = make_attack(base_name, **shared).name
        except SnnRobustError as exc:
            raise SnnRobustError(f"ensemble base attack: {exc}") from None
        rules = []
        for k, spec in enumerate(specs):
            try:
                rules.append(make_gradient_rule(spec))
            except SnnRobustError as exc:
                raise SnnRobustError(f"ensemble member {k + 1}: {exc}") from None
        self._members = [make_attack(base_name, gradient=spec, **shared) for spec in specs]
        self._own = [make_attack(base_name, gradient=None, **shared) for _ in specs]  # reading: released
        self._label = label or "+".join(rule.label() for rule in rules)
        self.cascade, self.reading = bool(cascade), reading
        base = self._members[0]
        self.steps = getattr(base, "steps", 1)
        self.alpha = getattr(base, "alpha", None)
        self.random_start = getattr(base, "random_start", False)
        self._broken = [0] * len(specs)

    @property
    def member_broken(self) -> list[int]:
        return list(self._broken)

    def reset_cost(self) -> None:
        super().reset_cost()
        self._broken = [0] * len(self._members)
        for member in (*self._members, *self._own):
            member.reset_cost()

    def member_generators(self, generator: torch.Generator | None, device: torch.device | str) -> list[torch.Generator]:
        """One generator per member, seeded from ``generator``: member k's random draws are its own and
        the same whether it runs alone (``make_attack(base, gradient=rule_k)``) or in the cascade."""
        seeds = torch.randint(0, 2**62, (len(self._members),), generator=generator, device=device)
        return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds.tolist()]

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.attack_judged(model, model, x, y, generator)

    def attack_judged(self, model: nn.Module, judge: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Members attack ``model``; a sample counts as broken when ``judge`` (the target of a
        transfer, else ``model`` itself) misclassifies the member's point."""
        space = self._space
        space.check(model)
        space.check(judge)
        dim, n = sample_dim(space), y.shape[0]
        members = self._members if (judge is model or self.reading == "source") else self._own
        gens = self.member_generators(generator, x.device if generator is None else generator.device)
        with torch.no_grad():
            out = space.start(model, x).clone()
        alive = self._held(judge, out, y, 1.0)  # clean-wrong samples are never attacked
        targets = alive.clone()
        for k, (member, gen) in enumerate(zip(members, gens)):
            rows = (alive if self.cascade else targets).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            with _drawn_for_all(member, rows, n, dim):
                point = member(model, x.index_select(0, rows), y[rows], gen)
            share = rows.numel() / n
            self.cost.add(member.cost, share)
            member.reset_cost()
            first = alive[rows] & ~self._held(judge, point, y[rows], share)
            keep = first | (alive[rows] & (k == len(members) - 1))
            out.index_copy_(dim, rows[keep], point.index_select(dim, keep.nonzero().squeeze(1)))
            self._broken[k] += int(first.sum())
            alive[rows[first]] = False
        return out.detach()

    def _held(self, judge: nn.Module, z: torch.Tensor, y: torch.Tensor, share: float) -> torch.Tensor:
        """Whether ``judge`` still classifies each point correctly (one forward over a ``share`` of the batch)."""
        self.cost.forward += share
        return self.predict(judge, z).argmax(1) == y

    def columns(self) -> dict[str, Any]:
        return {"loss": self.loss, "space": self.space, "mode": self.mode, "gradient": "ensemble",
                "surrogate": None, "gamma": None, "ensemble": True, "members": self._label,
                "n_members": len(self._members), "base_attack": self._base_name, "cascade": self.cascade,
                "reading": self.reading, "member_broken": ",".join(str(b) for b in self._broken)}
