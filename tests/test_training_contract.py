"""The training contract: method hooks (parameter groups, epoch-start schedule, after-step projection,
metric columns, checkpointed state), exact resume of a stateful method after SIGKILL, the robust
evaluation every k epochs, the device record, and model-load checks against the asking spec.

``ShrinkingMaxNorm`` below is a test-only method; a killed CLI subprocess registers it by importing
this module (``register()``), so the library's registry never holds it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import Crash, REPO, SMALL_SNN_SPEC, crash_after, kill_after_first_checkpoint
from snnrobust.data import load_prepared
from snnrobust.errors import SnnRobustError
from snnrobust.methods import METHODS, Method
from snnrobust.models import build_model
from snnrobust.options import Range
from snnrobust.seeding import seed_everything
from snnrobust.training import METRIC_COLUMNS, TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

TEST_METHOD = "test_shrinking_max_norm"


class ShrinkingMaxNorm(Method):
    """CE with label smoothing that halves every epoch (a schedule), and after every step each conv
    filter renormed to a max norm that shrinks with the total number of steps taken (state)."""

    name = TEST_METHOD

    def __init__(self, max_norm: Annotated[float, Range(gt=0)] = 0.5,
                 smoothing: Annotated[float, Range(ge=0, lt=1)] = 0.2):
        self.max_norm, self.smoothing = float(max_norm), float(smoothing)
        self.steps, self.clipped, self.epoch_smoothing = 0, 0, self.smoothing
        self.calls: list[str] = []

    def param_groups(self, model):
        self.calls.append("param_groups")
        return None

    def on_epoch_start(self, epoch, model, optimizer):
        self.calls.append(f"epoch_start {epoch}")
        self.epoch_smoothing = self.smoothing * 0.5 ** epoch
        self.clipped = 0

    def loss(self, model, x, y):
        self.calls.append("loss")
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=self.epoch_smoothing), logits

    @torch.no_grad()
    def after_step(self, model, optimizer):
        self.calls.append("after_step")
        self.steps += 1
        bound = self.max_norm * (1.0 + 1.0 / self.steps)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                self.clipped += int((m.weight.flatten(1).norm(dim=1) > bound).sum())
                m.weight.copy_(torch.renorm(m.weight, 2, 0, bound))

    def epoch_metrics(self):
        self.calls.append("epoch_metrics")
        return {"steps_total": self.steps, "clipped": self.clipped}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


def register() -> None:
    """Register the test method (for the CLI subprocesses that import this module)."""
    METHODS.register(TEST_METHOD)(ShrinkingMaxNorm)


QUICK = {**SMALL_SNN_SPEC, "model": {"arch": "snn_vgg_tiny", "options": {"T": 2, "width": 0.5}},
         "train": {"epochs": 3, "batch_size": 64, "lr": 0.05, "seed": 0, "train_limit": 256, "eval_limit": 64}}
CONTRACT_SPEC = {**QUICK, "method": {"name": TEST_METHOD, "options": {"max_norm": 0.5}}}
_LAUNCH = ("import sys; sys.path.insert(0, 'tests'); import test_training_contract as t; t.register(); "
           "from snnrobust.cli import main; raise SystemExit(main(sys.argv[1:]))")


def _train_args(data, spec, d: Path) -> list[str]:
    return ["train", "--data", str(data), "--spec", json.dumps(spec), "--out-model", str(d / "model.pt"),
            "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
            "--checkpoint", str(d / "ckpt.pt"), "--no-progress"]


def _launch(args: list[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCH, *args]


# One thread: these models are tiny, and on a busy 2-core machine OpenMP's spinning threads made them
# several times slower.
_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI as the workflow calls it, with the test method registered."""
    proc = subprocess.run(_launch(list(args)), cwd=REPO, capture_output=True, text=True, env=_ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"snnrobust {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc




def _fresh_model(data, seed=0):
    seed_everything(seed)
    meta = data.meta
    return build_model("snn_vgg_tiny", meta["num_classes"], tuple(meta["in_shape"]), T=2, width=0.5,
                       mean=meta["mean"], std=meta["std"])


def test_hooks_are_called_in_order_and_their_state_is_checkpointed(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=2, batch_size=64, seed=0, train_limit=128, eval_limit=64)
    method = ShrinkingMaxNorm()
    result = train(_fresh_model(data), method, data, cfg, tmp_path / "ckpt.pt", progress=False)
    per_epoch = ["loss", "after_step"] * 2  # 128 examples in batches of 64
    assert method.calls == ["param_groups",
                            "epoch_start 0", *per_epoch, "epoch_metrics",
                            "epoch_start 1", *per_epoch, "epoch_metrics"]
    assert result.columns == [*METRIC_COLUMNS, "steps_total", "clipped"]
    assert [row["steps_total"] for row in result.metrics] == [2.0, 4.0]
    assert result.metrics[0]["clipped"] > 0, "the projection must bind for this test to mean anything"
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["method"] == {"steps": 4}


def test_resume_restores_the_method_state(digits_npz, tmp_path):
    """A crash after epoch 1 then resume equals the uninterrupted run, and only because the method's
    state is restored: a method that drops its state on resume ends with different numbers."""
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=2, batch_size=64, seed=0, train_limit=128, eval_limit=64)
    full = train(_fresh_model(data), ShrinkingMaxNorm(), data, cfg, tmp_path / "full.pt", progress=False)

    class Forgetful(ShrinkingMaxNorm):
        def load_state_dict(self, state):
            pass

    for name, method_cls, same in (("restored", ShrinkingMaxNorm, True), ("forgetful", Forgetful, False)):
        ckpt = tmp_path / f"{name}.pt"
        with pytest.raises(Crash):
            train(_fresh_model(data), method_cls(), data, cfg, ckpt, progress=False, on_epoch_end=crash_after(1))
        resumed = train(_fresh_model(data, seed=7), method_cls(), data, cfg, ckpt, progress=False)
        assert resumed.resumed_from_epoch == 1
        assert (resumed.metrics == full.metrics) is same, name


def test_sigkilled_run_with_schedule_and_after_step_resumes_byte_identical(digits_npz, tmp_path):
    spec = {**CONTRACT_SPEC, "train": {**CONTRACT_SPEC["train"], "epochs": 4}}
    ref = tmp_path / "ref"
    run_cli(*_train_args(digits_npz, spec, ref))
    d = tmp_path / "killed"
    d.mkdir()
    kill_after_first_checkpoint(_launch(_train_args(digits_npz, spec, d)), d / "ckpt.pt", env=_ENV)
    assert not (d / "metrics.csv").exists(), "the run finished before it could be killed"
    run_cli(*_train_args(digits_npz, spec, d))
    assert json.loads((d / "run.json").read_text())["resumed_from_epoch"] >= 1
    assert (d / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()
    metrics = pd.read_csv(d / "metrics.csv")
    assert list(metrics.columns[-2:]) == ["steps_total", "clipped"]
    assert metrics.steps_total.is_monotonic_increasing and metrics.clipped.gt(0).any()


class _Groups(Method):
    """Vanilla CE with two parameter groups: the first conv frozen by lr_scale 0, the rest with its own
    weight decay."""

    name = "groups"

    def __init__(self, weight_decay: float):
        self.weight_decay = weight_decay

    def loss(self, model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    def param_groups(self, model):
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        frozen = {id(p) for p in first.parameters()}
        return [{"params": list(first.parameters()), "lr_scale": 0.0, "weight_decay": 0.0},
                {"params": [p for p in model.parameters() if id(p) not in frozen], "weight_decay": self.weight_decay}]


def test_parameter_groups_are_honoured(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=1, batch_size=64, seed=0, train_limit=128, eval_limit=64)
    trained = {}
    for wd in (0.0, 0.5):
        model = _fresh_model(data)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        train(model, _Groups(wd), data, cfg, tmp_path / f"wd{wd}.pt", progress=False)
        first = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
        for key, value in model.state_dict().items():
            if key.startswith(first + "."):
                assert torch.equal(value, start[key]), f"{key} moved although its group has lr_scale 0"
        trained[wd] = model.state_dict()
    moved = [k for k in trained[0.0] if not k.startswith(first + ".") and k.endswith("weight")]
    assert any(not torch.equal(trained[0.0][k], trained[0.5][k]) for k in moved), "weight decay of group 2 ignored"


def test_a_group_with_a_foreign_tensor_is_an_error(digits_npz, tmp_path):
    class Foreign(_Groups):
        def param_groups(self, model):
            return [{"params": [nn.Parameter(torch.zeros(1))]}]

    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=1, batch_size=64, seed=0, train_limit=64, eval_limit=64)
    with pytest.raises(SnnRobustError, match="not a parameter of the model"):
        train(_fresh_model(data), Foreign(0.0), data, cfg, tmp_path / "c.pt", progress=False)


def test_changing_metric_columns_is_an_error(digits_npz, tmp_path):
    class Unstable(ShrinkingMaxNorm):
        def epoch_metrics(self):
            return {f"col{self.steps}": 1.0}

    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=2, batch_size=64, seed=0, train_limit=64, eval_limit=64)
    with pytest.raises(SnnRobustError, match="metric columns changed at epoch 2"):
        train(_fresh_model(data), Unstable(), data, cfg, tmp_path / "c.pt", progress=False)


def test_robust_eval_every_k_epochs_matches_the_attack_verb(digits_npz, tmp_path):
    eps = 8 / 255
    spec = {**QUICK, "train": {**QUICK["train"], "epochs": 2}, "device": "cpu",
            "robust_eval": {"every": 2, "attack": {"name": "fgsm"}, "eps": eps, "n_eval": 64}}
    run_cli(*_train_args(digits_npz, spec, tmp_path))
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns[-len(METRIC_COLUMNS) - 1:]) == [*METRIC_COLUMNS, "robust_acc"]
    assert metrics.robust_acc.isna().tolist() == [True, False]
    # The robust eval of the last epoch = the attack verb on the saved model, computed independently.
    attack = {"attack": {"name": "fgsm"}, "eps": eps, "n_eval": 64, "seed": 0}
    run_cli("attack", "--model", str(tmp_path / "model.pt"), "--data", str(digits_npz),
            "--spec", json.dumps(attack), "--out", str(tmp_path / "attack.json"), "--no-progress")
    row = json.loads((tmp_path / "attack.json").read_text())["rows"][0]
    assert math.isclose(metrics.robust_acc.iloc[-1], row["robust_acc"], abs_tol=1e-4)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["device"] == "cpu" and run["provenance"]["device"] == "cpu"
    assert run["final"]["robust_acc"] == pytest.approx(row["robust_acc"], abs=1e-4)


def test_nan_robust_acc_is_json_null_in_run_json(digits_npz, tmp_path):
    spec = {**QUICK, "train": {**QUICK["train"], "epochs": 1, "train_limit": 64},
            "robust_eval": {"every": 2, "attack": {"name": "fgsm"}, "eps": 0.03}}
    run_cli(*_train_args(digits_npz, spec, tmp_path))
    assert json.loads((tmp_path / "run.json").read_text())["final"]["robust_acc"] is None


@pytest.mark.parametrize("robust_eval, message", [
    ({"every": 0, "attack": {"name": "fgsm"}, "eps": 0.03}, "every must be an integer >= 1"),
    ({"every": 1, "attack": {"name": "fgsm"}, "eps": 2}, "eps must be in [0, 1]"),
    ({"every": 1, "attack": {"name": "nope"}, "eps": 0.03}, "unknown attack 'nope'"),
    ({"every": 1, "attack": {"name": "fgsm"}}, "missing eps"),
    ({"every": 1, "attack": {"name": "fgsm"}, "eps": 0.03, "steps": 3}, "unknown robust_eval key(s): steps"),
])
def test_bad_robust_eval_fails_before_training(digits_npz, tmp_path, robust_eval, message):
    proc = run_cli(*_train_args(digits_npz, {**QUICK, "robust_eval": robust_eval}, tmp_path), check=False)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "ckpt.pt").exists()


def test_cuda_without_a_gpu_is_a_one_line_error(digits_npz, tmp_path):
    proc = run_cli(*_train_args(digits_npz, {**QUICK, "device": "cuda"}, tmp_path), check=False)
    if torch.cuda.is_available():
        assert proc.returncode == 0 and json.loads((tmp_path / "run.json").read_text())["device"] == "cuda"
    else:
        assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr and not (tmp_path / "metrics.csv").exists()


def test_load_trained_checks_the_asking_spec(trained_snn, digits_npz):
    from snnrobust.commands.models_io import load_trained

    meta = load_prepared(digits_npz).meta
    arch, options = SMALL_SNN_SPEC["model"]["arch"], SMALL_SNN_SPEC["model"]["options"]
    model, spec = load_trained(str(trained_snn / "model.pt"), meta, expect={"arch": arch, "options": options})
    assert model.T == options["T"] and spec["model"]["arch"] == arch
    # Defaults spelled out and data-derived mean/std do not count as differences.
    load_trained(str(trained_snn / "model.pt"), expect={
        "arch": arch, "options": {**options, "surrogate": "triangle", "mean": [0.0], "std": [1.0]}})
    for expect, message in (
        ({"arch": arch, "options": {**options, "T": 8}}, "trained with T=4 but the spec asks for T=8"),
        ({"arch": arch, "options": {**options, "gamma": 2.0}}, "gamma"),
        ({"arch": "snn_wrn16", "options": options}, "is a snn_vgg_tiny but the spec asks for snn_wrn16"),
    ):
        with pytest.raises(SnnRobustError, match=message) as err:
            load_trained(str(trained_snn / "model.pt"), expect=expect)
        assert "\n" not in str(err.value)
    with pytest.raises(SnnRobustError, match="num_classes"):
        load_trained(str(trained_snn / "model.pt"), {**meta, "num_classes": 3})
