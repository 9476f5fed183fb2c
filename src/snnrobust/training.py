"""The one training loop: any method, any model; checkpoints every epoch and resumes from them.

Resuming is exact: data order and augmentation come from generators seeded by (seed, epoch), and
the global torch RNG state is saved in each checkpoint, so a killed run that resumes ends with the
same metrics as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from snnrobust.errors import SnnRobustError
from snnrobust.io import torch_load, torch_save
from snnrobust.methods.base import Method

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]


@dataclass
class TrainConfig:
    """Optimisation settings shared by every method."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    augment: bool = False
    seed: int = 0
    train_limit: int | None = None
    eval_limit: int | None = None
    eval_batch_size: int = 256

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise SnnRobustError("epochs and batch_size must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise SnnRobustError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in ("cosine", "constant"):
            raise SnnRobustError(f"unknown schedule {self.schedule!r}; choose one of: constant, cosine")


OPTIMIZERS: dict[str, Callable[[list, TrainConfig], torch.optim.Optimizer]] = {
    "sgd": lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
    "adam": lambda p, c: torch.optim.Adam(p, lr=c.lr, weight_decay=c.weight_decay),
}


@dataclass
class TrainResult:
    metrics: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    resumed_from_epoch: int = 0
    train_steps: int = 0


def _lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Per-epoch learning rate (cosine annealing to 0 over ``epochs``, or constant)."""
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


@torch.no_grad()
def evaluate_clean(model: nn.Module, data, cfg: TrainConfig) -> tuple[float, float]:
    """Clean loss and accuracy (%) on the test split, in eval mode."""
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in data.loader("test", cfg.eval_batch_size, shuffle=False, seed=cfg.seed, limit=cfg.eval_limit):
        logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return loss_sum / max(total, 1), 100.0 * correct / max(total, 1)


def _save_checkpoint(path: Path, model, optimizer, epoch: int, metrics: list[dict], fingerprint: str) -> None:
    torch_save(
        {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "metrics": metrics,
        },
        path,
    )


def train(
    model: nn.Module,
    method: Method,
    data,
    cfg: TrainConfig,
    checkpoint: str | Path,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    fingerprint: str = "",
) -> TrainResult:
    """Train ``model`` with ``method`` for ``cfg.epochs``, resuming from ``checkpoint`` if it exists.

    ``fingerprint`` identifies the run (a hash of its full spec): a checkpoint written by a run with
    another fingerprint (changed epochs, model or method options) is not resumed but started afresh,
    so a resumed run always equals an uninterrupted run of the same spec.
    """
    checkpoint = Path(checkpoint)
    optimizer = OPTIMIZERS[cfg.optimizer](list(model.parameters()), cfg)
    result = TrainResult()
    start_epoch = 0
    state = torch_load(checkpoint) if checkpoint.exists() else None
    if state is not None and state.get("fingerprint", "") != fingerprint:
        tqdm.write(f"checkpoint {checkpoint} belongs to another run spec; starting afresh")
        state = None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            start_epoch = int(state["epoch"])
            result.metrics = list(state["metrics"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise SnnRobustError(f"checkpoint {checkpoint} does not match this run: {str(exc).splitlines()[0]}") from None
        result.resumed_from_epoch = start_epoch
    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        lr = _lr_at(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        batches = data.loader(
            "train", cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch,
            augment=cfg.augment, limit=cfg.train_limit,
        )
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            loss, logits = method.loss(model, x, y)
            if not torch.isfinite(loss):
                raise SnnRobustError(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}")
            loss.backward()
            optimizer.step()
            result.train_steps += 1
            loss_sum += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
        test_loss, test_acc = evaluate_clean(model, data, cfg)
        result.metrics.append(
            {
                "epoch": epoch + 1,
                "lr": round(lr, 10),
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": 100.0 * correct / max(seen, 1),
                "test_loss": test_loss,
                "test_acc": test_acc,
            }
        )
        _save_checkpoint(checkpoint, model, optimizer, epoch + 1, result.metrics, fingerprint)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
    result.wall_s = time.perf_counter() - t0
    return result


def train_config_from(spec: dict) -> TrainConfig:
    """Build a TrainConfig from a plain dict, rejecting unknown keys in one line."""
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise SnnRobustError(f"unknown training option(s): {', '.join(unknown)}")
    return TrainConfig(**spec)


__all__ = ["TrainConfig", "TrainResult", "train", "evaluate_clean", "train_config_from", "METRIC_COLUMNS", "asdict"]
