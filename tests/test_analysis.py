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
