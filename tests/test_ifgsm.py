"""I-FGSM and MI-FGSM on the shared sign-gradient loop: α = ε/steps and no random start, MI-FGSM's momentum over
ℓ1-normalised gradients checked by hand, and MI-FGSM with decay 0 being I-FGSM."""

import pytest
import torch
import torch.nn.functional as F

from snnrobust.attacks import ATTACKS, make_attack
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model

EPS = 8 / 255


def _batch(n=16, shape=(3, 8, 8), seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_ifgsm_is_pgd_without_random_start_and_alpha_eps_over_steps(toy_model):
    x, y = _batch()
    ifgsm = make_attack("ifgsm", eps=EPS, steps=5)
    assert ifgsm.alpha == EPS / 5 and ifgsm.random_start is False
    pgd = make_attack("pgd", eps=EPS, steps=5, alpha=EPS / 5, random_start=False)
    assert torch.equal(ifgsm(toy_model, x, y, torch.Generator().manual_seed(0)), pgd(toy_model, x, y))


def test_mifgsm_with_decay_zero_is_ifgsm(toy_model):
    x, y = _batch()
    mi = make_attack("mifgsm", eps=EPS, steps=6, decay=0.0)(toy_model, x, y)
    assert torch.equal(mi, make_attack("ifgsm", eps=EPS, steps=6)(toy_model, x, y))


def test_mifgsm_with_decay_zero_is_ifgsm_in_spike_space():
    """Spike space puts samples on dim 1 ([T, B, ...]): the ℓ1 norm is still per sample."""
    torch.manual_seed(0)
    model = build_model("snn_vgg_tiny", 4, (3, 8, 8), T=2, width=0.5)
    x, y = _batch(4)
    for m in model.modules():  # BatchNorm statistics of this batch, so that the untrained SNN spikes
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        model.train()(x)
    model.eval()
    mi = make_attack("mifgsm", eps=0.1, steps=3, decay=0.0, space="spike")(model, x, y)
    assert torch.equal(mi, make_attack("ifgsm", eps=0.1, steps=3, space="spike")(model, x, y))
    assert not torch.equal(mi, model.encode(x))  # the gradient reached the input: the point moved


def test_mifgsm_momentum_by_hand(toy_model):
    """Dong et al. (2018), Alg. 1: g ← μ·g + ∇/‖∇‖₁ per sample, x ← Π(x + α·sign(g)), written out with autograd."""
    x, y = _batch()
    steps, decay = 4, 0.7
    alpha = EPS / steps
    g, z = torch.zeros_like(x), x.clone()
    for _ in range(steps):
        zr = z.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(toy_model(zr), y, reduction="sum"), zr)
        g = decay * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)
        z = torch.clamp(torch.clamp(z + alpha * g.sign(), x - EPS, x + EPS), 0, 1)
    out = make_attack("mifgsm", eps=EPS, steps=steps, decay=decay)(toy_model, x, y)
    torch.testing.assert_close(out, z, rtol=0, atol=1e-7)
    # the momentum matters: with decay 0 the point differs
    assert not torch.equal(out, make_attack("mifgsm", eps=EPS, steps=steps, decay=0.0)(toy_model, x, y))


def test_options_and_columns():
    assert {"eps", "steps", "loss", "gradient", "space", "mode"} <= ATTACKS.option_names("ifgsm")
    assert "alpha" not in ATTACKS.option_names("ifgsm")  # α is ε/steps
    assert {"decay"} <= ATTACKS.option_names("mifgsm")
    assert make_attack("mifgsm", eps=0.1).columns()["decay"] == 1.0  # Dong et al.'s μ
    with pytest.raises(SnnRobustError, match="decay.*>= 0") as exc:
        make_attack("mifgsm", eps=0.1, decay=-1)
    assert "\n" not in str(exc.value)
