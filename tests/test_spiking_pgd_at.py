"""Spiking-PGD adversarial training (Spiking-PGD paper, Sec. 5.3 and App. B): the ρ schedules, ρ = 0 is PGD-AT
weight for weight, precision (%) below 100 where layers reuse, exact resume after a crash and after SIGKILL, a recipe's
robust_eval reaching metrics.csv, and bad options as one-line config errors."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
import torch

from conftest import Crash, REPO, crash_after, kill_after_first_checkpoint, run_cli
from snnrobust.config import load_yaml, validate_config
from snnrobust.data import load_prepared
from snnrobust.errors import SnnRobustError
from snnrobust.methods import make_method
from snnrobust.methods.spiking_pgd_at import exponential_rho
from snnrobust.models import build_model
from snnrobust.plan import Run
from snnrobust.seeding import seed_everything
from snnrobust.training import METRIC_COLUMNS, TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
EPS, ALPHA = 8 / 255, 2 / 255
INNER = {"steps": 2, "alpha": ALPHA}  # PGD-2: enough iterations for reuse, cheap on 2 shared cores
CFG = dict(batch_size=64, seed=0, train_limit=128, eval_limit=64)


def _model(data, seed=0):
    seed_everything(seed)
    meta = data.meta
    return build_model("snn_vgg_tiny", meta["num_classes"], tuple(meta["in_shape"]), T=2, width=0.5,
                       mean=meta["mean"], std=meta["std"])


def _spgd_at(**options):
    return make_method("spiking_pgd_at", attack={"name": "spiking_pgd", "options": dict(INNER)}, eps=EPS, **options)


# -- the schedule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("decay", [0.5, 1.0, 2.0, 5.0, 10.0])
def test_exponential_schedule_matches_an_independent_form(decay):
    """(e^{−λt/N} − e^{−λ})/(1 − e^{−λ}) = expm1(λ(1 − t/N))/expm1(λ): ρ0 at t = 0, 0 at t = N, decreasing."""
    rho0, n = 0.1, 20
    method = _spgd_at(rho=rho0, schedule="exponential", decay=decay, epochs=n)
    rhos = []
    for t in range(n + 1):
        method.on_epoch_start(t, None, None)
        expected = rho0 * math.expm1(decay * (1 - t / n)) / math.expm1(decay)
        assert exponential_rho(rho0, decay, t, n) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert method.inner.attack.rho == method.current_rho == exponential_rho(rho0, decay, t, n)
        rhos.append(method.current_rho)
    assert rhos[0] == pytest.approx(rho0, rel=1e-12) and rhos[-1] == pytest.approx(0.0, abs=1e-15)
    assert all(a > b for a, b in zip(rhos, rhos[1:]))
    assert rhos[n - 1] > 0  # epochs count from 0: the last epoch still reuses
    assert exponential_rho(rho0, decay, n + 3, n) == 0.0  # past the horizon: plain PGD


def test_constant_schedule_keeps_rho0():
    method = _spgd_at(rho=0.03, schedule="constant")
    for t in (0, 1, 7, 199):
        method.on_epoch_start(t, None, None)
        assert method.inner.attack.rho == method.current_rho == 0.03


# -- training -------------------------------------------------------------------------------------
def test_rho_zero_trains_exactly_as_pgd_at(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=1, **CFG)  # two steps of 64
    at = make_method("at", attack={"name": "pgd", "options": dict(INNER)}, eps=EPS)
    spgd = _spgd_at(rho=0.0)
    model_at, model_spgd = _model(data), _model(data)
    res_at = train(model_at, at, data, cfg, tmp_path / "at.pt", progress=False)
    res_spgd = train(model_spgd, spgd, data, cfg, tmp_path / "spgd.pt", progress=False)
    for (name, a), (_, b) in zip(model_at.state_dict().items(), model_spgd.state_dict().items()):
        assert torch.equal(a, b), name
    row = res_spgd.metrics[0]
    assert {k: row[k] for k in METRIC_COLUMNS} == res_at.metrics[0]
    assert row["precision"] == 100.0 and row["precision_flops"] == 100.0 and row["rho"] == 0.0
    assert spgd.cost.layer_forwards > 0  # the gate did run (and computed every layer)


def test_positive_rho_reuses_layers(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=1, **CFG)
    method = _spgd_at(rho=0.5)
    result = train(_model(data), method, data, cfg, tmp_path / "c.pt", progress=False)
    row = result.metrics[0]
    assert result.columns[-3:] == ["rho", "precision", "precision_flops"]
    assert row["rho"] == 0.5
    assert 0.0 < row["precision"] < 100.0 and 0.0 < row["precision_flops"] < 100.0


def test_resume_after_a_crash_equals_the_uninterrupted_run(digits_npz, tmp_path):
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=3, **CFG)
    options = dict(rho=0.3, schedule="exponential", decay=2.0, epochs=3)
    full_model = _model(data)
    full = train(full_model, _spgd_at(**options), data, cfg, tmp_path / "full.pt", progress=False)
    ckpt = tmp_path / "crash.pt"
    with pytest.raises(Crash):
        train(_model(data), _spgd_at(**options), data, cfg, ckpt, progress=False, on_epoch_end=crash_after(1))
    assert torch.load(ckpt, weights_only=True)["method"] == {"inner_attack": {"step": 2}}
    resumed_model = _model(data, seed=7)
    resumed = train(resumed_model, _spgd_at(**options), data, cfg, ckpt, progress=False)
    assert resumed.resumed_from_epoch == 1
    assert resumed.metrics == full.metrics
    assert [row["rho"] for row in full.metrics] == [exponential_rho(0.3, 2.0, t, 3) for t in range(3)]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


# -- the config: a recipe's robust_eval, bad options ----------------------------------------------
RUN = Run("digits", "snn_micro", "spgd_at_exp", 0)
ROBUST_EVAL = {"attack": {"name": "pgd", "options": {"steps": 2}}, "eps": EPS, "every": 1, "n_eval": 64}


@pytest.fixture(scope="module")
def default_config():
    return load_yaml(REPO / "config/default.yaml")


def _with_spgd_at(cfg: dict) -> dict:
    """The default config plus a tiny Spiking-PGD-AT run whose recipe evaluates PGD-2 every epoch."""
    cfg = copy.deepcopy(cfg)
    cfg["models"]["snn_micro"] = {"arch": "snn_vgg_tiny", "stand_in": True, "options": {"T": 2, "width": 0.5}}
    cfg["methods"]["spgd_at_exp"] = {"name": "spiking_pgd_at", "options": {
        "attack": {"name": "spiking_pgd", "options": dict(INNER)}, "eps": EPS, "rho": 0.3,
        "schedule": "exponential", "decay": 2.0, "epochs": 2}}
    cfg["training"]["recipes"]["spgd_at_tiny"] = {"epochs": 2, "train_limit": 128, "eval_limit": 64,
                                                  "robust_eval": copy.deepcopy(ROBUST_EVAL)}
    cfg["studies"]["spiking_pgd"]["train"].append(
        {"dataset": ["digits"], "model": ["snn_micro"], "method": ["spgd_at_exp"], "seed": [0],
         "recipe": "spgd_at_tiny", "standalone": True})
    return cfg


def _train_args(data, spec, d) -> list[str]:
    return ["train", "--data", str(data), "--spec", json.dumps(spec), "--out-model", str(d / "model.pt"),
            "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
            "--checkpoint", str(d / "ckpt.pt"), "--no-progress"]


def test_recipe_robust_eval_reaches_metrics_csv_and_a_killed_run_resumes_byte_identical(
        default_config, digits_npz, tmp_path):
    plan = validate_config(_with_spgd_at(default_config), SCHEMA)
    spec = plan.train_spec(RUN)
    assert spec["robust_eval"] == ROBUST_EVAL and "robust_eval" not in spec["train"]
    assert spec["method"]["name"] == "spiking_pgd_at"
    base = validate_config(copy.deepcopy(default_config), SCHEMA)
    assert all(plan.train_spec(r) == base.train_spec(r) for r in base.runs)  # other specs unchanged
    spec = {**spec, "device": "cpu"}
    ref = tmp_path / "ref"
    run_cli(*_train_args(digits_npz, spec, ref))
    metrics = pd.read_csv(ref / "metrics.csv")
    assert list(metrics.columns[-4:]) == ["robust_acc", "rho", "precision", "precision_flops"]
    assert metrics.robust_acc.notna().all() and metrics.robust_acc.between(0, 100).all()
    assert metrics.rho.tolist() == pytest.approx([0.3, exponential_rho(0.3, 2.0, 1, 2)], rel=1e-5)
    assert (metrics.precision <= 100).all()

    killed = tmp_path / "killed"
    killed.mkdir()
    import sys
    kill_after_first_checkpoint([sys.executable, "-m", "snnrobust", *_train_args(digits_npz, spec, killed)],
                                killed / "ckpt.pt")
    assert not (killed / "metrics.csv").exists(), "the run finished before it could be killed"
    run_cli(*_train_args(digits_npz, spec, killed))
    assert json.loads((killed / "run.json").read_text())["resumed_from_epoch"] >= 1
    assert (killed / "metrics.csv").read_bytes() == (ref / "metrics.csv").read_bytes()


def _set_method(**options):
    def mutate(cfg):
        cfg["methods"]["spgd_at_exp"]["options"].update(options)
    return mutate


def _set_robust_eval(**changes):
    def mutate(cfg):
        cfg["training"]["recipes"]["spgd_at_tiny"]["robust_eval"].update(changes)
    return mutate


def _pop_method_option(name):
    def mutate(cfg):
        cfg["methods"]["spgd_at_exp"]["options"].pop(name)
    return mutate


BAD = [
    ("negative rho", _set_method(rho=-0.01), "'rho'"),
    ("unknown schedule", _set_method(schedule="linear"), "'constant', 'exponential'"),
    ("zero decay", _set_method(decay=0), "'decay'"),
    ("exponential without epochs", _pop_method_option("epochs"), "needs option epochs"),
    ("rho in the inner attack", _set_method(attack={"name": "spiking_pgd", "options": {"rho": 0.1}}),
     "set rho as the method's option"),
    ("another inner attack", _set_method(attack={"name": "pgd"}), "the inner attack is spiking_pgd"),
    ("bad inner attack option", _set_method(attack={"name": "spiking_pgd", "options": {"reference": "x"}}),
     "reference"),
    ("robust_eval every 0", _set_robust_eval(every=0), "every"),
    ("robust_eval eps > 1", _set_robust_eval(eps=2), "eps"),
    ("robust_eval unknown attack", _set_robust_eval(attack={"name": "nope"}), "unknown attack 'nope'"),
    ("robust_eval bad attack option", _set_robust_eval(attack={"name": "pgd", "options": {"steps": 0}}), "steps"),
    ("robust_eval unknown key", _set_robust_eval(steps=3), "steps"),
    ("robust_eval n_eval beyond the test split", _set_robust_eval(n_eval=100000), "n_eval 100000"),
]


@pytest.mark.parametrize("name,mutate,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_options_fail_at_config_check_in_one_line(default_config, name, mutate, needle):
    cfg = _with_spgd_at(default_config)
    mutate(cfg)
    with pytest.raises(SnnRobustError) as info:
        validate_config(cfg, SCHEMA)
    message = str(info.value)
    assert "\n" not in message and needle in message, message
