"""Graph models train through the one loop and the CLI: the GCN on KarateClub, full-batch on its masks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import REPO
from snnrobust.commands.models_io import load_trained
from snnrobust.data import load_prepared
from snnrobust.data.loader import MaskedNodes, make_feed
from snnrobust.errors import SnnRobustError
from snnrobust.training import METRIC_COLUMNS, TrainConfig

# The spec the default DAG uses for the GCN (Kipf & Welling's optimiser settings).
GCN_SPEC = {
    "model": {"arch": "gcn", "options": {"hidden": 16, "dropout": 0.5}},
    "method": {"name": "vanilla"},
    "train": {"epochs": 200, "optimizer": "adam", "lr": 0.01, "weight_decay": 5e-4, "schedule": "constant",
              "seed": 0},
    "labels": {"dataset": "karate", "model": "gcn", "method": "vanilla", "seed": 0},
}


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m snnrobust`` on one thread: a 34-node graph gains nothing from two, and on a busy
    2-core machine OpenMP's spinning threads made 200 tiny epochs ~30× slower."""
    proc = subprocess.run([sys.executable, "-m", "snnrobust", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"snnrobust {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def karate_npz(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "karate.npz"
    run_cli("prepare", "--source", "karate", "--spec", "{}", "--out", str(out))
    return out


def _train_args(data, spec, d):
    return ["train", "--data", str(data), "--spec", json.dumps(spec), "--out-model", str(d / "model.pt"),
            "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
            "--checkpoint", str(d / "ckpt.pt"), "--no-progress"]


@pytest.fixture(scope="module")
def trained_gcn(karate_npz, tmp_path_factory):
    d = tmp_path_factory.mktemp("gcn")
    run_cli(*_train_args(karate_npz, GCN_SPEC, d))
    return d


def test_gcn_trains_on_karate_through_the_cli(trained_gcn):
    metrics = pd.read_csv(trained_gcn / "metrics.csv")
    assert list(metrics.columns) == [*GCN_SPEC["labels"], *METRIC_COLUMNS]
    assert list(metrics.epoch) == list(range(1, 201))
    assert metrics.train_acc.iloc[-1] == 100.0  # four labelled nodes, one per class
    assert metrics.test_acc.iloc[-1] >= 70.0, metrics.tail().to_string()
    assert metrics.test_loss.iloc[-1] < metrics.test_loss.iloc[0]
    run = json.loads((trained_gcn / "run.json").read_text())
    assert run["final"]["test_acc"] == pytest.approx(metrics.test_acc.iloc[-1])


def test_saved_gcn_rebuilds_and_scores_what_training_recorded(trained_gcn, karate_npz):
    data = load_prepared(karate_npz)
    model, spec = load_trained(str(trained_gcn / "model.pt"), data.meta, expect=GCN_SPEC["model"])
    assert spec == GCN_SPEC
    g = data.graph
    with torch.no_grad():
        pred = model(g.x, g.edge_index).argmax(1)
    accuracy = 100.0 * (pred[g.test_mask] == g.y[g.test_mask]).float().mean().item()
    assert accuracy == pytest.approx(pd.read_csv(trained_gcn / "metrics.csv").test_acc.iloc[-1])
    with pytest.raises(SnnRobustError, match="hidden=16 but the spec asks for hidden=32"):
        load_trained(str(trained_gcn / "model.pt"), expect={"arch": "gcn", "options": {"hidden": 32}})


def test_graph_training_is_deterministic_and_resumes(karate_npz, trained_gcn, tmp_path):
    """A 20-epoch run repeats the first 20 epochs of the 200-epoch run (constant lr, same seed) to the
    byte, and running it again resumes at epoch 20 and rewrites the same bytes."""
    short = {**GCN_SPEC, "train": {**GCN_SPEC["train"], "epochs": 20}}
    run_cli(*_train_args(karate_npz, short, tmp_path))
    first = (tmp_path / "metrics.csv").read_bytes()
    full = (trained_gcn / "metrics.csv").read_bytes().splitlines(keepends=True)
    assert first == b"".join(full[:21])
    run_cli(*_train_args(karate_npz, short, tmp_path))
    assert json.loads((tmp_path / "run.json").read_text())["resumed_from_epoch"] == 20
    assert (tmp_path / "metrics.csv").read_bytes() == first


def test_masked_nodes_view_scores_only_its_nodes():
    torch.manual_seed(0)
    from snnrobust.models import build_model

    model = build_model("gcn", 3, (5,)).eval()
    x, edge_index = torch.rand(6, 5), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    mask = torch.tensor([True, False, False, True, False, True])
    torch.testing.assert_close(MaskedNodes(model, edge_index, mask)(x), model(x, edge_index)[mask])


def test_image_only_train_options_are_errors_on_graphs(karate_npz, tmp_path):
    spec = {**GCN_SPEC, "train": {**GCN_SPEC["train"], "epochs": 1, "augment": True}}
    proc = run_cli(*_train_args(karate_npz, spec, tmp_path), check=False)
    assert proc.returncode == 2 and "train option augment does not apply to graph data" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (tmp_path / "ckpt.pt").exists()
    data = load_prepared(karate_npz)
    for option in ("train_limit", "eval_limit"):
        with pytest.raises(SnnRobustError, match=f"train option {option}"):
            make_feed(data, TrainConfig(**{option: 10}))
