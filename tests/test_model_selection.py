"""Model selection on a validation split held out of the training set (``val_size``, ``select``).

The split is checked on synthetic data whose pixels encode each example's index (so every batch says
which examples it holds); the selection against per-epoch snapshots of an identical run with
``select: last``, and through a kill and resume.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnrobust.data import load_prepared
from snnrobust.data.loader import holdout_split, make_feed
from snnrobust.data.prepared import PreparedData
from snnrobust.errors import SnnRobustError
from snnrobust.methods import Method
from snnrobust.training import METRIC_COLUMNS, TrainConfig, train

from conftest import Crash, crash_after

pytestmark = pytest.mark.usefixtures("one_thread")

N_TRAIN, N_TEST, TEST_MARK = 300, 40, 255




def _indexed_data() -> PreparedData:
    """Images of 1×2×2 pixels: (i // 256, i % 256, split mark, 0); the test split marked 255, train 0."""
    def images(n, mark):
        x = np.zeros((n, 1, 2, 2), np.uint8)
        i = np.arange(n)
        x[:, 0, 0, 0], x[:, 0, 0, 1], x[:, 0, 1, 0] = i // 256, i % 256, mark
        return x

    arrays = {"x_train": images(N_TRAIN, 0), "y_train": (np.arange(N_TRAIN) % 2).astype(np.int64),
              "x_test": images(N_TEST, TEST_MARK), "y_test": (np.arange(N_TEST) % 2).astype(np.int64)}
    meta = {"kind": "image", "num_classes": 2, "in_shape": [1, 2, 2]}
    return PreparedData(Path("indexed.npz"), meta, arrays)


def _decode(batches) -> tuple[list[int], set[int]]:
    """(example indices, split marks) of every image the batches hold."""
    indices, marks = [], set()
    for x, _ in batches:
        px = (x * 255).round().long()
        indices += (px[:, 0, 0, 0] * 256 + px[:, 0, 0, 1]).tolist()
        marks |= set(px[:, 0, 1, 0].tolist())
    return indices, marks


def test_the_validation_split_is_held_out_of_training_and_never_touches_the_test_set():
    data = _indexed_data()
    feed = make_feed(data, TrainConfig(batch_size=32, seed=3, val_size=50))
    val, val_marks = _decode(feed.val())
    assert len(val) == len(set(val)) == 50 and val_marks == {0}
    for epoch in (0, 1):
        seen, marks = _decode(feed.train(epoch))
        assert len(seen) == len(set(seen)) == N_TRAIN - 50 and marks == {0}
        assert not set(seen) & set(val)
        assert set(seen) | set(val) == set(range(N_TRAIN))
    test, test_marks = _decode(feed.test(None))
    assert sorted(test) == list(range(N_TEST)) and test_marks == {TEST_MARK}
    # train_limit takes its examples from what is left after the hold-out.
    limited = make_feed(data, TrainConfig(batch_size=32, seed=3, val_size=50, train_limit=100))
    seen, _ = _decode(limited.train(0))
    assert len(set(seen)) == 100 and not set(seen) & set(val)
    assert _decode(limited.val())[0] == val


def test_the_split_depends_only_on_the_seed():
    data = _indexed_data()
    split = {s: _decode(make_feed(data, TrainConfig(seed=s, val_size=50)).val())[0] for s in (3, 4)}
    assert split[3] == _decode(make_feed(data, TrainConfig(seed=3, val_size=50, batch_size=7)).val())[0]
    assert split[3] != split[4]


@pytest.mark.parametrize("cfg, message", [
    ({"val_size": N_TRAIN}, "val_size must be between 1 and 299"),
    ({"val_size": 100, "train_limit": 201}, "only 200 after holding out val_size=100"),
])
def test_impossible_splits_are_one_line_errors(cfg, message):
    with pytest.raises(SnnRobustError, match=message) as err:
        make_feed(_indexed_data(), TrainConfig(**cfg))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("cfg, message", [
    ({"select": "best_val"}, "select best_val needs a validation split: set val_size"),
    ({"select": "best"}, "unknown model selection 'best'"),
    ({"val_size": 0}, "val_size must be an integer >= 1"),
])
def test_bad_selection_options_are_one_line_errors(cfg, message):
    with pytest.raises(SnnRobustError, match=message) as err:
        TrainConfig(**cfg)
    assert "\n" not in str(err.value)


def test_graph_data_takes_no_validation_size():
    graph = types.SimpleNamespace(kind="graph", path="karate.npz")
    with pytest.raises(SnnRobustError, match="val_size does not apply to graph data"):
        make_feed(graph, TrainConfig(val_size=5))


# -- selection -------------------------------------------------------------------------------------------
class WreckLastEpoch(Method):
    """Cross-entropy, except that the last epoch's steps zero every weight: its model can only be worse."""

    name = "wreck_last_epoch"

    def __init__(self, epochs: int):
        self.epochs, self.wreck = epochs, False

    def on_epoch_start(self, epoch, model, optimizer):
        self.wreck = epoch == self.epochs - 1

    def loss(self, model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    @torch.no_grad()
    def after_step(self, model, optimizer):
        if self.wreck:
            for p in model.parameters():
                p.zero_()


EPOCHS = 4


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 16), nn.ReLU(), nn.Linear(16, 10))


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": EPOCHS, "batch_size": 64, "lr": 0.02, "seed": 0, "train_limit": 256,
                          "eval_limit": 128, "val_size": 200, **kw})


def _snapshots(model, store):
    return lambda epoch: store.__setitem__(epoch, {k: v.clone() for k, v in model.state_dict().items()})


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_best_val_leaves_the_best_epochs_model(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    last_model, states = _mlp(), {}
    last = train(last_model, WreckLastEpoch(EPOCHS), data, _cfg(select="last"), tmp_path / "last.pt",
                 progress=False, on_epoch_end=_snapshots(last_model, states))
    assert last.selected_epoch == EPOCHS
    model = _mlp()
    best = train(model, WreckLastEpoch(EPOCHS), data, _cfg(select="best_val"), tmp_path / "best.pt", progress=False)
    assert best.metrics == last.metrics, "selection must not change training"
    assert list(best.metrics[0])[:len(METRIC_COLUMNS) + 2] == [*METRIC_COLUMNS, "val_loss", "val_acc"]
    val_acc = [row["val_acc"] for row in best.metrics]
    assert best.selected_epoch == 1 + val_acc.index(max(val_acc)) and best.selected_epoch != EPOCHS
    assert _same_state(model.state_dict(), states[best.selected_epoch])
    # The selected model's accuracy on the held-out examples, computed here from the split's indices.
    _, val_index = holdout_split(len(data.train[1]), 200, seed=0)
    x, y = data.train[0][val_index].float() / 255, data.train[1][val_index]
    with torch.no_grad():
        acc = 100.0 * (model.eval()(x).argmax(1) == y).double().mean().item()
    assert acc == pytest.approx(best.metrics[best.selected_epoch - 1]["val_acc"])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["best"]["epoch"] == best.selected_epoch


def test_best_test_selects_by_clean_test_accuracy(digits_npz, tmp_path):
    """The released SR code's reading: the epoch with the best clean test accuracy (no split needed)."""
    data = load_prepared(digits_npz)
    model = _mlp()
    result = train(model, WreckLastEpoch(EPOCHS), data, _cfg(select="best_test", val_size=None), tmp_path / "c.pt",
                   progress=False)
    assert "val_acc" not in result.metrics[0]
    test_acc = [row["test_acc"] for row in result.metrics]
    assert result.selected_epoch == 1 + test_acc.index(max(test_acc)) != EPOCHS


def test_resume_keeps_the_best_state(digits_npz, tmp_path):
    """Killed after the best epoch, resumed: the later (wrecked) epochs cannot win, so the resumed run selects
    the best epoch only if its state came back from the checkpoint."""
    data = load_prepared(digits_npz)
    full_model = _mlp()
    full = train(full_model, WreckLastEpoch(EPOCHS), data, _cfg(select="best_val"), tmp_path / "full.pt",
                 progress=False)

    assert full.selected_epoch < EPOCHS

    with pytest.raises(Crash):
        train(_mlp(), WreckLastEpoch(EPOCHS), data, _cfg(select="best_val"), tmp_path / "r.pt", progress=False,
              on_epoch_end=crash_after(full.selected_epoch))
    model = _mlp(seed=5)
    resumed = train(model, WreckLastEpoch(EPOCHS), data, _cfg(select="best_val"), tmp_path / "r.pt", progress=False)
    assert resumed.resumed_from_epoch == full.selected_epoch and resumed.metrics == full.metrics
    assert resumed.selected_epoch == full.selected_epoch
    assert _same_state(model.state_dict(), full_model.state_dict())
