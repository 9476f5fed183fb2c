"""Models: parametrised over the registry on tiny inputs (shape, gradient, no leaked state, errors)."""

import contextlib
import pytest
import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models import MODELS, build_model, model_options
from snnrobust.surrogates import use_surrogate

IMAGE = (3, 16, 16)
# Small settings per arch so the whole registry runs in seconds on 2 cores.
TINY = {
    # At init its BN-free FC layers barely spike, so the triangle's compact support (zero at
    # v <= 0) passes no gradient; atan's full support keeps this a plumbing test.
    "snn_vgg11": {"width": 0.125, "surrogate": "atan", "gamma": 2.0},
    "ann_vgg11": {"width": 0.125},
    "snn_vgg_tiny": {"width": 0.5},
    "ann_vgg_tiny": {"width": 0.5},
    "snn_wrn16": {"widen": 1},
}
BATCH = {name: 1 for name in MODELS.names() if name.endswith("50")}


def _calibrate(model, inputs):
    """Fill BN running statistics from ``inputs`` (an untrained SNN in eval mode with default BN
    statistics is silent, so its input gradient would be exactly zero), then switch to eval."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one pass sets the batch statistics
    with torch.no_grad():
        model.train()(*inputs)
    for m in norms:
        m.momentum = 0.1
    return model.eval()


def _build(arch, **extra):
    opts = dict(TINY.get(arch, {}))
    if "T" in model_options(arch):
        opts["T"] = 2
    opts.update(extra)
    if arch == "gcn":
        return build_model(arch, 3, (5,), **opts)
    return build_model(arch, 4, IMAGE, **opts)


def _inputs(arch, seed=0):
    g = torch.Generator().manual_seed(seed)
    if arch == "gcn":
        edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5], [1, 0, 2, 1, 3, 2, 4, 3, 5, 4]])
        return torch.rand(6, 5, generator=g), edge_index
    return (torch.rand(BATCH.get(arch, 2), *IMAGE, generator=g),)


def _input_grad(model, inputs):
    x = inputs[0].clone().requires_grad_(True)
    out = model(x, *inputs[1:])
    (g,) = torch.autograd.grad(out.logsumexp(-1).sum() - out[..., 0].sum(), x)
    return out.detach(), g


@pytest.mark.parametrize("arch", MODELS.names())
def test_shape_gradient_and_no_leaked_state(arch):
    torch.manual_seed(0)
    inputs = _inputs(arch)
    model = _calibrate(_build(arch), inputs)
    out, g = _input_grad(model, inputs)
    assert out.shape == (inputs[0].shape[0], 3 if arch == "gcn" else 4)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert isinstance(model.spiking, bool) and model.T == (2 if model.spiking else 1)
    with torch.no_grad():
        again = model(*inputs)
        model(*_inputs(arch, seed=1))  # a different input in between must leave no trace
        after = model(*inputs)
    assert torch.equal(out, again) and torch.equal(out, after)


@pytest.mark.parametrize("arch", ["snn_vgg_tiny", "snn_wrn16", "sew_resnet18"])
def test_surrogate_swap_changes_gradient_not_output(arch):
    torch.manual_seed(0)
    inputs = _inputs(arch)
    model = _calibrate(_build(arch), inputs)
    out1, g1 = _input_grad(model, inputs)
    with use_surrogate(model, "sigmoid", 4.0):
        out2, g2 = _input_grad(model, inputs)
    out3, g3 = _input_grad(model, inputs)
    assert torch.equal(out1, out2) and not torch.allclose(g1, g2)
    assert torch.equal(g1, g3)


@pytest.mark.parametrize("swap", [None, ("atan", 2.0), ("sigmoid", 4.0)])
@pytest.mark.parametrize("neuron", ["lean", "spikingjelly"])
def test_neuron_kinds_agree(neuron, swap):
    """Our lean neuron and spikingjelly's fused operator give the same outputs and input gradients,
    also after an attack-time surrogate swap (the fused operator must read the swapped surrogate)."""
    torch.manual_seed(0)
    inputs = _inputs("snn_vgg_tiny")
    lean = _calibrate(_build("snn_vgg_tiny", neuron="lean"), inputs)
    other = _build("snn_vgg_tiny", neuron=neuron).eval()
    other.load_state_dict(lean.state_dict())
    ctx = (lambda m: use_surrogate(m, *swap)) if swap else (lambda m: contextlib.nullcontext())
    with ctx(lean):
        o1, g1 = _input_grad(lean, inputs)
    with ctx(other):
        o2, g2 = _input_grad(other, inputs)
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-4)
    assert g1.abs().sum() > 0


def _pool_types(model):
    return {type(m).__name__ for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))}


@pytest.mark.parametrize("family", ["sew_resnet18", "spiking_resnet18"])
def test_pooling_option_swaps_pools(family):
    assert _pool_types(_build(family, stem="imagenet")) == {"MaxPool2d"}
    assert _pool_types(_build(family, stem="imagenet", pooling="max")) == {"MaxPool2d"}
    avg = _build(family, stem="imagenet", pooling="avg")
    assert _pool_types(avg) == {"AvgPool2d"}
    pool = avg.backbone.maxpool
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert _pool_types(_build(family)) == set()  # CIFAR stem: no pool at all
    assert avg(_inputs(family)[0]).shape == (2, 4)


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
@pytest.mark.parametrize("family", ["sew_resnet18", "spiking_resnet18"])
def test_max_and_avg_pooling_models_differ_or_refuse(family, stem):
    """The trail paper's max-vs-avg comparison: with equal weights the two models must compute different
    things; where the pooling option would replace nothing (the CIFAR stem has no pool) it is an error.
    Before the fix, pooling='avg' under the default CIFAR stem silently built the max model."""
    inputs = _inputs(family)
    try:
        torch.manual_seed(0)
        max_model = _calibrate(_build(family, stem=stem, pooling="max"), inputs)
        avg_model = _build(family, stem=stem, pooling="avg").eval()
    except SnnRobustError as err:
        assert stem == "cifar" and "replaces nothing" in str(err) and "\n" not in str(err)
        return
    avg_model.load_state_dict(max_model.state_dict())
    with torch.no_grad():
        assert not torch.equal(max_model(*inputs), avg_model(*inputs))


def test_ann_twin_has_the_same_shape():
    snn, ann = _build("snn_vgg_tiny"), _build("ann_vgg_tiny")
    shapes = lambda m: [tuple(p.shape) for p in m.parameters()]  # noqa: E731
    assert shapes(snn) == shapes(ann)


def test_normalisation_and_phase_encoder_inside():
    torch.manual_seed(0)
    m = _build("snn_vgg_tiny", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), encoder="phase",
               encoder_opts={"weighted": False}, T=8, normalize=False)  # phase coding reads raw pixels
    assert m.T == 8 and m(_inputs("snn_vgg_tiny")[0]).shape == (2, 4)


@pytest.mark.parametrize(
    "arch, opts",
    [
        ("snn_vgg_tiny", {"colour": 1}),
        ("resnet18", {"T": 4}),
        ("snn_vgg_tiny", {"T": 0}),
        ("snn_vgg_tiny", {"surrogate": "nope"}),
        ("snn_vgg_tiny", {"gamma": -1}),
        ("snn_vgg_tiny", {"encoder": "nope"}),
        ("snn_vgg_tiny", {"neuron": "lif"}),
        ("snn_vgg_tiny", {"mean": (0.5,)}),
        ("sew_resnet18", {"pooling": "min"}),
        ("sew_resnet18", {"pooling": "avg"}),  # CIFAR stem: nothing to replace
        ("spiking_resnet18", {"pooling": "max", "stem": "cifar"}),
        ("sew_resnet18", {"stem": "tiny"}),
        ("gcn", {"hidden": 0}),
    ],
)
def test_bad_options_are_one_line_errors(arch, opts):
    with pytest.raises(SnnRobustError) as err:
        _build(arch, **opts)
    assert "\n" not in str(err.value)


def test_unknown_arch():
    with pytest.raises(SnnRobustError, match="snn_vgg11"):
        build_model("vgg99", 10, IMAGE)


def test_bench_quick_writes_json(tmp_path, monkeypatch):
    """Smoke test only: the benchmark runs and writes its keys (speed is never asserted)."""
    import json

    from snnrobust import bench

    monkeypatch.setattr(bench, "BATCH", 2)
    monkeypatch.setattr(bench, "WIDTH", 0.25)
    monkeypatch.setattr(bench, "NEURON_SHAPE", (4, 2, 3, 5, 5))
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("seconds", "ratio_to_ann_T"):
        assert set(result[key]) == {"lean", "spikingjelly", "single_step_loop", "ann"}
    assert result["config"]["T"] == 4
    assert set(result["neuron_alone"]["seconds"]) == {"lean", "spikingjelly"}


def test_bench_methods_quick_writes_json(tmp_path, monkeypatch):
    """Smoke test only: the SR-paper cost benchmark runs every method and the ensemble and writes the ratios
    (speed is never asserted; `make bench` is where the figures come from)."""
    import json

    from snnrobust import bench_methods

    monkeypatch.setattr(bench_methods, "BATCH", 4)
    monkeypatch.setattr(bench_methods, "WIDTH", 0.25)
    monkeypatch.setattr(bench_methods, "_briefly_trained", lambda x, y: bench_methods._snn(1).eval())
    out = tmp_path / "methods.json"
    assert bench_methods.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["train_step_ratio_to_vanilla"]) == {"vanilla", "at", "rat", "sr", "sr_star", "part_forward",
                                                          "part_forward_input_backward"}
    assert result["train_step_ratio_to_vanilla"]["vanilla"] == 1.0
    s = result["train_step_seconds"]  # the floor is (2F + Bin + 2B) / (F + B) of the passes timed alone
    f, b_in, b = s["part_forward"], s["part_forward_input_backward"] - s["part_forward"], s["vanilla"] - s["part_forward"]
    assert result["sr_floor_ratio_to_vanilla"] == pytest.approx((2 * f + b_in + 2 * b) / (f + b))
    assert set(result["attack_ratio_to_pgd10"]) == {"pgd10", "ensemble_cascade", "ensemble_all_members"}
    assert result["paper_table7_ratio_to_vanilla"]["sr_star"] == 583 / 65


def test_bench_threads_quick_writes_json(tmp_path, monkeypatch):
    """Smoke test only: the thread-policy benchmark runs its subprocesses (one policy, a tiny step) and writes
    the ratios (speed is never asserted; `make bench` is where the figures come from)."""
    import json

    from snnrobust import bench_threads

    monkeypatch.setattr(bench_threads, "POLICIES", {"new": {"OMP_NUM_THREADS": "1"}})
    monkeypatch.setattr(bench_threads, "OVERRIDES", {"batch": 2, "shape": [3, 8, 8],
                                                     "options": {"T": 2, "width": 0.25}})
    out = tmp_path / "threads.json"
    assert bench_threads.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    new = result["policies"]["new"]
    assert new["idle"]["threads"] == [1] and new["shared"]["shared"] is True
    assert new["ratio_shared_to_idle"] > 0
    assert result["pair"]["idle"]["processes"] == 2 and result["throughput"]["two_1thread_processes_steps_per_s"] > 0


def test_bench_startup_quick_writes_json(tmp_path, monkeypatch):
    """Smoke test only: the start-up benchmark times the baselines and one light verb in fresh processes and
    reports the packages each loaded (speed is never asserted)."""
    import json

    from snnrobust import bench_startup

    monkeypatch.setattr(bench_startup, "ONLY", ("unlock-stale",))
    out = tmp_path / "startup.json"
    assert bench_startup.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["verbs"]) == {"(python)", "(cli)", "unlock-stale"}
    for row in result["verbs"].values():
        assert row["median_s"] > 0 and len(row["runs_s"]) == 2 and row["torch_geometric"] is False
