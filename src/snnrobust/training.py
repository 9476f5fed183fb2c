"""The one training loop: any method, image or graph model, on any device; checkpoints every epoch
and resumes from them.

Resuming is exact: data order and augmentation come from generators seeded by (seed, epoch), and
the global torch RNG states and the method's own state are saved in each checkpoint, so a killed run
that resumes ends with the same metrics as an uninterrupted one.

Model selection (``select``): ``last`` keeps the last epoch's model; ``best_val`` the epoch with the best
accuracy on a validation split held out of the training set (``val_size``); ``best_test`` the epoch with
the best clean *test* accuracy, which is what the SR paper's released code keeps (the test set then does
model selection, so its test numbers are optimistic; kept to reproduce the published ones). The best state
lives in the checkpoint, so a resumed run selects what an uninterrupted one selects.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from snnrobust.errors import SnnRobustError
from snnrobust.io import torch_load, torch_save
from snnrobust.methods.base import Method
from snnrobust.options import NonNegativeFloat, PositiveFloat, PositiveInt, Seed, coerce_options
from snnrobust.registry import Registry

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc"]


@dataclass
class TrainConfig:
    """Optimisation settings shared by every method."""

    epochs: PositiveInt = 5
    batch_size: PositiveInt = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: PositiveFloat = 0.05
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 5e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    augment: bool | Literal["flip"] = False  # true: crop + flip; flip: horizontal flip only (the trail paper)
    seed: Seed = 0
    train_limit: PositiveInt | None = None
    eval_limit: PositiveInt | None = None
    eval_batch_size: PositiveInt = 256
    val_size: PositiveInt | None = None
    select: Literal["last", "best_val", "best_test"] = "last"

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise SnnRobustError("epochs and batch_size must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise SnnRobustError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in ("cosine", "constant"):
            raise SnnRobustError(f"unknown schedule {self.schedule!r}; choose one of: constant, cosine")
        SELECTIONS.get(self.select)
        if self.val_size is not None and (isinstance(self.val_size, bool) or not isinstance(self.val_size, int)
                                          or self.val_size < 1):
            raise SnnRobustError(f"val_size must be an integer >= 1, got {self.val_size!r}")
        if self.select == "best_val" and self.val_size is None:
            raise SnnRobustError("select best_val needs a validation split: set val_size")


#: Model selection: name → the metrics-row column whose maximum picks the kept epoch (None: the last epoch).
SELECTIONS: Registry[str | None] = Registry("model selection")
SELECTIONS.register("last")(None)
SELECTIONS.register("best_val")("val_acc")
SELECTIONS.register("best_test")("test_acc")  # the released SR code's reading: the test set selects


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
    device: str = "cpu"
    selected_epoch: int = 0  # the 1-based epoch whose model train() leaves in the model
    #: wall seconds of each epoch's training steps (evaluation excluded), resumed epochs included: the SR
    #: paper's Tab. 7 cost. Kept out of the metrics rows, which must be byte-identical across reruns.
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The metric columns in order: the fixed ones, ``robust_acc`` if evaluated, then the method's."""
        return list(self.metrics[0]) if self.metrics else list(METRIC_COLUMNS)


@dataclass
class RobustEval:
    """A robust evaluation every ``every`` epochs (1-based epoch numbers divisible by it): ``attack``
    (``{name, options}`` from the attack registry) at ``eps`` on the first ``n_eval`` test examples."""

    every: int
    attack: dict
    eps: float
    n_eval: int | None = None

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise SnnRobustError(f"robust_eval.every must be an integer >= 1, got {self.every!r}")
        if self.n_eval is not None and (isinstance(self.n_eval, bool) or not isinstance(self.n_eval, int)
                                        or self.n_eval < 1):
            raise SnnRobustError(f"robust_eval.n_eval must be an integer >= 1, got {self.n_eval!r}")
        if not isinstance(self.attack, dict) or set(self.attack) - {"name", "options"} or "name" not in self.attack:
            raise SnnRobustError(f"robust_eval.attack must be {{name, options}}, got {self.attack!r}")
        try:
            self.eps = float(self.eps)
        except (TypeError, ValueError):
            raise SnnRobustError(f"robust_eval.eps must be a number in [0, 1], got {self.eps!r}") from None
        if not 0.0 <= self.eps <= 1.0:
            raise SnnRobustError(f"robust_eval.eps must be in [0, 1], got {self.eps!r}")
        self.make_attack()  # an unknown attack or option fails now, not after the first k epochs

    def make_attack(self):
        """A fresh attack (its cost counters start at zero)."""
        from snnrobust.attacks import make_attack

        return make_attack(self.attack["name"], eps=self.eps, **self.attack.get("options", {}))

    def due(self, epoch_number: int) -> bool:
        return epoch_number % self.every == 0

    def robust_acc(self, model: nn.Module, feed, seed: int) -> float:
        from snnrobust.attacks import evaluate_attack

        net = feed.view(model, "test")
        batches = list(feed.test(self.n_eval))
        return float(evaluate_attack(net, self.make_attack(), batches, seed=seed, progress=False)["robust_acc"])


def robust_eval_from(spec: dict | None) -> RobustEval | None:
    """Build a RobustEval from the train spec's ``robust_eval`` dict (None = no robust evaluation)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise SnnRobustError(f"robust_eval must be a mapping, got {spec!r}")
    unknown = sorted(set(spec) - set(RobustEval.__dataclass_fields__))
    if unknown:
        raise SnnRobustError(f"unknown robust_eval key(s): {', '.join(unknown)}")
    missing = sorted({"every", "attack", "eps"} - set(spec))
    if missing:
        raise SnnRobustError(f"robust_eval is missing {', '.join(missing)}")
    return RobustEval(**spec)


def _lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Per-epoch learning rate (cosine annealing to 0 over ``epochs``, or constant)."""
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


def evaluate_clean(model: nn.Module, feed, limit: int | None) -> tuple[float, float]:
    """Clean loss and accuracy (%) on the first ``limit`` test examples (all if None), in eval mode."""
    return _loss_and_accuracy(model, feed.view(model, "test"), feed.test(limit))


def evaluate_val(model: nn.Module, feed) -> tuple[float, float]:
    """Clean loss and accuracy (%) on the validation split held out of the training set, in eval mode."""
    return _loss_and_accuracy(model, feed.view(model, "val"), feed.val())


@torch.no_grad()
def _loss_and_accuracy(model: nn.Module, net: nn.Module, batches) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in batches:
        logits = net(x)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return loss_sum / max(total, 1), 100.0 * correct / max(total, 1)


def build_optimizer(model: nn.Module, method: Method, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer over the method's parameter groups (all parameters in one group by default).

    Each group keeps an ``lr_scale`` (default 1): the loop sets its lr to scale × the scheduled lr."""
    groups = method.param_groups(model)
    if groups is None:
        groups = list(model.parameters())
    else:
        own = {id(p) for p in model.parameters()}
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise SnnRobustError(f"method {method.name!r}: parameter group {i} is not a dict with 'params'")
            if "lr" in group:
                raise SnnRobustError(f"method {method.name!r}: parameter group {i} sets lr; set lr_scale instead")
            group["params"] = list(group["params"])
            if any(id(p) not in own for p in group["params"]):
                raise SnnRobustError(f"method {method.name!r}: parameter group {i} holds a tensor that is not "
                                     "a parameter of the model")
    try:
        optimizer = OPTIMIZERS[cfg.optimizer](groups, cfg)
    except (TypeError, ValueError) as exc:
        raise SnnRobustError(f"method {method.name!r}: bad parameter groups: {str(exc).splitlines()[0]}") from None
    for group in optimizer.param_groups:
        group.setdefault("lr_scale", 1.0)
    return optimizer


def _save_checkpoint(path: Path, model, optimizer, method: Method, epoch: int, metrics: list[dict],
                     fingerprint: str, device: torch.device, best: dict | None, epoch_seconds: list[float]) -> None:
    state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "method": method.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "metrics": metrics,
        "best": best,
        "epoch_seconds": epoch_seconds,
    }
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    torch_save(state, path)


def _restore_checkpoint(path: Path, state: dict, model, optimizer, method: Method, device: torch.device) -> int:
    """Load a checkpoint of this run spec into the model, optimizer, method and RNGs; the epoch it ended."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        method.load_state_dict(state.get("method", {}))
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        return int(state["epoch"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise SnnRobustError(f"checkpoint {path} does not match this run: {str(exc).splitlines()[0]}") from None


def _epoch_row(epoch: int, lr: float, loss_sum: float, correct: int, seen: int, test: tuple[float, float],
               val: tuple[float, float] | None, robust_acc: float | None, extra: dict[str, float],
               method: Method) -> dict:
    """One metrics row: the fixed columns, ``val_loss``/``val_acc`` (with a validation split),
    ``robust_acc`` (when evaluated at all), the method's columns."""
    row = {
        "epoch": epoch + 1,
        "lr": round(lr, 10),
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": 100.0 * correct / max(seen, 1),
        "test_loss": test[0],
        "test_acc": test[1],
    }
    if val is not None:
        row["val_loss"], row["val_acc"] = val
    if robust_acc is not None:
        row["robust_acc"] = robust_acc
    clash = sorted(set(row) & set(extra))
    if clash:
        raise SnnRobustError(f"method {method.name!r}: metric column(s) {', '.join(clash)} are the loop's own")
    row.update({k: float(v) for k, v in extra.items()})
    return row


def train(
    model: nn.Module,
    method: Method,
    data,
    cfg: TrainConfig,
    checkpoint: str | Path,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    fingerprint: str = "",
    device: torch.device | str = "cpu",
    robust_eval: RobustEval | None = None,
) -> TrainResult:
    """Train ``model`` with ``method`` for ``cfg.epochs``, resuming from ``checkpoint`` if it exists.

    ``data`` is prepared image or graph data (graphs train full-batch on their train mask); the
    model, batches and checkpoint state live on ``device``. ``fingerprint`` identifies the run (a
    hash of its full spec): a checkpoint written by a run with another fingerprint (changed epochs,
    model or method options) is not resumed but started afresh, so a resumed run always equals an
    uninterrupted run of the same spec. At the end the model holds the epoch ``cfg.select`` picks
    (``result.selected_epoch``); the checkpoint keeps the last epoch's state (to resume) and the best one.
    """
    from snnrobust.data.loader import make_feed

    checkpoint, device = Path(checkpoint), torch.device(device)
    model.to(device)
    feed = make_feed(data, cfg, device)
    if robust_eval is not None:
        feed.test(robust_eval.n_eval)  # a subset the data cannot give fails now, not after k epochs
    optimizer = build_optimizer(model, method, cfg)
    method.on_run_start(cfg.seed)  # before a checkpoint restores the method's counters
    selector = SELECTIONS.get(cfg.select)
    result = TrainResult(device=str(device))
    start_epoch, best = 0, None
    state = torch_load(checkpoint) if checkpoint.exists() else None
    if state is not None and state.get("fingerprint", "") != fingerprint:
        tqdm.write(f"checkpoint {checkpoint} belongs to another run spec; starting afresh")
        state = None
    if state is not None:
        start_epoch = _restore_checkpoint(checkpoint, state, model, optimizer, method, device)
        result.metrics, best = list(state["metrics"]), state.get("best")
        result.epoch_seconds = list(state.get("epoch_seconds", []))
        result.resumed_from_epoch = start_epoch
        tqdm.write(f"resumed from epoch {start_epoch} of {cfg.epochs} ({checkpoint})")
    net = feed.view(model, "train")
    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        lr = _lr_at(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        method.on_epoch_start(epoch, model, optimizer)
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(feed.train(epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        epoch_t0 = time.perf_counter()
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            loss, logits = method.loss(net, x, y)
            if not torch.isfinite(loss):
                raise SnnRobustError(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}")
            loss.backward()
            optimizer.step()
            method.after_step(model, optimizer)
            result.train_steps += 1
            loss_sum += loss.item() * y.numel()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
        result.epoch_seconds.append(time.perf_counter() - epoch_t0)
        test = evaluate_clean(model, feed, cfg.eval_limit)
        val = evaluate_val(model, feed) if cfg.val_size is not None else None
        robust_acc = None
        if robust_eval is not None:
            robust_acc = robust_eval.robust_acc(model, feed, cfg.seed) if robust_eval.due(epoch + 1) else math.nan
        row = _epoch_row(epoch, lr, loss_sum, correct, seen, test, val, robust_acc, method.epoch_metrics(), method)
        if result.metrics and list(row) != list(result.metrics[-1]):
            raise SnnRobustError(f"method {method.name!r}: metric columns changed at epoch {epoch + 1}: "
                                 f"{list(row)} after {list(result.metrics[-1])}")
        result.metrics.append(row)
        if selector is not None and (best is None or row[selector] > best["score"]):
            best = {"epoch": epoch + 1, "score": row[selector],
                    "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        _save_checkpoint(checkpoint, model, optimizer, method, epoch + 1, result.metrics, fingerprint, device, best,
                         result.epoch_seconds)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
    result.wall_s = time.perf_counter() - t0
    result.selected_epoch = cfg.epochs
    if best is not None:
        model.load_state_dict(best["model"])
        result.selected_epoch = int(best["epoch"])
    return result


def train_config_from(spec: dict) -> TrainConfig:
    """Build a TrainConfig from a plain dict: unknown keys and bad values (types, ranges) are one-line errors."""
    return TrainConfig(**coerce_options(TrainConfig, spec, "the training recipe"))


__all__ = ["TrainConfig", "TrainResult", "RobustEval", "train", "evaluate_clean", "evaluate_val", "build_optimizer",
           "train_config_from", "robust_eval_from", "METRIC_COLUMNS", "SELECTIONS", "asdict"]
