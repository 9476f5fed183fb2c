"""Encoders: direct is exact repeats; phase coding reconstructs the pixel and has an STE gradient;
SNNs normalise before the encoder, and an encoder reading raw pixels refuses normalisation."""

import pytest
import torch

from snnrobust.encoding import ENCODERS, make_encoder
from snnrobust.errors import SnnRobustError


def _bytes_image():
    torch.manual_seed(0)
    byte = torch.randint(0, 256, (2, 3, 4, 4)).float()
    byte[0, 0, 0, :4] = torch.tensor([0.0, 1.0, 128.0, 255.0])
    return byte, byte / 255.0


def test_direct_is_exact_repeats():
    x = torch.rand(2, 3, 4, 4)
    y = make_encoder("direct", 5)(x)
    assert y.shape == (5, 2, 3, 4, 4)
    for t in range(5):
        assert torch.equal(y[t], x)


@pytest.mark.parametrize("T", [8, 10, 16])
def test_phase_weighted_cycle_reconstructs_byte(T):
    """Σ_{t in a full K=8 cycle} ω(t)·s(t) == byte/256 exactly; steps past K repeat bit-planes."""
    byte, x = _bytes_image()
    y = make_encoder("phase", T)(x)
    assert y.shape == (T, 2, 3, 4, 4)
    assert torch.equal(y[:8].sum(0), byte / 256.0)
    for t in range(8, T):
        assert torch.equal(y[t], y[t - 8])


def test_phase_unweighted_bits_are_msb_first():
    byte, x = _bytes_image()
    bits = make_encoder("phase", 8, weighted=False)(x)
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal((bits * (2.0 ** torch.arange(7, -1, -1)).view(8, 1, 1, 1, 1)).sum(0), byte)
    assert bits[:, 0, 0, 0, 2].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]  # 128 = MSB only


def test_phase_smaller_K_keeps_top_bits():
    byte, x = _bytes_image()
    y = make_encoder("phase", 4, K=4)(x)
    assert torch.equal(y.sum(0), torch.floor(byte / 16) / 16)


def test_phase_ste_gradient():
    _, x = _bytes_image()
    x.requires_grad_(True)
    w = torch.randn(10, *x.shape)
    (g,) = torch.autograd.grad((make_encoder("phase", 10)(x) * w).sum(), x)
    assert g.shape == x.shape
    torch.testing.assert_close(g, w.sum(0))  # identity straight-through per step


def test_errors():
    with pytest.raises(SnnRobustError):
        make_encoder("poissonish", 4)
    with pytest.raises(SnnRobustError):
        make_encoder("direct", 0)
    with pytest.raises(SnnRobustError):
        make_encoder("phase", 4, K=9)
    with pytest.raises(SnnRobustError):
        make_encoder("direct", 4, K=8)


@pytest.mark.parametrize("name", [n for n in ENCODERS.names() if n != "events"])
def test_registry_shapes(name):
    assert make_encoder(name, 3)(torch.rand(1, 1, 2, 2)).shape == (3, 1, 1, 2, 2)


def test_events_encoder_moves_time_first_and_checks_frames():
    """Pre-encoded frames [B, T, C, H, W] → [T, B, C, H, W]; a sequence of the wrong length is one line."""
    x = torch.rand(2, 3, 1, 2, 2)
    out = make_encoder("events", 3)(x)
    assert out.shape == (3, 2, 1, 2, 2) and torch.equal(out[1, 0], x[0, 1])
    with pytest.raises(SnnRobustError, match="events encoder needs"):
        make_encoder("events", 4)(x)


def _snn(**opts):
    from snnrobust.models import build_model

    torch.manual_seed(0)
    return build_model("snn_vgg_tiny", 4, (3, 16, 16), width=0.25, **opts).eval()


MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def test_model_normalises_before_the_encoder():
    """encode(x) = encoder(normalise(x)) and forward(x) = forward_encoded(encode(x)), from rest."""
    model = _snn(T=3, mean=MEAN, std=STD)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    expected = ((x - mean) / std).unsqueeze(0).expand(3, *x.shape)
    torch.testing.assert_close(model.encode(x), expected)
    with torch.no_grad():
        out = model(x)
        model.forward_encoded(torch.rand(3, 2, 3, 16, 16))  # another input in between leaves no trace
        torch.testing.assert_close(model.forward_encoded(model.encode(x)), out, rtol=0, atol=0)
    lo, hi = model.encoded_bounds()
    torch.testing.assert_close(lo.flatten(), ((0 - mean) / std).flatten())
    torch.testing.assert_close(hi.flatten(), ((1 - mean) / std).flatten())


def test_normalize_false_ignores_mean_and_std():
    raw, ignored = _snn(T=2), _snn(T=2, mean=MEAN, std=STD, normalize=False)
    ignored.load_state_dict(raw.state_dict())
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(ignored.encode(x), raw.encode(x)) and torch.equal(ignored.encode(x)[0], x)


def test_phase_encoder_takes_raw_pixels_only():
    with pytest.raises(SnnRobustError, match="reads raw pixels in \\[0, 1\\]: set normalize: false") as exc:
        _snn(T=8, encoder="phase", mean=MEAN, std=STD)
    assert "\n" not in str(exc.value)
    model = _snn(T=8, encoder="phase", mean=MEAN, std=STD, normalize=False)
    byte, x = _bytes_image()
    tiled = x.repeat(1, 1, 4, 4)  # the 4x4 test image tiled to the model's 16x16 input
    assert torch.equal(model.encode(tiled).sum(0)[..., :4, :4], byte / 256.0)  # raw pixels were encoded
    lo, hi = model.encoded_bounds()
    assert lo.shape == hi.shape == (8, 1, 1, 1, 1) and lo.eq(0).all()
    torch.testing.assert_close(hi.flatten(), 2.0 ** -torch.arange(1.0, 9.0))


def test_bad_normalize_option():
    with pytest.raises(SnnRobustError, match="normalize must be true or false"):
        _snn(normalize="yes")
