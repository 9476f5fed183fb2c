"""Training methods of the SR paper: at, rat (SNN-RAT), sr (Algorithm 1) and sr_star.

Checked against independent computations: the finite-difference SR term against autograd's ‖∇x f_y‖₁,
both SR forms against hand-derived values on a linear model, pass counts against a counting wrapper
(λ = 0 costs exactly what vanilla costs), the RAT retraction and simplex projection against their
definitions, one-line errors for bad options, and an exact resume of an AT run.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnrobust.data import load_prepared
from snnrobust.errors import SnnRobustError
from snnrobust.methods import METHODS, make_method
from snnrobust.methods.at import AT
from snnrobust.methods.rat import RAT, project_simplex
from snnrobust.methods.sr import SR, SRStar
from snnrobust.models import build_model
from snnrobust.models.snn_wrn import ConvexCombination
from snnrobust.seeding import seed_everything
from snnrobust.training import TrainConfig, build_optimizer, train

from conftest import Crash, crash_after

pytestmark = pytest.mark.usefixtures("one_thread")

PGD2 = {"name": "pgd", "options": {"steps": 2}}




def _mlp(seed: int = 0, dtype=torch.float32) -> nn.Module:
    """A smooth (tanh) classifier on 1×4×4 images, 4 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4)).to(dtype)


def _batch(n: int = 8, seed: int = 0, dtype=torch.float32, classes: int = 4):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=gen, dtype=dtype), torch.randint(0, classes, (n,), generator=gen)


def test_methods_are_registered():
    assert {"at", "rat", "sr", "sr_star", "vanilla"} <= set(METHODS.names())


# -- the SR term ---------------------------------------------------------------------------------------
def _grad_l1_by_hand(model, x, y):
    """‖∇x f_y‖₁ per sample, f_y = e^{z_y}/(e^{z_y} + e^{z_ỹ}) written out (Eq. 9), ỹ the strongest wrong class."""
    x = x.clone().requires_grad_(True)
    z = model(x)
    fys = []
    for i in range(len(y)):
        o = max((j for j in range(z.shape[1]) if j != int(y[i])), key=lambda j: float(z[i, j].detach()))
        fys.append(torch.exp(z[i, y[i]]) / (torch.exp(z[i, y[i]]) + torch.exp(z[i, o])))
    (g,) = torch.autograd.grad(torch.stack(fys).sum(), x)
    return g.flatten(1).abs().sum(1)


@pytest.mark.parametrize("h, dtype", [(0.01, torch.float32), (1e-3, torch.float64), (1e-5, torch.float64)])
def test_finite_difference_term_approximates_the_l1_gradient_norm(h, dtype):
    """Prop. 4.4: (f_y(x + h·sign ∇f_y) − f_y(x))/h → ‖∇x f_y‖₁ for a smooth model and small h (the
    paper's h = 0.01 in float32 included)."""
    model = _mlp(dtype=dtype)
    x, y = _batch(dtype=dtype)
    method = SR(lam=1.0, h=h, fy="released")
    _, q = method.sr.quotient(model, x, y)
    l1 = _grad_l1_by_hand(model, x, y)
    assert (l1 > 0).all()
    assert torch.all(q > 0), "a step along sign(∇f_y) must raise f_y"
    assert torch.allclose(q, l1, rtol=0.1)
    assert math.isclose(q.mean().item(), l1.mean().item(), rel_tol=0.1)


class _Linear3(nn.Module):
    """z = W x for 2-D inputs and 3 classes, with T = 4 so the two f_y readings differ."""

    T = 4

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))

    def forward(self, x):
        return self.lin(x)


def _sigmoid(m: float) -> float:
    return 1.0 / (1.0 + math.exp(-m))


@pytest.mark.parametrize("form", ["paper", "released"])
@pytest.mark.parametrize("fy", ["paper", "released"])
def test_sr_forms_on_a_hand_built_linear_model(form, fy):
    """f_y = σ(s·Δ·x) with Δ = w_y − w_ỹ and s = T (fy paper, summed output) or 1 (time mean); along
    d = sign(Δ) the margin grows by s·h·‖Δ‖₁, so q = (σ(s(m + h‖Δ‖₁)) − σ(s·m))/h; ỹ is the one of x even where
    x̂'s strongest wrong class differs (sample 0, as the released code does)."""
    model = _Linear3().double()
    W = model.lin.weight.detach()
    x = torch.tensor([[0.2, 0.5], [0.8, 0.1]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    h, lam, s = 0.5, 0.3, (4.0 if fy == "paper" else 1.0)
    # Sample 0: ỹ = 1 at x (z = [0.4, 0.5, 0.2]) but 2 at x̂ = [0.7, 0] (z = [1.4, 0, 0.7]): ỹ must be reused.
    assert int((W @ (x[0] + h * torch.sign(W[0] - W[1]))).argsort()[1]) == 2
    expected_q = []
    for xi, yi, oi in ((x[0], 0, 1), (x[1], 2, 0)):
        delta = W[yi] - W[oi]
        m, l1 = float(delta @ xi), float(delta.abs().sum())
        expected_q.append((_sigmoid(s * (m + h * l1)) - _sigmoid(s * m)) / h)
    reduce = {"paper": lambda q: sum(abs(v) for v in q) / len(q), "released": lambda q: sum(v * v for v in q) / len(q)}
    method = make_method("sr", lam=lam, h=h, form=form, fy=fy)
    loss, logits = method.loss(model, x, y)
    assert torch.allclose(logits, x @ W.T)
    reg = (loss - F.cross_entropy(logits, y)).item()
    assert math.isclose(reg, lam * reduce[form](expected_q), rel_tol=1e-9)
    _, q = method.sr.quotient(model, x, y)
    assert torch.allclose(q, torch.tensor(expected_q, dtype=torch.float64), rtol=1e-9)
    assert method.sr.mean_reg() == pytest.approx(reg)


def test_the_sr_loss_trains_through_both_forwards():
    """loss = CE(x) + reg, and the reg's gradient in the weights (through f_y(x̂) and f_y(x)) is in it."""
    model = _mlp(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    grads = {}
    for lam in (0.0, 0.5):
        model.zero_grad()
        loss, _ = SR(lam=lam, h=0.01).loss(model, x, y)
        loss.backward()
        grads[lam] = model[1].weight.grad.clone()
    assert not torch.allclose(grads[0.0], grads[0.5])


# -- pass counts -----------------------------------------------------------------------------------------
class Counting(nn.Module):
    """Counts forward calls and backward passes through the wrapped model's output (a hook on it)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.T = model, getattr(model, "T", 1)
        self.forward_calls = self.backward_calls = 0

    def forward(self, x):
        self.forward_calls += 1
        out = self.model(x)
        if out.requires_grad:
            out.register_hook(self._backward)
        return out

    def _backward(self, grad):
        self.backward_calls += 1

    def counts(self):
        return self.forward_calls, self.backward_calls


def _snn(seed=0):
    torch.manual_seed(seed)
    return build_model("snn_vgg_tiny", 4, (1, 8, 8), T=2, width=0.5)


def _one_step(method, model, x, y):
    loss, _ = method.loss(model, x, y)
    loss.backward()
    return loss


@pytest.mark.parametrize("name, options, passes", [
    ("vanilla", {}, (1, 1)),
    ("sr", {"lam": 0.0}, (1, 1)),
    ("sr", {"lam": 0.008}, (2, 3)),  # x and x̂ forwards; the input gradient, then one backward through both
    ("at", {"attack": PGD2}, (3, 3)),  # 2 attack steps + the training forward
    ("rat", {"attack": PGD2}, (3, 3)),
    ("sr_star", {"attack": PGD2, "lam": 0.002}, (4, 5)),
])
def test_passes_per_step(name, options, passes):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 1, 8, 8, generator=gen), torch.randint(0, 4, (6,), generator=gen)
    model = Counting(_snn()).train()
    method = make_method(name, **options)
    _one_step(method, model, x, y)
    assert model.counts() == passes
    if hasattr(method, "cost"):
        assert (method.cost.forward, method.cost.backward) == passes


def test_lam_zero_is_vanilla_exactly():
    """λ = 0 skips the SR branch: the same loss, logits and weight gradients as vanilla, at vanilla's cost."""
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(6, 1, 8, 8, generator=gen), torch.randint(0, 4, (6,), generator=gen)
    out = {}
    for name, opts in (("vanilla", {}), ("sr", {"lam": 0.0})):
        model = Counting(_snn()).train()
        loss = _one_step(make_method(name, **opts), model, x, y)
        out[name] = (loss.item(), model.counts(), [p.grad.clone() for p in model.parameters()])
    assert out["vanilla"][:2] == out["sr"][:2]
    assert all(torch.equal(a, b) for a, b in zip(out["vanilla"][2], out["sr"][2]))


class ModeRecorder(nn.Module):
    """Records the mode (training or not) of every forward of the wrapped model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.modes = model, []

    def forward(self, x):
        self.modes.append(self.training)
        return self.model(x)


@pytest.mark.parametrize("mode, attack_modes", [(None, [False, False]), ("train", [True, True])])
def test_the_inner_attack_mode_is_the_attacks_and_the_models_mode_comes_back(mode, attack_modes):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 1, 8, 8, generator=gen), torch.randint(0, 4, (4,), generator=gen)
    options = {"steps": 2, **({"mode": mode} if mode else {})}
    model = ModeRecorder(_snn()).train()
    AT(attack={"name": "pgd", "options": options}).loss(model, x, y)
    assert model.modes == [*attack_modes, True] and model.training


# -- RAT -------------------------------------------------------------------------------------------------
class _ConvMix(nn.Module):
    """A conv, two linear heads mixed by a ConvexCombination (as SNN-RAT's WRN residuals are)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.a, self.b = nn.Linear(64, 6), nn.Linear(64, 6)
        self.head = nn.Linear(6, 3)
        self.combine = ConvexCombination(2)

    def forward(self, x):
        h = torch.tanh(self.conv(x)).flatten(1)
        return self.head(torch.tanh(self.combine(self.a(h), self.b(h))))


def _orthogonality_gap(w: torch.Tensor) -> float:
    w = w.detach().flatten(1)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    return float((gram - torch.eye(len(gram))).norm())


def _train_steps(method, steps=12, lr=0.2):
    torch.manual_seed(0)
    model = _ConvMix()
    optimizer = build_optimizer(model, method, TrainConfig(lr=lr, weight_decay=0.0, momentum=0.0))
    method.on_run_start(0)
    for k in range(steps):
        x, y = _batch(16, seed=k, classes=3)
        optimizer.zero_grad()
        _one_step(method, model, x, y)
        optimizer.step()
        method.after_step(model, optimizer)
    return model


def test_rat_keeps_weights_closer_to_orthogonal_and_residual_weights_on_the_simplex():
    at = _train_steps(AT(attack=PGD2, eps=8 / 255))
    rat = _train_steps(RAT(attack=PGD2, eps=8 / 255, beta=0.05))
    for name in ("conv", "a", "b", "head"):
        w_at, w_rat = getattr(at, name).weight, getattr(rat, name).weight
        assert _orthogonality_gap(w_rat) < _orthogonality_gap(w_at), name
    w = rat.combine.weight.detach()
    assert (w >= 0).all() and math.isclose(float(w.sum()), 1.0, abs_tol=1e-6)
    off = at.combine.weight.detach()
    assert not math.isclose(float(off.sum()), 1.0, abs_tol=1e-4), "AT must leave them off the simplex here"


def test_retraction_is_the_snn_rat_update_and_large_linears_get_a_seeded_row_subset():
    beta = 0.1
    method = RAT(beta=beta, row_threshold=12, rows_fraction=0.25)
    method.on_run_start(3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(5, 12), nn.Linear(12, 2))
    before = [m.weight.detach().clone() for m in (model[0], model[2], model[3])]
    method.after_step(model, None)
    conv = before[0].flatten(1)
    assert torch.allclose(model[0].weight.flatten(1), (1 + beta) * conv - beta * conv @ conv.T @ conv, atol=1e-6)
    small = before[2]
    assert torch.allclose(model[3].weight, (1 + beta) * small - beta * small @ small.T @ small, atol=1e-6)
    changed = (model[2].weight != before[1]).any(1)
    assert int(changed.sum()) == 3  # 25 % of 12 rows (a layer with >= row_threshold rows)
    rows = before[1][changed]
    assert torch.allclose(model[2].weight[changed], (1 + beta) * rows - beta * rows @ rows.T @ rows, atol=1e-6)
    # The rows depend only on (seed, step): a fresh method at the same seed picks the same ones, another seed others.
    picks = {}
    for seed in (3, 3, 4):
        m = RAT(beta=beta, row_threshold=12, rows_fraction=0.25)
        m.on_run_start(seed)
        lin = nn.Linear(5, 12)
        start = lin.weight.detach().clone()
        m.after_step(lin, None)
        picks.setdefault(seed, []).append(tuple((lin.weight != start).any(1).nonzero().flatten().tolist()))
    assert picks[3][0] == picks[3][1] == tuple(changed.nonzero().flatten().tolist())
    assert picks[4][0] != picks[3][0]


def test_simplex_projection_is_the_euclidean_projection():
    assert torch.allclose(project_simplex(torch.tensor([2.0, 0.0])), torch.tensor([1.0, 0.0]))
    assert torch.allclose(project_simplex(torch.tensor([0.7, 0.7])), torch.tensor([0.5, 0.5]))
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        v = torch.randn(4, generator=gen, dtype=torch.float64) * 2
        w = project_simplex(v)
        assert (w >= 0).all() and math.isclose(float(w.sum()), 1.0, abs_tol=1e-12)
        others = torch.distributions.Dirichlet(torch.ones(4, dtype=torch.float64)).sample((500,))
        assert float((v - w).norm()) <= float((v - others).norm(dim=1).min()) + 1e-12


def test_retracted_weights_have_no_weight_decay():
    model = _ConvMix()
    optimizer = build_optimizer(model, RAT(), TrainConfig(weight_decay=5e-4))
    groups = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert len(groups) == len(list(model.parameters()))
    for name, p in model.named_parameters():
        retracted = name.endswith("weight") and not name.startswith("combine")
        assert groups[id(p)] == (0.0 if retracted else 5e-4), name


def test_rat_no_decay_all_is_snn_rats_released_reading():
    """``no_decay: all`` (SNN-RAT's ``--special reg``): weight decay 0 on every parameter, each exactly once;
    the retraction and the simplex projection are unchanged."""
    model = _ConvMix()
    method = RAT(no_decay="all")
    optimizer = build_optimizer(model, method, TrainConfig(weight_decay=5e-4))
    groups = [(id(p), g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(i for i, _ in groups) == sorted(id(p) for p in model.parameters())
    assert {wd for _, wd in groups} == {0.0}
    assert "no_decay='all'" in repr(method) and RAT().no_decay == "retracted"


# -- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, message", [
    ("sr", {"lam": -0.1}, "lam"),
    ("sr", {"lam": float("nan")}, "lam"),
    ("sr", {"h": 0.0}, "h"),
    ("sr", {"h": -0.01}, "h"),
    ("sr", {"form": "abs"}, "form"),
    ("sr", {"fy": "sum"}, "fy"),
    ("sr_star", {"lam": -1.0}, "lam"),
    ("at", {"attack": {"name": "nope"}}, "unknown attack 'nope'"),
    ("sr_star", {"attack": {"name": "nope"}}, "unknown attack 'nope'"),
    ("rat", {"attack": {"name": "pgd", "options": {"steps": 0}}}, "steps"),
    ("at", {"attack": {"name": "pgd", "options": {"eps": 0.1}}}, "eps"),
    ("at", {"attack": {"name": "pgd", "extra": 1}}, "{name, options}"),
    ("at", {"eps": 2.0}, "eps"),
    ("at", {"clean_weight": 1.5}, "clean_weight"),
    ("rat", {"rows_fraction": 0.0}, "rows_fraction"),
    ("rat", {"no_decay": "some"}, "no_decay"),
])
def test_bad_options_are_one_line_errors(name, options, message):
    with pytest.raises(SnnRobustError) as err:
        make_method(name, **options)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("cls, options", [
    (SR, {"lam": -1.0}), (SR, {"h": 0.0}), (SR, {"form": "abs"}), (SR, {"fy": "sum"}),
    (SRStar, {"attack": {"name": "nope"}}), (AT, {"attack": {"name": "nope"}}), (RAT, {"beta": -1.0}),
    (RAT, {"no_decay": "some"}),
])
def test_direct_construction_validates_too(cls, options):
    with pytest.raises(SnnRobustError) as err:
        cls(**options)
    assert "\n" not in str(err.value)


# -- resume ----------------------------------------------------------------------------------------------
def _digits_snn(data, seed=0):
    seed_everything(seed)
    meta = data.meta
    return build_model("snn_vgg_tiny", meta["num_classes"], tuple(meta["in_shape"]), T=2, width=0.5,
                       mean=meta["mean"], std=meta["std"])


def test_an_at_run_killed_after_epoch_one_resumes_exactly(digits_npz, tmp_path):
    """The inner attack's random starts come from (run seed, step counter); the counter is checkpointed, so
    the resumed run equals the uninterrupted one, and a method that forgets it does not."""
    data = load_prepared(digits_npz)
    cfg = TrainConfig(epochs=2, batch_size=32, seed=0, train_limit=64, eval_limit=32)
    full_model = _digits_snn(data)
    full = train(full_model, AT(attack=PGD2, eps=8 / 255), data, cfg, tmp_path / "full.pt", progress=False)
    assert torch.load(tmp_path / "full.pt", weights_only=True)["method"] == {"inner_attack": {"step": 4}}

    class Forgetful(AT):
        def load_state_dict(self, state):
            pass

    for label, cls, same in (("restored", AT, True), ("forgetful", Forgetful, False)):
        ckpt = tmp_path / f"{label}.pt"
        with pytest.raises(Crash):
            train(_digits_snn(data), cls(attack=PGD2, eps=8 / 255), data, cfg, ckpt, progress=False,
                  on_epoch_end=crash_after(1))
        model = _digits_snn(data, seed=7)
        resumed = train(model, cls(attack=PGD2, eps=8 / 255), data, cfg, ckpt, progress=False)
        assert resumed.resumed_from_epoch == 1
        assert (resumed.metrics == full.metrics) is same, label
        if same:
            for key, value in full_model.state_dict().items():
                assert torch.equal(value, model.state_dict()[key]), key


def test_the_inner_attack_seed_is_the_runs(digits_npz, tmp_path):
    """Two seeds give different adversarial noise; the same seed the same numbers."""
    data = load_prepared(digits_npz)
    runs = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        method = AT(attack=PGD2, eps=8 / 255)
        method.on_run_start(seed)
        x, y = data.train[0][:4].float() / 255, data.train[1][:4]
        runs[label] = method.inner(_digits_snn(data), x, y)
    assert torch.equal(runs["a"], runs["b"]) and not torch.equal(runs["a"], runs["c"])
