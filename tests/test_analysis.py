"""∇x f_y (SR Eq. 9): f_y definition, gradient vs finite difference, statistics."""

import torch

from snnrobust.analysis import fy_two_logit, grad_fy, gradient_norm_stats


def test_fy_is_two_logit_softmax():
    logits = torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, -1.0]])
    y = torch.tensor([0, 2])
    # Independent: e^{z_y} / (e^{z_y} + e^{z_max other}) written out.
    expected = torch.tensor([
        torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(1.0))),
        torch.exp(torch.tensor(-1.0)) / (torch.exp(torch.tensor(-1.0)) + torch.exp(torch.tensor(3.0))),
    ])
    torch.testing.assert_close(fy_two_logit(logits, y), expected)


def test_fy_has_no_overflow_for_large_logits():
    out = fy_two_logit(torch.tensor([[1000.0, -1000.0]]), torch.tensor([0]))
    assert torch.isfinite(out).all() and out.item() == 1.0


def test_grad_fy_matches_finite_difference(toy_model):
    model = toy_model.double()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 3])
    grad = grad_fy(model, x, y)
    h = 1e-6
    for idx in [(0, 0, 1, 2), (2, 2, 7, 0), (1, 1, 4, 4)]:
        e = torch.zeros_like(x)
        e[idx] = h
        fd = ((fy_two_logit(model(x + e), y) - fy_two_logit(model(x - e), y)) / (2 * h))[idx[0]]
        assert abs(fd.item() - grad[idx].item()) < 1e-7


def test_gradient_norm_stats():
    g = torch.zeros(2, 1, 2, 2)
    g[0, 0, 0, 0], g[0, 0, 1, 1] = 3.0, -4.0
    s = gradient_norm_stats(g)
    torch.testing.assert_close(s["l0_fraction"], torch.tensor([0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(s["l1"], torch.tensor([7.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(s["l2"], torch.tensor([5.0, 0.0], dtype=torch.float64))
    assert gradient_norm_stats(g, zero_tol=3.5)["l0_fraction"][0].item() == 0.25


def _confident_linear(scale: float) -> torch.nn.Module:
    """A linear classifier on 3x8x8 inputs whose logit margin grows with ``scale``."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(192, 4)
    with torch.no_grad():
        lin.weight.mul_(scale)
    return torch.nn.Sequential(torch.nn.Flatten(), lin).eval()


def test_grad_fy_is_not_zero_for_a_confident_sample():
    """float32 σ(m) rounds to 1 above m ≈ 17, so σ(1 − σ) would give exactly 0; the stable σ' must
    agree with a float64 reference at margins above 20 (and below ~100, where e^{−m} still fits)."""
    model = _confident_linear(100.0)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    top2 = logits.topk(2, dim=1).values
    margin = top2[:, 0] - top2[:, 1]
    confident = (margin > 20) & (margin < 80)
    assert confident.sum() >= 2 and torch.sigmoid(margin[confident]).eq(1.0).all()  # saturated in float32
    grad = grad_fy(model, x, y)[confident]
    # Independent float64 reference: ∇f_y = σ(m)·σ(−m)·∇m (no 1 − σ to cancel), m = z_y − z_ỹ.
    model64 = _confident_linear(100.0).double()
    x64 = x.double().requires_grad_(True)
    z = model64(x64)
    m = z.gather(1, y[:, None]).squeeze(1) - z.scatter(1, y[:, None], float("-inf")).max(1).values
    (grad_m,) = torch.autograd.grad(m.sum(), x64)
    ref = (torch.sigmoid(m) * torch.sigmoid(-m)).detach().view(-1, 1, 1, 1) * grad_m
    assert (grad.flatten(1).abs().sum(1) > 0).all()
    torch.testing.assert_close(grad.double(), ref[confident], rtol=1e-4, atol=0.0)


class _TimeSteps(torch.nn.Module):
    """A non-spiking stand-in with ``T`` steps: its logits are the time mean, as an SNN's are."""

    def __init__(self, net, T):
        super().__init__()
        self.net, self.T = net, T

    def forward(self, x):
        return self.net(x)


def test_fy_readings_paper_scales_the_margin_by_T():
    """paper: f_y = σ(T·Δ̄) from the summed output; released: σ(Δ̄) from the time-mean logits."""
    T = 4
    model = _TimeSteps(_confident_linear(0.3).double(), T)
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    for fy, factor in (("paper", T), ("released", 1)):
        xr = x.clone().requires_grad_(True)
        z = model(xr)
        z_y = z.gather(1, y[:, None]).squeeze(1)
        z_o = z.scatter(1, y[:, None], float("-inf")).max(1).values
        (ref,) = torch.autograd.grad(torch.sigmoid(factor * (z_y - z_o)).sum(), xr)
        torch.testing.assert_close(grad_fy(model, x, y, fy=fy), ref)
    ann = _confident_linear(0.3).double()
    torch.testing.assert_close(grad_fy(ann, x, y, fy="paper"), grad_fy(ann, x, y, fy="released"))


def test_unknown_fy_reading_is_a_one_line_error(toy_model):
    import pytest

    from snnrobust.errors import SnnRobustError

    with pytest.raises(SnnRobustError, match="unknown f_y reading 'spikes'; choose one of: paper, released"):
        grad_fy(toy_model, torch.rand(1, 3, 8, 8), torch.tensor([0]), fy="spikes")
