"""The graph attack: the GCN's dense forward, the budget projection, the PGD topology attack (Xu et al. 2019)
on KarateClub, and the attack verb's graph path and its one-line errors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO
from snnrobust.attacks import AttackView, check_attack_options, evaluate_attack, make_attack
from snnrobust.attacks.topology import PerturbedGraph, flip, project_budget, undirected_adjacency
from snnrobust.commands.attack import attack as attack_command
from snnrobust.config import load_yaml, validate_config
from snnrobust.data.graphdata import import_pyg
from snnrobust.data.loader import MaskedNodes
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model
from snnrobust.models.gcn import dense_adjacency

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
GCN_SPEC = {
    "model": {"arch": "gcn", "options": {"hidden": 16, "dropout": 0.5}},
    "method": {"name": "vanilla"},
    "train": {"epochs": 100, "optimizer": "adam", "lr": 0.01, "weight_decay": 5e-4, "schedule": "constant", "seed": 0},
    "labels": {"dataset": "karate", "model": "gcn", "method": "vanilla", "seed": 0},
}


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m snnrobust`` on one thread (a 34-node graph gains nothing from two on a busy machine)."""
    proc = subprocess.run([sys.executable, "-m", "snnrobust", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"snnrobust {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module", autouse=True)
def one_thread_here():
    """In-process torch on one thread for this module (on 2 shared cores, two threads only slow tiny graphs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def karate():
    return import_pyg("torch_geometric.datasets").KarateClub()[0]


@pytest.fixture(scope="module")
def trained(karate):
    """A tiny GCN trained in-process on KarateClub's four labelled nodes (eval mode), scored on the rest."""
    torch.manual_seed(0)
    model = build_model("gcn", 4, (karate.num_features,))
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(model(karate.x, karate.edge_index)[karate.train_mask], karate.y[karate.train_mask]).backward()
        opt.step()
    return model.eval()


def _random_graph(n: int, p: float, seed: int, symmetric: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    adj = (torch.rand(n, n, generator=g) < p).float().fill_diagonal_(0)
    if symmetric:
        adj = torch.triu(adj, 1)
        adj = adj + adj.T
    return adj.nonzero().T.flip(0)  # edge_index (source, target) of adj[target, source]


# -- the dense forward ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("graph", ["karate", "random_undirected", "random_directed"])
def test_dense_forward_equals_gcnconv(karate, graph):
    torch.manual_seed(1)
    if graph == "karate":
        x, edge_index = karate.x, karate.edge_index
    else:
        x = torch.randn(12, 5)
        edge_index = _random_graph(12, 0.3, seed=2, symmetric=graph == "random_undirected")
    model = build_model("gcn", 3, (x.shape[1],)).eval()
    adj = dense_adjacency(edge_index, x.shape[0])
    torch.testing.assert_close(model.forward_dense(x, adj), model(x, edge_index), atol=1e-5, rtol=1e-5)


def test_dense_forward_is_differentiable_in_the_adjacency(karate, trained):
    adj = dense_adjacency(karate.edge_index, karate.num_nodes).requires_grad_(True)
    F.cross_entropy(trained.forward_dense(karate.x, adj), karate.y).backward()
    assert adj.grad is not None and adj.grad.abs().sum() > 0


# -- the projection -------------------------------------------------------------------------------------------
def _reference_projection(a: np.ndarray, budget: float) -> np.ndarray:
    """Exact projection onto {0 <= s <= 1, sum s <= budget} by another route: g(mu) = sum clip(a - mu, 0, 1) is
    piecewise linear between the breakpoints a_i and a_i - 1; find the piece where g crosses the budget and
    solve it linearly (no bisection)."""
    g = lambda mu: np.clip(a - mu, 0, 1).sum()
    if g(0.0) <= budget:
        return np.clip(a, 0, 1)
    points = np.unique(np.concatenate([a, a - 1, [0.0]]))
    points = points[points >= 0]
    values = np.array([g(p) for p in points])
    k = np.flatnonzero(values <= budget)[0]  # first breakpoint at or under the budget (g is nonincreasing)
    lo, hi = points[k - 1], points[k]
    mu = lo + (values[k - 1] - budget) * (hi - lo) / (values[k - 1] - values[k])
    return np.clip(a - mu, 0, 1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [0.0, 0.5, 2.0, 3.7, 50.0])
def test_projection_is_the_euclidean_projection(seed, budget):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.4, 1.0, size=9)
    s = project_budget(torch.tensor(a, dtype=torch.float64), budget).numpy()
    assert (s >= 0).all() and (s <= 1).all() and s.sum() <= budget + 1e-12
    np.testing.assert_allclose(s, _reference_projection(a, budget), atol=1e-5)
    # the variational inequality that characterises a projection: (a - s)·(p - s) <= 0 for every feasible p
    for _ in range(200):
        p = rng.uniform(0, 1, size=9)
        p *= min(1.0, budget / p.sum())
        assert (a - s) @ (p - s) <= 1e-5


# -- the attack -----------------------------------------------------------------------------------------------
def test_flip_keeps_the_adjacency_simple_and_undirected(karate):
    adj = undirected_adjacency(karate.edge_index, karate.num_nodes)
    iu = torch.triu_indices(34, 34, offset=1)
    u = torch.bernoulli(torch.full((iu.shape[1],), 0.3), generator=torch.Generator().manual_seed(0))
    adv = flip(adj, iu, u)
    assert torch.equal(adv, adv.T) and set(adv.unique().tolist()) <= {0.0, 1.0} and not adv.diagonal().any()
    assert int((adv != adj).sum()) == 2 * int(u.sum())


def _attack(model, karate, eps, **opts):
    mask = ~karate.train_mask
    view = MaskedNodes(model, karate.edge_index, mask)
    atk = make_attack("topology", eps=eps, **{"steps": 40, "samples": 10, **opts})
    summary = evaluate_attack(view, atk, [(karate.x, karate.y[mask])], seed=0, progress=False)
    return atk, view, summary


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_attack_keeps_its_budget_and_a_simple_undirected_graph(trained, karate, eps):
    atk, view, summary = _attack(trained, karate, eps, steps=20)
    mask = ~karate.train_mask
    adj = undirected_adjacency(karate.edge_index, 34)
    z = atk(view, karate.x, karate.y[mask], generator=torch.Generator().manual_seed(3))
    assert isinstance(z, PerturbedGraph)
    adv = z.adj
    assert torch.equal(adv, adv.T) and set(adv.unique().tolist()) <= {0.0, 1.0} and not adv.diagonal().any()
    flips = int((adv != adj).sum()) // 2
    budget = int(eps * 78)
    assert flips <= budget and atk.columns()["budget_edges"] == budget and atk.columns()["flips"] == flips
    assert summary["robust_acc"] <= summary["clean_acc"]
    steps = 0 if budget == 0 else 20  # no budget: nothing to optimise, the clean graph comes back
    assert summary["backward_passes"] == steps and steps + 2 <= summary["forward_passes"] <= steps + 12


def test_sampling_falls_back_to_the_largest_flips_when_no_draw_fits(trained, karate):
    """All-ones s: every Bernoulli draw flips every pair, none fits a budget of 2, so the 2 largest entries of s."""
    atk, view = make_attack("topology", eps=0.05), MaskedNodes(trained, karate.edge_index, ~karate.train_mask)
    z = PerturbedGraph(karate.x, undirected_adjacency(karate.edge_index, 34))
    iu = torch.triu_indices(34, 34, offset=1)
    s = torch.ones(iu.shape[1])
    s[:5] = 0.0
    scores = AttackView(lambda p: atk.predict(view, p), torch.tensor(0.0), torch.tensor(1.0))
    u = atk._sample(scores, z, iu, s, karate.y[~karate.train_mask], 2, torch.Generator().manual_seed(0))
    assert int(u.sum()) == 2 and set(u.unique().tolist()) == {0.0, 1.0} and u[:5].sum() == 0


def test_accuracy_falls_with_the_budget(trained, karate):
    """Karate's 30 unlabelled nodes: accuracy under attack never above clean, non-increasing in the budget."""
    accs = []
    for eps in (0.0, 0.1, 0.2, 0.4):
        _, _, summary = _attack(trained, karate, eps)
        accs.append(summary["robust_acc"])
        clean = summary["clean_acc"]
    assert accs[0] == clean >= 60.0
    assert all(a >= b for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < clean, accs


def test_options_and_budgets_are_checked(karate):
    for options in ({"steps": 0}, {"samples": 0}, {"lr": -1.0}, {"seed": -1}, {"space": "pixel"}, {"gradient": 3}):
        with pytest.raises(SnnRobustError) as exc:
            check_attack_options("topology", options)
        assert "\n" not in str(exc.value)
    with pytest.raises(SnnRobustError, match="eps.* must be >= 0"):
        make_attack("topology", eps=-0.05)
    adj = undirected_adjacency(karate.edge_index, 34)
    assert make_attack("topology", eps=561 / 78).budget_for(adj) == 561  # every node pair of 34 nodes
    with pytest.raises(SnnRobustError, match="562 edge flips, more than the 561 node pairs of the 34-node graph"):
        make_attack("topology", eps=562 / 78).budget_for(adj)
    with pytest.raises(SnnRobustError, match="undirected"):
        undirected_adjacency(torch.tensor([[0, 1], [1, 2]]), 3)
    with pytest.raises(SnnRobustError, match="perturbs a graph's edges"):
        make_attack("topology", eps=0.1)(torch.nn.Linear(3, 2), torch.rand(4, 3), torch.zeros(4, dtype=torch.long))


def _config_with_topology(budgets: list, options: dict | None = None) -> dict:
    cfg = load_yaml(REPO / "config/default.yaml")
    cfg["attacks"]["topology"] = {"name": "topology", "options": {"steps": 200, "samples": 20, **(options or {})}}
    study = cfg["studies"]["spiking_pgd"]
    study["sweeps"].append({"dataset": ["karate"], "model": ["gcn"], "method": ["vanilla"], "seed": [0],
                            "attack": ["topology"], "budget": budgets, "n_eval": 20})
    return cfg


def test_config_check_plans_a_budget_sweep_and_refuses_bad_budgets():
    plan = validate_config(_config_with_topology([0.0, 0.05, 0.1]), SCHEMA)
    jobs = {key[-1]: job["eps"] for key, job in plan.attacks.items() if key[1] == "topology"}
    assert {k: jobs.get(k) for k in ("0", "0.05", "0.1")} == {"0": 0.0, "0.05": 0.05, "0.1": 0.1}
    for budgets, options, match in (([-0.05], None, "budget"), ([0.05], {"samples": 0}, "samples"),
                                    ([0.05], {"steps": 1.5}, "steps"),
                                    ([8.0], None, "'karate': topology budget eps=8 of 78 edges is 624 edge flips, "
                                                  "more than the 561 node pairs")):
        with pytest.raises(SnnRobustError, match=match) as exc:
            validate_config(_config_with_topology(budgets, options), SCHEMA)
        assert "\n" not in str(exc.value)


# -- the attack verb ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def karate_run(tmp_path_factory):
    """A prepared karate file and a GCN trained on it through the CLI, as the pipeline makes them."""
    d = tmp_path_factory.mktemp("topology")
    run_cli("prepare", "--source", "karate", "--spec", "{}", "--out", str(d / "karate.npz"))
    run_cli("train", "--data", str(d / "karate.npz"), "--spec", json.dumps(GCN_SPEC), "--out-model",
            str(d / "model.pt"), "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
            "--checkpoint", str(d / "ckpt.pt"), "--no-progress")
    return d


def _spec(eps, name="topology"):
    options = {"steps": 30, "samples": 10} if name == "topology" else {}
    return {"attack": {"name": name, "options": options}, "eps": eps, "n_eval": 20, "seed": 0,
            "labels": {**GCN_SPEC["labels"], "attack": name, "threat": "white-box"}, "device": "cpu",
            "model": GCN_SPEC["model"]}


def test_attack_verb_on_a_prepared_graph(karate_run):
    out = karate_run / "topology_eps0.1.json"
    run_cli("attack", "--model", str(karate_run / "model.pt"), "--data", str(karate_run / "karate.npz"),
            "--spec", json.dumps(_spec(0.1)), "--out", str(out), "--no-progress")
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert result["kind"] == "attack" and row["attack_name"] == "topology" and row["space"] == "topology"
    assert row["eps"] == 0.1 and row["eps_255"] is None and row["eps_unit"] == "edge_fraction"
    assert row["n"] == 20 and row["num_edges"] == 78 and row["budget_edges"] == 7 and row["flips"] <= 7
    assert row["robust_acc"] <= row["clean_acc"] and row["steps"] == 30 and row["backward_passes"] == 30
    assert row["wall_s"] > 0 and row["forward_passes"] >= 32
    assert len(result["samples"]["clean_correct"]) == len(result["samples"]["adv_correct"]) == 20
    assert sum(result["samples"]["adv_correct"]) == round(row["robust_acc"] * 20 / 100)


def test_attack_verb_refuses_mismatched_attacks_and_budgets(karate_run, digits_npz, tmp_path):
    """Each is one line before any work: no model is loaded (the path need not exist), no result is written."""
    graph, out = str(karate_run / "karate.npz"), tmp_path / "out.json"
    absent, model = str(tmp_path / "absent.pt"), str(karate_run / "model.pt")
    cases = [(absent, graph, _spec(8 / 255, name="pgd"), "attack 'pgd' perturbs images .* holds graph data"),
             (absent, str(digits_npz), _spec(0.05), "attack 'topology' perturbs a graph's edges, but .* holds image"),
             (absent, graph, _spec(8.0), "624 edge flips, more than the 561 node pairs"),
             (model, graph, {**_spec(0.05), "n_eval": 21}, "asked for 21 test nodes of .*, which has only 20")]
    for model, data, spec, match in cases:
        with pytest.raises(SnnRobustError, match=match) as exc:
            attack_command(model, data, spec, str(out), progress=False)
        assert "\n" not in str(exc.value) and not out.exists()
    proc = run_cli("attack", "--model", str(tmp_path / "absent.pt"), "--data", graph, "--spec",
                   json.dumps(_spec(8 / 255, name="fgsm")), "--out", str(out), "--no-progress", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "holds graph data" in proc.stderr
