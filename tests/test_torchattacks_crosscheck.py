"""Our PGD and APGD against torchattacks' (the library the SR code attacked with) on one trained SNN in
eval mode with its own fixed surrogate: the same ε, steps and step size, no random start for PGD and the
same seed for APGD's start; robust accuracies agree within 0.5 points (one sample of 240)."""

import pytest
import torch

from snnrobust.attacks import make_attack
from test_attacks_sr import digits16, train_digits_snn

torchattacks = pytest.importorskip("torchattacks")

N = 240  # one sample is 0.42 accuracy points


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is fastest on a shared machine
    data = digits16(tmp_path_factory)
    model = train_digits_snn(data, seed=0, epochs=6)
    x, y = next(iter(data.loader("test", N, shuffle=False, seed=0)))
    yield model, x, y
    torch.set_num_threads(threads)


def _points(model, z, y) -> float:
    with torch.no_grad():
        return 100.0 * int((model(z).argmax(1) == y).sum()) / N


@pytest.mark.parametrize("eps", [8 / 255, 16 / 255])
def test_pgd_agrees_with_torchattacks(setup, eps):
    model, x, y = setup
    ours = make_attack("pgd", eps=eps, steps=10, alpha=eps / 4, random_start=False)(model, x, y)
    theirs = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=10, random_start=False)(x, y)
    a, b = _points(model, ours, y), _points(model, theirs, y)
    assert abs(a - b) <= 0.5, (a, b)
    assert a < _points(model, x, y)


@pytest.mark.parametrize("eps", [8 / 255, 16 / 255])
def test_apgd_agrees_with_torchattacks(setup, eps):
    """torchattacks' APGD attacks only the clean-correct samples, its start drawn from the global RNG
    seeded with ``seed``: both get those samples and a generator with that seed, so the starts match."""
    model, x, y = setup
    with torch.no_grad():
        keep = model(x).argmax(1) == y
    xc, yc = x[keep], y[keep]
    ours = make_attack("apgd", eps=eps, steps=10, n_restarts=1, loss="ce", rho=0.75)(
        model, xc, yc, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng():
        theirs = torchattacks.APGD(model, norm="Linf", eps=eps, steps=10, n_restarts=1, seed=0, loss="ce",
                                   rho=0.75)(xc, yc)
    a, b = _points(model, ours, yc), _points(model, theirs, yc)
    assert abs(a - b) <= 0.5, (a, b)
    assert a < _points(model, xc, yc)
