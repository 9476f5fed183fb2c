"""The inner attack of adversarial training, shared by AT, RAT, SR* (and Spiking-PGD-AT): any registered
attack at the method's ``eps``, run on the model being trained, with per-step seeded randomness.

Randomness is a function of (run seed, stream, step counter) only, so a resumed run that restores the
counter draws exactly what an uninterrupted one draws. The attack's own ``mode`` option decides the
model's mode while it runs (``eval`` by default, as the SR code generates its adversarial examples); the
attack core restores the model's mode and BatchNorm buffers afterwards.
"""

from __future__ import annotations

import inspect
import zlib
from typing import Any

import numpy as np
import torch
from torch import nn

from snnrobust.attacks import Cost, check_attack_options, make_attack
from snnrobust.errors import SnnRobustError
from snnrobust.methods.base import Method

#: The SR paper's inner attack (App. D, Table 5): PGD-5 at eps 2/255 with step 0.01. The released code
#: uses PGD-7 at 8/255 with alpha 2.55/255: set those as config values.
PAPER_ATTACK: dict[str, Any] = {"name": "pgd", "options": {"steps": 5, "alpha": 0.01}}
PAPER_EPS = 2 / 255


def step_generator(seed: int, stream: str, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from (seed, stream, step) through numpy's SeedSequence: the draws of
    step k never depend on the draws of earlier steps, so only the counter has to survive a kill."""
    entropy = [int(seed), zlib.crc32(stream.encode()), int(step)]
    state = np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class StepRandomness:
    """A named stream of per-step generators: the run's seed (bound when training starts) and a step
    counter (checkpointed)."""

    def __init__(self, stream: str):
        self.stream, self.seed, self.step = stream, 0, 0

    def next(self, device: torch.device | str = "cpu") -> torch.Generator:
        gen = step_generator(self.seed, self.stream, self.step, device)
        self.step += 1
        return gen

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class InnerAttack:
    """Adversarial examples for a training step: ``attack`` (``{name, options}``, any registered attack,
    checked now) at ``eps``; its forward/backward passes are added to ``cost``."""

    def __init__(self, attack: dict | None, eps: float, cost: Cost):
        attack = PAPER_ATTACK if attack is None else attack
        if not isinstance(attack, dict) or "name" not in attack or set(attack) - {"name", "options"}:
            raise SnnRobustError(f"the inner attack must be {{name, options}}, got {attack!r}")
        options = dict(attack.get("options") or {})
        if "eps" in options:
            raise SnnRobustError("set the inner attack's eps as the method's option eps, not in the attack's options")
        if options.get("space", "pixel") != "pixel":
            raise SnnRobustError(f"a training attack perturbs pixels; space {options['space']!r} is not supported")
        check_attack_options(attack["name"], options)
        eps = float(eps)
        if not 0.0 <= eps <= 1.0:
            raise SnnRobustError(f"eps must be in [0, 1], got {eps}")
        self.spec = {"name": attack["name"], "options": options}
        self.attack = make_attack(attack["name"], eps=eps, **options)
        self.rng = StepRandomness("inner-attack")
        self.cost = cost

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.attack.reset_cost()
        x_adv = self.attack(model, x, y, generator=self.rng.next(x.device))
        self.cost.add(self.attack.cost)
        return x_adv.detach()


def options_repr(self) -> str:
    """``Name(option=value, ...)`` over the options of the class's ``__init__`` (not its helpers or counters)."""
    names = list(inspect.signature(type(self).__init__).parameters)[1:]
    return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


class AdversarialMethod(Method):
    """Base of the methods that train on adversarial examples: holds the inner attack, binds its seed to
    the run's, checkpoints its step counter and counts passes (``cost``: the passes ``loss`` runs plus the
    loop's one backward through every forward graph the returned loss holds)."""

    def __init__(self, attack: dict | None, eps: float):
        self.cost = Cost()
        self.inner = InnerAttack(attack, eps, self.cost)
        self.attack, self.eps = self.inner.spec, self.inner.attack.eps

    def on_run_start(self, seed: int) -> None:
        """Called by the loop before training (and before a checkpoint is restored): the run's seed."""
        self.inner.rng.seed = int(seed)

    def state_dict(self) -> dict:
        return {"inner_attack": self.inner.rng.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        try:
            self.inner.rng.load_state_dict(state["inner_attack"])
        except (KeyError, TypeError, ValueError):
            raise SnnRobustError(f"method {self.name!r}: the checkpoint holds no inner-attack state") from None

    def count_forward(self, graphs: int = 1) -> None:
        """``graphs`` forward passes whose graphs the loop's backward will traverse once each."""
        self.cost.forward += graphs
        self.cost.backward += graphs

    __repr__ = options_repr
