"""The trail study's bad inputs stop at the config check, in one line naming the model, attack and sweep, before
any job runs: a pooling option on a model without a fixed-window pool, a spike-space attack swept on a model that
is not spiking, a width-scaled model shown as the paper's, a recipe's unknown augmentation. The real checks run on
a small config dict (in process) and through the ``validate-config`` verb (exit 2, nothing written)."""

import copy

import pytest
import yaml

from conftest import REPO
from snnrobust.cli import main
from snnrobust.config import validate_config
from snnrobust.errors import SnnRobustError

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
RUN = {"dataset": ["digits"], "method": ["vanilla"], "seed": [0]}


def small_config() -> dict:
    """A trail-like config: a width-scaled SEW-ResNet-18 stand-in (max/avg twins) beside an ANN."""
    sew = {"T": 2, "width": 0.25, "surrogate": "atan", "gamma": 2.0, "normalize": False, "stem": "imagenet"}
    return {
        "scale": "default",
        "datasets": {"digits": {"source": "digits", "options": {"image_size": 16}}},
        "models": {
            "sew_max": {"arch": "sew_resnet18", "paper_name": "SEW-ResNet18", "stand_in": True,
                        "options": {**sew, "pooling": "max"}},
            "sew_avg": {"arch": "sew_resnet18", "paper_name": "SEW-ResNet18", "stand_in": True,
                        "options": {**sew, "pooling": "avg"}},
            "ann": {"arch": "ann_vgg_tiny", "options": {"width": 0.5}},
        },
        "methods": {"vanilla": {"name": "vanilla"}},
        "training": {"defaults": {"epochs": 1, "optimizer": "adam", "lr": 0.001, "batch_size": 16,
                                  "schedule": "constant", "augment": "flip"}},
        "attacks": {"fgsm": {"name": "fgsm"},
                    "pgd_spike": {"name": "pgd", "options": {"steps": 7, "alpha": 0.01, "space": "spike",
                                                             "random_start": True}}},
        "evaluation": {"n_eval": 32},
        "studies": {"sparsity_trail": {
            "train": [{**RUN, "model": ["sew_max", "sew_avg", "ann"]}],
            "sweeps": [{**RUN, "model": ["sew_max", "sew_avg", "ann"], "attack": ["fgsm"], "eps_255": [8]},
                       {**RUN, "model": ["sew_max", "sew_avg"], "attack": ["pgd_spike"], "eps_255": [8]}],
            "report": {"paper": "sparsity_trail", "attack_map": {"fgsm": "FGSM", "pgd_spike": "PGD"}},
        }},
    }


def _sweeps(c):
    return c["studies"]["sparsity_trail"]["sweeps"]


BAD = [
    ("avg pooling under the CIFAR stem", lambda c: c["models"]["sew_avg"]["options"].pop("stem"),
     "config models.sew_avg.options: option pooling='avg' replaces nothing: sew_resnet18 with stem 'cifar' "
     "has no pooling layer"),
    ("max pooling under the CIFAR stem", lambda c: c["models"]["sew_max"]["options"].update(stem="cifar"),
     "config models.sew_max.options: option pooling='max' replaces nothing: sew_resnet18 with stem 'cifar'"),
    ("pooling on a Spiking-ResNet without a pool",
     lambda c: c["models"].update(sr={"arch": "spiking_resnet18", "options": {"pooling": "avg", "T": 2}}),
     "config models.sr.options: option pooling='avg' replaces nothing: spiking_resnet18 with stem 'cifar'"),
    ("spike attack on an ANN", lambda c: _sweeps(c)[1].update(model=["sew_max", "ann"]),
     "config studies.sparsity_trail.sweeps[1]: attack 'pgd_spike' perturbs in space 'spike' (the encoded spike "
     "input), which needs a spiking model; model 'ann' (arch 'ann_vgg_tiny') is not spiking"),
    ("spike attack from a grid on an ANN", lambda c: _sweeps(c)[0].update(grid={"space": ["pixel", "spike"]}),
     "config studies.sparsity_trail.sweeps[0]: attack 'fgsm-spacespike' perturbs in space 'spike'"),
    ("spike transfer from an ANN source", lambda c: _sweeps(c).append(
        {**RUN, "model": ["sew_max"], "attack": ["pgd_spike"], "eps_255": [8], "threat": "black-box",
         "cross_architecture": True, "source": {"model": ["ann"], "method": ["vanilla"], "seed": [0]}}),
     "config studies.sparsity_trail.sweeps[2]: attack 'pgd_spike' perturbs in space 'spike' (the encoded spike "
     "input), which needs a spiking model; source model 'ann' (arch 'ann_vgg_tiny') is not spiking"),
    ("width-scaled model shown as the paper's", lambda c: c["models"]["sew_max"].pop("stand_in"),
     "config models.sew_max: width 0.25 is not the architecture of 'SEW-ResNet18': set stand_in: true"),
    ("unknown augmentation", lambda c: c["training"]["defaults"].update(augment="crop"),
     "config training/defaults/augment: 'crop' is not one of [True, False, 'flip']"),
    ("width 0", lambda c: c["models"]["sew_max"]["options"].update(width=0),
     "config models.sew_max.options: option 'width' of arch 'sew_resnet18' must be > 0, got 0"),
]


def test_the_small_trail_config_passes_and_plans_its_jobs():
    plan = validate_config(small_config(), SCHEMA)
    assert len(plan.runs) == 3 and len(plan.attacks) == 5
    assert plan.train_spec(next(iter(plan.runs)))["train"]["augment"] == "flip"
    spike = [k for k in plan.attacks if k[1] == "pgd_spike"]
    assert {plan.origin[k] for k in spike} == {"studies.sparsity_trail.sweeps[1]"}


@pytest.mark.parametrize("name, mutate, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_trail_input_is_one_line_at_the_config_check(name, mutate, needle):
    cfg = copy.deepcopy(small_config())
    mutate(cfg)
    with pytest.raises(SnnRobustError) as info:
        validate_config(cfg, SCHEMA)
    message = str(info.value)
    assert "\n" not in message and needle in message, message


@pytest.mark.parametrize("name, mutate, needle", BAD, ids=[b[0] for b in BAD])
def test_validate_config_verb_exits_2_in_one_line_and_writes_nothing(name, mutate, needle, tmp_path, capsys):
    cfg = copy.deepcopy(small_config())
    mutate(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["validate-config", "--config", str(path), "--schema", str(SCHEMA)])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, f"exit {code}: {err}"
    assert "\n" not in err and err.startswith("snnrobust: error:") and needle in err, err
    assert captured.out == "" and sorted(p.name for p in tmp_path.rglob("*")) == before
