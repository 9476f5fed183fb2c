"""``resnet18``'s ``width`` option (the Spiking-PGD study's labelled stand-in below 1): width 1 is torchvision's
model bit for bit, a quarter width has every stage at a quarter and about 1/16 of the parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnrobust.errors import SnnRobustError
from snnrobust.models import MODELS, build_model


def _build(**opts):
    torch.manual_seed(0)
    return build_model("resnet18", 10, (3, 32, 32), **opts).eval()


def test_width_one_equals_the_model_without_the_option():
    x = torch.rand(3, 3, 32, 32)
    plain, one = _build(), _build(width=1.0)
    assert torch.equal(plain(x), one(x))
    assert [p.shape for p in plain.parameters()] == [p.shape for p in one.parameters()]


def test_quarter_width_scales_every_stage_and_keeps_image_and_classes():
    full, quarter = _build(), _build(width=0.25)
    convs = [m for m in quarter.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 3
    assert {m.out_channels for m in convs} == {16, 32, 64, 128}
    fc = [m for m in quarter.modules() if isinstance(m, nn.Linear)][-1]
    assert (fc.in_features, fc.out_features) == (128, 10)
    ratio = sum(p.numel() for p in quarter.parameters()) / sum(p.numel() for p in full.parameters())
    assert 1 / 20 < ratio < 1 / 12
    assert quarter(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad", [0, -0.5, "wide"])
def test_bad_width_is_a_one_line_error(bad):
    with pytest.raises(SnnRobustError) as err:
        MODELS.check_options("resnet18", {"width": bad})
    assert "width" in str(err.value) and "\n" not in str(err.value)
