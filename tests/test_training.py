"""Training loop: determinism, exact resume after a crash or a SIGKILL, and sensible accuracy."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import Crash, SMALL_SNN_SPEC, crash_after, kill_after_first_checkpoint, run_cli
from snnrobust.data import load_prepared
from snnrobust.errors import SnnRobustError
from snnrobust.methods import make_method
from snnrobust.models import build_model
from snnrobust.seeding import seed_everything
from snnrobust.training import TrainConfig, train

QUICK = {**SMALL_SNN_SPEC, "train": {"epochs": 3, "batch_size": 64, "lr": 0.05, "seed": 0, "train_limit": 384, "eval_limit": 128}}


def _train_cli(data, spec, d: Path, check=True):
    return run_cli("train", "--data", str(data), "--spec", json.dumps(spec), "--out-model", str(d / "model.pt"),
                   "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
                   "--checkpoint", str(d / "ckpt.pt"), "--no-progress", check=check)


def _fresh(data, cfg):
    seed_everything(cfg.seed)
    meta = data.meta
    return build_model("snn_vgg_tiny", meta["num_classes"], tuple(meta["in_shape"]), T=2, mean=meta["mean"], std=meta["std"])


def test_same_seed_gives_identical_metrics_files(digits_npz, tmp_path):
    _train_cli(digits_npz, QUICK, tmp_path / "a")
    _train_cli(digits_npz, QUICK, tmp_path / "b")
    assert (tmp_path / "a/metrics.csv").read_bytes() == (tmp_path / "b/metrics.csv").read_bytes()
    sa = torch.load(tmp_path / "a/model.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_after_crash_matches_uninterrupted_run(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=3, batch_size=64, seed=1, train_limit=256, eval_limit=128, augment=True)
    full = train(_fresh(data, cfg), make_method("vanilla"), data, cfg, tmp_path / "full.pt", progress=False)

    with pytest.raises(Crash):
        train(_fresh(data, cfg), make_method("vanilla"), data, cfg, tmp_path / "crash.pt", progress=False,
              on_epoch_end=crash_after(1))
    seed_everything(123)  # a different global RNG state must not matter after resume
    resumed = train(_fresh(data, cfg), make_method("vanilla"), data, cfg, tmp_path / "crash.pt", progress=False)
    assert resumed.resumed_from_epoch == 1
    assert resumed.metrics == full.metrics


def test_sigkilled_cli_training_resumes_with_identical_metrics(digits_npz, tmp_path):
    spec = {**QUICK, "train": {**QUICK["train"], "epochs": 4}}
    _train_cli(digits_npz, spec, tmp_path / "ref")
    d = tmp_path / "killed"
    d.mkdir()
    args = [sys.executable, "-m", "snnrobust", "train", "--data", str(digits_npz), "--spec", json.dumps(spec),
            "--out-model", str(d / "model.pt"), "--out-metrics", str(d / "metrics.csv"),
            "--out-run", str(d / "run.json"), "--checkpoint", str(d / "ckpt.pt"), "--no-progress"]
    kill_after_first_checkpoint(args, d / "ckpt.pt")
    assert not (d / "metrics.csv").exists(), "the run finished before it could be killed"
    _train_cli(digits_npz, spec, d)
    run = json.loads((d / "run.json").read_text())
    assert run["resumed_from_epoch"] >= 1
    assert (d / "metrics.csv").read_bytes() == (tmp_path / "ref/metrics.csv").read_bytes()


def test_truncated_checkpoint_is_a_one_line_error(digits_npz, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    _train_cli(digits_npz, {**QUICK, "train": {**QUICK["train"], "epochs": 1}}, tmp_path)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    for f in ("model.pt", "metrics.csv", "run.json"):
        (tmp_path / f).unlink()
    proc = _train_cli(digits_npz, QUICK, tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "corrupt or truncated checkpoint" in proc.stderr
    assert not any((tmp_path / f).exists() for f in ("model.pt", "metrics.csv", "run.json"))


def test_vanilla_snn_on_digits_learns(trained_snn):
    metrics = pd.read_csv(trained_snn / "metrics.csv")
    assert list(metrics.epoch) == list(range(1, SMALL_SNN_SPEC["train"]["epochs"] + 1))
    assert metrics.test_acc.iloc[-1] >= 85.0, metrics.to_string()


def test_train_config_rejects_unknown_options():
    from snnrobust.training import train_config_from

    with pytest.raises(SnnRobustError, match="unknown option 'epochz' for the training recipe"):
        train_config_from({"epochz": 3})


@pytest.mark.parametrize("bad, message", [
    ({"lr": "0.1"}, "'lr' .* must be a number"),
    ({"seed": -1}, "'seed' .* must be >= 0"),
    ({"epochs": 0}, "'epochs' .* must be >= 1"),
    ({"lr": float("nan")}, "'lr' .* finite"),
    ({"optimizer": "adamw"}, "'optimizer' .* one of"),
])
def test_train_config_checks_values(bad, message):
    from snnrobust.training import train_config_from

    with pytest.raises(SnnRobustError, match=message):
        train_config_from(bad)


def test_checkpoint_of_another_spec_is_not_resumed(digits_npz, tmp_path):
    """Changing the epochs (or any option) must not resume a stale checkpoint of the old spec."""
    short = {**QUICK, "train": {**QUICK["train"], "epochs": 1}}
    _train_cli(digits_npz, short, tmp_path / "run")  # leaves a 1-epoch checkpoint behind
    longer = {**QUICK, "train": {**QUICK["train"], "epochs": 2}}
    _train_cli(digits_npz, longer, tmp_path / "run")
    _train_cli(digits_npz, longer, tmp_path / "fresh")
    assert json.loads((tmp_path / "run/run.json").read_text())["resumed_from_epoch"] == 0
    assert (tmp_path / "run/metrics.csv").read_bytes() == (tmp_path / "fresh/metrics.csv").read_bytes()
