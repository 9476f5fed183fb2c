"""Verb `attack`: one attack on one trained model over the fixed evaluation subset, white-box, or
black-box with adversarial examples made on a source model (``--source-model``).

Image data takes the pixel/spike attacks on the first ``n_eval`` test images. Graph data takes the graph
(``topology``) attack on the first ``n_eval`` test nodes (all of them without ``n_eval``), attacked jointly
(one perturbed graph, Xu et al.); its ``eps`` is the budget as a fraction of the graph's edges, so its rows
carry ``eps_255: null`` and ``eps_unit: edge_fraction``; ``batch_size`` does not apply to graphs."""

from __future__ import annotations

import math

from snnrobust.commands._common import _check_keys, _eval_batches, _take
from snnrobust.commands.models_io import check_clean_accuracy, load_trained_record
from snnrobust.errors import SnnRobustError
from snnrobust.io import write_json
from snnrobust.provenance import provenance

SPEC_KEYS = {"attack", "eps", "n_eval", "batch_size", "seed", "labels", "device", "model", "source_labels"}
SOURCE_LABELS = ("model", "method", "seed")  # copied into the row as source_<key>


def _eps(value) -> float:
    """The spec's ℓ∞ budget: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SnnRobustError(f"attack spec eps must be >= 0 (a finite number), got {value!r}")
    return float(value)


def _trained_on(spec: dict) -> str | None:
    return (spec.get("labels") or {}).get("dataset")


def _load_source(path: str, target_path: str, target_spec: dict, data, source_labels: dict, attack):
    """The source model of a transfer attack: it must be trained on the target's dataset."""
    from snnrobust.attacks import Transfer

    record = load_trained_record(path, data_meta=data.meta, labels=source_labels,
                                 labels_what="the spec's source_labels")
    source, source_spec = record.model, record.spec
    have, want = _trained_on(source_spec), _trained_on(target_spec)
    if have != want:
        raise SnnRobustError(f"source model {path} was trained on dataset {have!r}, "
                             f"but the target {target_path} on {want!r}")
    columns = {"threat": "black-box", **{f"source_{k}": source_labels.get(k) for k in SOURCE_LABELS}}
    return Transfer(attack, source), source, columns


def _check_kind(atk, data) -> None:
    """A graph attack (space ``topology``) on graph data, any other attack on images: otherwise one line."""
    graph_attack = atk.space == "topology"
    if graph_attack and data.kind != "graph":
        raise SnnRobustError(f"attack {atk.name!r} perturbs a graph's edges, but {data.path} holds {data.kind} data")
    if data.kind == "graph" and not graph_attack:
        raise SnnRobustError(f"attack {atk.name!r} perturbs images (space {atk.space!r}), but {data.path} holds "
                             f"graph data (use the topology attack)")


def _graph_eval(data, n_eval: int | None, device):
    """(view, batches) of the graph evaluation: the first ``n_eval`` test nodes (all if None), one batch of
    every node's features and those nodes' labels; ``view(model)`` is ``model`` scored on those nodes."""
    import torch

    from snnrobust.data.loader import MaskedNodes

    graph = data.graph
    nodes = graph.test_mask.nonzero().flatten()
    if n_eval is not None and n_eval > len(nodes):
        raise SnnRobustError(f"asked for {n_eval} test nodes of {data.path}, which has only {len(nodes)}")
    mask = torch.zeros_like(graph.test_mask)
    mask[nodes[:n_eval]] = True
    edge_index, on_device = graph.edge_index.to(device), mask.to(device)
    return (lambda model: MaskedNodes(model.to(device), edge_index, on_device)), [(graph.x, graph.y[mask])]


def attack(model_path: str, data_path: str, spec: dict, out: str, progress: bool = True,
           source_model: str | None = None) -> None:
    from snnrobust.attacks import evaluate_attack, make_attack
    from snnrobust.data import load_prepared
    from snnrobust.device import resolve_device

    _check_keys(spec, SPEC_KEYS, "attack spec")
    attack_spec = dict(_take(spec, "attack", required=True))
    _check_keys(attack_spec, {"name", "options"}, "attack")
    eps = _eps(_take(spec, "eps", required=True))
    atk = make_attack(_take(attack_spec, "name", required=True), eps=eps, **(attack_spec.get("options") or {}))
    source_labels = _take(spec, "source_labels", {}) or {}
    if not isinstance(source_labels, dict):
        raise SnnRobustError(f"source_labels must be a mapping, got {source_labels!r}")
    device = resolve_device(spec.get("device"))
    seed = int(spec.get("seed", 0))
    data = load_prepared(data_path)
    _check_kind(atk, data)
    graph = data.kind == "graph"
    if graph:  # the budget against the graph's node pairs, before any model is loaded
        from snnrobust.attacks.topology import undirected_adjacency

        g = data.graph
        atk.budget_for(undirected_adjacency(g.edge_index, g.num_nodes))
    trained = load_trained_record(model_path, data_meta=data.meta, expect=spec.get("model"),
                                  labels=spec.get("labels"))
    model, train_spec = trained.model, trained.spec
    run, threat = atk, {"threat": "white-box"}
    if source_model is not None:
        run, source, threat = _load_source(source_model, model_path, train_spec, data, source_labels, atk)
        source.to(device)
    if graph:
        view, batches = _graph_eval(data, spec.get("n_eval"), device)
        model = view(model)
        if source_model is not None:
            run.source = view(source)
    else:
        batches = _eval_batches(data, spec.get("n_eval"), int(spec.get("batch_size", 128)))
    summary = evaluate_attack(model, run, batches, seed=seed, progress=progress, device=device)
    check_clean_accuracy(model_path, trained, summary["clean_acc"], summary["n"])
    samples = {key: summary.pop(key) for key in ("clean_correct", "adv_correct")}
    row = {
        **spec.get("labels", {}),
        **threat,
        "attack_name": atk.name,
        "eps": eps,
        "eps_255": None if graph else round(eps * 255, 6),
        "steps": getattr(atk, "steps", 1),
        "alpha": getattr(atk, "alpha", None),
        "random_start": getattr(atk, "random_start", False),
        **atk.columns(),
        "device": str(device),
        **summary,
    }
    write_json(out, {
        "kind": "attack",
        "rows": [row],
        "samples": samples,
        "attack": repr(run),
        "provenance": {**provenance(spec), "device": str(device)},
    })
