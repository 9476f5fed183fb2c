"""The attack contract on SNNs: spike vs pixel space, train-mode attacks, gradient rules and losses
swapped by the spec (and undone), black-box transfer between two trained models, CLI rows."""

import json

import pytest
import torch
from torch import nn

from conftest import SMALL_SNN_SPEC, run_cli
from snnrobust.attacks import make_attack
from snnrobust.commands.attack import attack as attack_command
from snnrobust.commands.models_io import HASH_KEY, content_hash
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model
from snnrobust.surrogates import use_surrogate

SHAPE = (3, 16, 16)


def _norms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _snn(seed=0, **opts):
    """A tiny SNN with BatchNorm statistics filled from one batch (an untrained SNN with default
    statistics barely spikes), in eval mode."""
    torch.manual_seed(seed)
    model = build_model("snn_vgg_tiny", 4, SHAPE, **{"T": 3, "width": 0.5, **opts})
    for m in _norms(model):
        m.momentum = None  # cumulative average: one pass sets the batch statistics
    with torch.no_grad():
        model.train()(torch.rand(16, *SHAPE, generator=torch.Generator().manual_seed(seed)))
    for m in _norms(model):
        m.momentum = 0.1
    return model.eval()


def _batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("opts", [
    {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)},
    {"encoder": "phase", "encoder_opts": {"weighted": False}, "T": 8},
])
def test_spike_space_attack_changes_only_the_encoded_tensor_within_eps(opts):
    model = _snn(**opts)
    x, y = _batch()
    x_before, params_before = x.clone(), [p.clone() for p in model.parameters()]
    eps = 0.1
    s0 = model.encode(x)
    atk = make_attack("pgd", eps=eps, steps=3, space="spike")
    s_adv = atk(model, x, y, generator=torch.Generator().manual_seed(0))
    lo, hi = model.encoded_bounds()
    assert s_adv.shape == s0.shape == (model.T, *x.shape)
    assert (s_adv - s0).abs().max() <= eps + 1e-6 and not torch.equal(s_adv, s0)
    assert (s_adv >= lo - 1e-6).all() and (s_adv <= hi + 1e-6).all()
    assert not torch.equal(s_adv[0], s_adv[1])  # every time step is perturbed on its own
    assert torch.equal(x, x_before) and all(torch.equal(p, q) for p, q in zip(model.parameters(), params_before))
    with torch.no_grad():
        torch.testing.assert_close(atk.predict(model, s_adv), model.forward_encoded(s_adv))


def test_pixel_space_attack_keeps_pixels_in_range_within_eps():
    model = _snn(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x, y = _batch()
    eps = 8 / 255
    x_adv = make_attack("pgd", eps=eps, steps=3)(model, x, y, generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= eps + 1e-6 and not torch.equal(x_adv, x)


@pytest.mark.parametrize("was_training", [False, True])
def test_train_mode_attack_leaves_batchnorm_statistics_and_mode_as_they_were(was_training):
    model = _snn()
    x, y = _batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(was_training)
    fgsm_train = make_attack("fgsm", eps=0.05, mode="train")(model, x, y)
    assert model.training is was_training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running_mean/var, num_batches_tracked
    fgsm_eval = make_attack("fgsm", eps=0.05)(model, x, y)
    assert not torch.equal(fgsm_train, fgsm_eval), "batch statistics should change the gradient"


def _holders(model):
    return [m for m in model.modules() if hasattr(m, "surrogate_function")]


def test_gradient_rule_from_the_spec_changes_the_gradient_and_is_undone():
    model = _snn()
    x, y = _batch()
    originals = [m.surrogate_function for m in _holders(model)]
    rule = {"rule": "surrogate", "name": "atan", "gamma": 2.0}
    swapped = make_attack("fgsm", eps=0.05, gradient=rule)(model, x, y)
    assert [m.surrogate_function for m in _holders(model)] == originals
    own = make_attack("fgsm", eps=0.05)(model, x, y)
    with use_surrogate(model, "atan", 2.0):  # independent: the same swap done by hand
        by_hand = make_attack("fgsm", eps=0.05)(model, x, y)
    assert torch.equal(swapped, by_hand) and not torch.equal(swapped, own)
    with pytest.raises((IndexError, RuntimeError)):  # a failure inside the attack still undoes the swap
        make_attack("fgsm", eps=0.05, gradient=rule)(model, x, torch.full_like(y, 99))
    assert [m.surrogate_function for m in _holders(model)] == originals


def test_loss_from_the_spec_changes_the_gradient():
    model = _snn()
    x, y = _batch()
    ce, dlr = (make_attack("fgsm", eps=0.05, loss=loss)(model, x, y) for loss in ("ce", "dlr"))
    assert not torch.equal(ce, dlr)


def test_spike_space_on_an_ann_fails_in_one_line():
    torch.manual_seed(0)
    ann = build_model("ann_vgg_tiny", 4, SHAPE, width=0.5).eval()
    with pytest.raises(SnnRobustError, match="attack space 'spike' needs a spiking model") as exc:
        make_attack("pgd", eps=0.1, space="spike")(ann, *_batch())
    assert "\n" not in str(exc.value)


# --- black-box transfer between two trained SNNs, through the verb -----------------------------

@pytest.fixture(scope="module")
def source_snn(tmp_path_factory, digits_npz):
    """A second SNN of the same architecture, another seed, one short epoch: the transfer source."""
    d = tmp_path_factory.mktemp("source")
    spec = json.loads(json.dumps(SMALL_SNN_SPEC))
    spec["train"].update(seed=1, epochs=1, train_limit=512, eval_limit=64)
    spec["labels"]["seed"] = 1
    run_cli("train", "--data", str(digits_npz), "--spec", json.dumps(spec), "--out-model", str(d / "model.pt"),
            "--out-metrics", str(d / "metrics.csv"), "--out-run", str(d / "run.json"),
            "--checkpoint", str(d / "ckpt" / "last.pt"), "--no-progress")
    return d / "model.pt"


ATTACK_SPEC = {"attack": {"name": "pgd", "options": {"steps": 3}}, "eps": 16 / 255, "n_eval": 64,
               "batch_size": 64, "seed": 0, "device": "cpu", "labels": {"dataset": "digits", "model": "snn_vgg_tiny"}}


def test_transfer_row_is_black_box_and_no_stronger_than_white_box(trained_snn, source_snn, digits_npz, tmp_path):
    target = str(trained_snn / "model.pt")
    attack_command(target, str(digits_npz), ATTACK_SPEC, str(tmp_path / "white.json"), progress=False)
    spec = {**ATTACK_SPEC, "source_labels": {"model": "snn_vgg_tiny", "method": "vanilla", "seed": 1}}
    out = tmp_path / "black.json"
    run_cli("attack", "--model", target, "--data", str(digits_npz), "--spec", json.dumps(spec),
            "--out", str(out), "--source-model", str(source_snn), "--no-progress")
    white, black = (json.loads((tmp_path / name).read_text()) for name in ("white.json", "black.json"))
    w, b = white["rows"][0], black["rows"][0]
    assert w["threat"] == "white-box" and "source_model" not in w
    assert b["threat"] == "black-box"
    assert (b["source_model"], b["source_method"], b["source_seed"]) == ("snn_vgg_tiny", "vanilla", 1)
    assert b["clean_acc"] == w["clean_acc"]  # both scored on the target
    assert b["robust_acc"] >= w["robust_acc"] and w["robust_acc"] < w["clean_acc"]
    for result in (white, black):
        row, samples = result["rows"][0], result["samples"]
        assert result["kind"] == "attack" and "clean_correct" not in row
        assert len(samples["clean_correct"]) == len(samples["adv_correct"]) == row["n"] == 64
        assert 100 * sum(samples["adv_correct"]) / row["n"] == pytest.approx(row["robust_acc"])
        assert (row["loss"], row["gradient"], row["surrogate"], row["space"], row["mode"]) == \
            ("ce", "train", "train", "pixel", "eval")
        assert row["device"] == result["provenance"]["device"] == "cpu"


def test_transfer_from_a_model_of_another_dataset_is_a_one_line_error(trained_snn, source_snn, digits_npz, tmp_path):
    state = torch.load(source_snn, weights_only=True)
    spec = json.loads(state["spec"])
    spec["labels"]["dataset"] = "cifar10"
    state["spec"] = json.dumps(spec)
    state[HASH_KEY] = content_hash(state)  # a consistent file of another dataset, not a tampered one
    other = tmp_path / "other.pt"
    torch.save(state, other)
    out = tmp_path / "x.json"
    with pytest.raises(SnnRobustError, match="trained on dataset 'cifar10'") as exc:
        attack_command(str(trained_snn / "model.pt"), str(digits_npz), ATTACK_SPEC, str(out),
                       progress=False, source_model=str(other))
    assert "\n" not in str(exc.value) and not out.exists()


def test_attack_rows_carry_the_gradient_rule(trained_snn, digits_npz, tmp_path):
    spec = {**ATTACK_SPEC, "n_eval": 32, "attack": {"name": "fgsm", "options": {
        "loss": "dlr", "space": "spike", "mode": "train", "gradient": {"rule": "surrogate", "name": "sigmoid", "gamma": 4}}}}
    out = tmp_path / "g.json"
    attack_command(str(trained_snn / "model.pt"), str(digits_npz), spec, str(out), progress=False)
    row = json.loads(out.read_text())["rows"][0]
    assert (row["loss"], row["gradient"], row["surrogate"], row["gamma"], row["space"], row["mode"]) == \
        ("dlr", "surrogate", "sigmoid", 4.0, "spike", "train")
    assert row["robust_acc"] <= row["clean_acc"]


def test_old_top_level_surrogate_key_is_refused(trained_snn, digits_npz, tmp_path):
    spec = {**ATTACK_SPEC, "surrogate": {"name": "atan", "gamma": 2.0}}
    with pytest.raises(SnnRobustError, match="unknown attack spec key"):
        attack_command(str(trained_snn / "model.pt"), str(digits_npz), spec, str(tmp_path / "s.json"))
