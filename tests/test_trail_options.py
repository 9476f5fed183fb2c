"""The trail study's model and recipe options: ``width`` of the spiking ResNets, ``augment: flip``, and the
config-time pooling check kept in step with what a built model has."""

import pytest
import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models import MODELS, build_model
from snnrobust.models.spiking_resnets import POOL_STEMS, STEMS, cifar_stem
from snnrobust.models.width import scaled

FAMILIES = ["sew_resnet18", "spiking_resnet18"]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build(arch, **opts):
    return build_model(arch, 10, (3, 16, 16), **{"T": 2, "surrogate": "atan", "gamma": 2.0, **opts})


# -- width -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", FAMILIES)
def test_width_one_is_todays_model_bit_for_bit(arch):
    """width 1.0 builds exactly the model built before the option existed: spikingjelly's constructor, then the
    CIFAR stem, from the same seed (same parameters, same buffers, same outputs)."""
    from importlib import import_module

    from snnrobust.neuron import NeuronSpec
    from snnrobust.surrogates import make_surrogate

    torch.manual_seed(0)
    plain = _build(arch)
    torch.manual_seed(0)
    one = _build(arch, width=1.0)
    module = import_module(f"spikingjelly.activation_based.model.{arch[:-2]}")
    spec = NeuronSpec("lean", surrogate_function=make_surrogate("atan", 2.0), detach_reset=False)
    torch.manual_seed(0)
    extra = {"cnf": "ADD"} if arch.startswith("sew") else {}
    reference = getattr(module, arch)(spiking_neuron=spec.cls, num_classes=10, **extra, **spec.kwargs)
    cifar_stem(reference, 3)
    for other in (one.backbone.state_dict(), reference.state_dict()):
        ours = plain.backbone.state_dict()
        assert list(ours) == list(other) and all(torch.equal(ours[k], other[k]) for k in ours)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(plain.train()(x), one.train()(x))


@pytest.mark.parametrize("arch", [*FAMILIES, "sew_resnet50"])
def test_width_scales_every_stage_and_parameters_by_about_width_squared(arch):
    torch.manual_seed(0)
    full, quarter = _build(arch), _build(arch, width=0.25)
    ratio = _params(quarter) / _params(full)
    assert 0.0625 * 0.9 < ratio < 0.0625 * 1.2, ratio  # the stem's 3 input channels and the 10 classes stay
    expansion = 4 if arch.endswith("50") else 1
    for stage, planes in zip((1, 2, 3, 4), (64, 128, 256, 512)):
        last = getattr(quarter.backbone, f"layer{stage}")[-1]
        widths = {m.out_channels for m in last.modules() if isinstance(m, nn.Conv2d)}
        assert max(widths) == planes * expansion // 4
    assert quarter.backbone.conv1.in_channels == 3 and quarter.backbone.conv1.out_channels == 16
    assert quarter.backbone.fc.in_features == 512 * expansion // 4 and quarter.backbone.fc.out_features == 10
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = quarter(x)
    assert out.shape == (2, 10)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in quarter.parameters())


def test_width_works_with_the_imagenet_stem_and_avg_pooling_on_32px():
    torch.manual_seed(0)
    model = build_model("sew_resnet18", 100, (3, 32, 32), T=2, width=0.25, stem="imagenet", pooling="avg")
    pool = model.backbone.maxpool
    assert type(pool).__name__ == "AvgPool2d" and model.backbone.conv1.kernel_size == (7, 7)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_width_rounding_and_bad_values():
    assert [scaled(c, 0.25) for c in (64, 128, 256, 512, 2048)] == [16, 32, 64, 128, 512]
    assert scaled(64, 0.001) == 1
    for bad in (0, -0.5, "0.25", True):
        with pytest.raises(SnnRobustError) as err:
            MODELS.check_options("sew_resnet18", {"width": bad})
        assert "width" in str(err.value) and "\n" not in str(err.value)


# -- the config-time pooling check says what building says -----------------------------------------------------
@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("stem", STEMS.names())
@pytest.mark.parametrize("pooling", [None, "max", "avg"])
def test_pooling_cross_check_agrees_with_the_built_model(arch, stem, pooling):
    opts = {"stem": stem, **({"pooling": pooling} if pooling else {})}
    try:
        MODELS.check_options(arch, opts)
        refused_early = None
    except SnnRobustError as err:
        refused_early = str(err)
    try:
        _build(arch, width=0.25, **opts)
        refused_late = None
    except SnnRobustError as err:
        refused_late = str(err)
    assert refused_early == refused_late  # the same one-line message, or both accept
    assert (refused_early is not None) == (pooling is not None and stem not in POOL_STEMS)


# -- augment: flip -----------------------------------------------------------------------------------------------
def _loader(augment, epoch=0, x=None):
    from snnrobust.data.loader import BatchLoader

    x = torch.randint(0, 256, (32, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8) \
        if x is None else x
    return BatchLoader(x, torch.arange(len(x)), batch_size=16, shuffle=True, seed=3, epoch=epoch, augment=augment)


def test_flip_only_augmentation_flips_whole_samples_deterministically():
    plain = {int(i): xb_i for xb, yb in _loader(False) for i, xb_i in zip(yb, xb)}
    first = [(xb.clone(), yb.clone()) for xb, yb in _loader("flip")]
    again = [(xb.clone(), yb.clone()) for xb, yb in _loader("flip")]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    flipped = []
    for xb, yb in first:
        for i, img in zip(yb, xb):
            original = plain[int(i)]
            assert torch.equal(img, original) or torch.equal(img, original.flip(-1))  # no crop, no shift
            flipped.append(not torch.equal(img, original))
    assert 4 < sum(flipped) < 28  # about half
    other_epoch = [xb for xb, _ in _loader("flip", epoch=1)]
    assert any(not torch.equal(a[0], b) for a, b in zip(first, other_epoch))
    # the order of an epoch is the augmentation's alone: flip-only batches hold the same samples as plain ones
    assert [yb.tolist() for _, yb in first] == [yb.tolist() for _, yb in _loader(False)]


def test_flip_of_event_frames_is_one_flip_per_sample():
    from snnrobust.data.transforms import random_flip

    frames = torch.rand(16, 4, 2, 5, 5)
    out = random_flip(frames, torch.Generator().manual_seed(0))
    for a, b in zip(frames, out):
        assert torch.equal(a, b) or torch.equal(a.flip(-1), b)


def test_crop_flip_augmentation_is_unchanged():
    from snnrobust.data.loader import epoch_generator
    from snnrobust.data.transforms import random_crop_flip

    x = torch.randint(0, 256, (32, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    gen = epoch_generator(3, 0)
    order = torch.randperm(32, generator=gen)
    expected = [random_crop_flip(x[order[s:s + 16]].float().div_(255.0), gen) for s in (0, 16)]
    got = [xb for xb, _ in _loader(True, x=x)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_augment_values_in_the_recipe():
    from snnrobust.training import train_config_from

    assert train_config_from({"augment": "flip"}).augment == "flip"
    assert train_config_from({"augment": True}).augment is True
    for bad in ("crop", 1, "true"):
        with pytest.raises(SnnRobustError) as err:
            train_config_from({"augment": bad})
        assert "augment" in str(err.value) and "\n" not in str(err.value)
