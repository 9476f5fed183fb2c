"""Shared fixtures: repository paths, a CLI runner, and a small trained SNN on digits (built once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SNNROBUST_SHARED_DATA", REPO.parent / "shared" / "data"))

# A small, fast training spec for the SNN used across tests.
SMALL_SNN_SPEC = {
    "model": {"arch": "snn_vgg_tiny", "options": {"T": 4, "width": 1.0}},
    "method": {"name": "vanilla"},
    "train": {"epochs": 6, "batch_size": 64, "lr": 0.05, "seed": 0},
    "labels": {"dataset": "digits", "model": "snn_vgg_tiny", "method": "vanilla", "seed": 0},
}


def separable_linear(n: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A linear model trained to 100 % on ``n`` linearly separable 3x8x8 images (its input gradient is the model:
    nothing masked), with those images and labels."""
    torch.manual_seed(0)
    w = torch.randn(4, 192)
    x = torch.rand(n, 3, 8, 8)
    y = (x.flatten(1) @ w.T).argmax(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


class Rounded(torch.nn.Module):
    """A model behind input quantisation (``round``): the input gradient is zero everywhere, a masked model."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 4) / 4)


def run_cli(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m snnrobust`` as the workflow does, capturing output."""
    proc = subprocess.run(
        [sys.executable, "-m", "snnrobust", *args],
        capture_output=True, text=True, cwd=cwd or REPO, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snnrobust {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def kill_after_first_checkpoint(args: list[str], checkpoint: Path, env: dict | None = None) -> None:
    """Start a training command and SIGKILL it as soon as its first checkpoint exists (interrupted-run tests)."""
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "2"} if env is None else env  # the thread count run_cli uses
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "digits.npz"
    run_cli("prepare", "--source", "digits", "--spec", json.dumps({"image_size": 32}), "--out", str(out))
    return out


@pytest.fixture(scope="session")
def trained_snn(tmp_path_factory, digits_npz) -> Path:
    """The vanilla tiny SNN trained on digits through the CLI, exactly as the pipeline does."""
    d = tmp_path_factory.mktemp("snn")
    run_cli("train", "--data", str(digits_npz), "--spec", json.dumps(SMALL_SNN_SPEC),
            "--out-model", str(d / "model.pt"), "--out-metrics", str(d / "metrics.csv"),
            "--out-run", str(d / "run.json"), "--checkpoint", str(d / "ckpt" / "last.pt"), "--no-progress")
    return d


@pytest.fixture
def toy_model():
    """A tiny deterministic CNN-free classifier on 3x8x8 inputs (fast attack/analysis unit tests)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)).eval()


class Crash(Exception):
    """Raised by :func:`crash_after` to stop an in-process training run after an epoch's checkpoint."""


def crash_after(stop: int):
    """An ``on_epoch_end`` hook that crashes the run once epoch ``stop`` (1-based) is checkpointed."""

    def hook(epoch: int) -> None:
        if epoch == stop:
            raise Crash

    return hook


@pytest.fixture
def one_thread():
    """In-process torch on one thread (2 shared cores: two threads made training about 5x slower); restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
