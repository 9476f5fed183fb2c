"""Config loading and validation, matrix expansion, and per-job specs (input functions)."""

import itertools
import json
import sys

from snnrobust.config import validate_config
from snnrobust.errors import SnnRobustError

SCHEMA = "workflow/schemas/config.schema.yaml"
ENV = "../../envs/snnrobust.yaml"

if not config:
    import yaml

    config.update(yaml.safe_load(open("config/default.yaml")))
try:
    validate_config(config, SCHEMA)
except SnnRobustError as exc:
    sys.exit(f"snnrobust: error: {exc}")


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    method="|".join(config["methods"]),
    attack="|".join(config["attacks"]),
    seed=r"\d+",
    eps=r"[0-9]+(\.[0-9]+)?",


RUN_KEYS = ("dataset", "model", "method", "seed")


def expand_matrix(matrices, axes):
    """All combinations of each matrix (dataset × model × ... lists), in config order, deduplicated."""
    seen = {}
    for m in matrices:
        for combo in itertools.product(*(m[a] for a in axes)):
            seen[combo] = dict(zip(axes, combo))
    return list(seen.values())


def fmt_eps(e):
    return f"{float(e):g}"


TRAIN_RUNS = expand_matrix(config["training"]["experiments"], RUN_KEYS)
ATTACK_JOBS = [
    {**job, "eps": fmt_eps(job.pop("eps_255"))}
    for job in expand_matrix(config["evaluation"]["sweeps"], RUN_KEYS + ("attack", "eps_255"))
]
GRAD_RUNS = expand_matrix(config["analysis"]["grad_norms"]["experiments"], RUN_KEYS)


def run_path(pattern, job):
    return pattern.format(**job)


def labels(wc):
    return {"dataset": wc.dataset, "model": wc.model, "method": wc.method, "seed": int(wc.seed)}


def train_spec(wc):
    """Everything a trained model depends on; a change here (and only here) retrains it."""
    model = config["models"][wc.model]
    method = config["methods"][wc.method]
    return json.dumps({
        "model": {"arch": model["arch"], "options": model.get("options", {})},
        "method": {"name": method["name"], "options": method.get("options", {})},
        "train": {**config["training"]["defaults"], "seed": int(wc.seed)},
        "labels": labels(wc),
    }, sort_keys=True)


def attack_spec(wc):
    atk = config["attacks"][wc.attack]
    ev = config["evaluation"]
    spec = {
        "attack": {"name": atk["name"], "options": atk.get("options", {})},
        "eps": float(wc.eps) / 255.0,
        "n_eval": ev["n_eval"],
        "batch_size": ev["batch_size"],
        "seed": int(wc.seed),
        "labels": {**labels(wc), "attack": wc.attack},
    }
    if "surrogate" in atk:
        spec["surrogate"] = atk["surrogate"]
    return json.dumps(spec, sort_keys=True)


def grad_spec(wc):
    g = config["analysis"]["grad_norms"]
    return json.dumps({
        "kind": "grad_norms", "n_eval": g["n_eval"], "batch_size": g["batch_size"],
        "zero_tol": g["zero_tol"], "labels": labels(wc),
    }, sort_keys=True)


def data_spec(wc):
    """Data options, with {shared_data} / {raw} in strings filled from config `paths`."""
    opts = config["datasets"][wc.dataset].get("options", {})
    paths = config["paths"]
    return json.dumps({k: v.format(**paths) if isinstance(v, str) else v for k, v in opts.items()}, sort_keys=True)


def report_spec(kind):
    rep = config["report"]
    return json.dumps({
        "kind": kind,
        "paper_table": rep.get("paper_table"),
        "stand_ins": rep.get("stand_ins", {}),
        "method_map": rep.get("method_map", {}),
        "attack_map": rep.get("attack_map", {}),
        "dataset_names": rep.get("dataset_names", {}),
        "arch_map": {k: v["paper_name"] for k, v in config["models"].items() if "paper_name" in v},
        "stand_in_models": sorted(k for k, v in config["models"].items() if v.get("stand_in")),
        "scale": config["scale"],
    }, sort_keys=True)


ATTACK_RESULTS = [
    run_path("results/attacks/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.json", j)
    for j in ATTACK_JOBS
]
GRAD_RESULTS = [
    run_path("results/analysis/{dataset}/{model}/{method}/s{seed}/grad_norms.json", j) for j in GRAD_RUNS
]
TRAIN_METRICS = [run_path("results/models/{dataset}/{model}/{method}/s{seed}/metrics.csv", j) for j in TRAIN_RUNS]

FIGURE_INPUTS = {
    "eps_sweep": ATTACK_RESULTS,
    "attack_bars": ["results/tables/attacks.csv"],
    "grad_norms": GRAD_RESULTS,
    "training_curves": TRAIN_METRICS,
}
