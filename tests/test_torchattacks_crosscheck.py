"""Our PGD, APGD and released-form RFGSM against torchattacks' (the library the SR code attacked with) on one
trained SNN in eval mode with its own fixed surrogate: the same ε, steps and step size, no random start for PGD,
the same seed for APGD's start and RFGSM's random step; robust accuracies agree within one sample of the set
scored (0.42 points of 240; APGD scores only the clean-correct samples, so its sample is worth more)."""

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
    """Accuracy (%) over the samples scored: ``len(y)`` of them, which is fewer than N on a subset."""
    with torch.no_grad():
        return 100.0 * int((model(z).argmax(1) == y).sum()) / len(y)


def _one_sample(y) -> float:
    """One sample in accuracy points of the set scored (plus float slack)."""
    return 100.0 / len(y) + 1e-9


@pytest.mark.parametrize("eps", [8 / 255, 16 / 255])
def test_pgd_agrees_with_torchattacks(setup, eps):
    model, x, y = setup
    ours = make_attack("pgd", eps=eps, steps=10, alpha=eps / 4, random_start=False)(model, x, y)
    theirs = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=10, random_start=False)(x, y)
    a, b = _points(model, ours, y), _points(model, theirs, y)
    assert abs(a - b) <= _one_sample(y), (a, b)
    assert a < _points(model, x, y)


@pytest.mark.parametrize("eps,alpha", [(8 / 255, 8 / 255), (8 / 255, 4 / 255)])
def test_rfgsm_released_agrees_with_torchattacks(setup, eps, alpha):
    """torchattacks' RFGSM with steps = 1 is 3.2.7's update (3.5 changed only the defaults): its random step
    comes from the global RNG, ours from a generator with the same seed, so the points match."""
    model, x, y = setup
    ours = make_attack("rfgsm", eps=eps, alpha=alpha, form="released")(model, x, y,
                                                                       generator=torch.Generator().manual_seed(5))
    with torch.random.fork_rng():
        torch.manual_seed(5)
        theirs = torchattacks.RFGSM(model, eps=eps, alpha=alpha, steps=1)(x, y)
    torch.testing.assert_close(ours, theirs)
    a, b = _points(model, ours, y), _points(model, theirs, y)
    assert abs(a - b) <= _one_sample(y), (a, b)
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
    assert _points(model, xc, yc) == 100.0  # the subset is the clean-correct samples, scored over themselves
    a, b = _points(model, ours, yc), _points(model, theirs, yc)
    assert abs(a - b) <= _one_sample(yc), (a, b)
    assert a < 100.0
