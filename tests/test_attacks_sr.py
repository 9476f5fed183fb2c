"""The SR paper's attacks: R+FGSM, APGD, uniform noise, the RGA gradient rule, the surrogate/RGA ensemble
(cascade, γ sweep) and its black-box readings, on a tiny SNN trained once for this module on digits."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from snnrobust.attacks import Ensemble, Transfer, check_attack_options, evaluate_attack, make_attack
from snnrobust.attacks.apgd import checkpoint_periods
from snnrobust.attacks.ensemble import SR_MEMBERS
from snnrobust.attacks.gradient_rules import rate_gradient, rate_slope
from snnrobust.data import load_prepared, prepare_dataset
from snnrobust.errors import SnnRobustError
from snnrobust.models import build_model

EPS = 16 / 255  # mid-range accuracy for PGD on this model, so orderings are informative
N_EVAL = 96
MODEL_OPTS = {"T": 4, "width": 0.5}


def train_digits_snn(data, seed: int, epochs: int, **opts):
    """snn_vgg_tiny trained with plain SGD on 16×16 digits (a few hundred steps), in eval mode."""
    torch.manual_seed(seed)
    model = build_model("snn_vgg_tiny", data.num_classes, data.in_shape, **{**MODEL_OPTS, **opts})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        if epoch == epochs - 1 and epochs > 1:
            for group in optimizer.param_groups:
                group["lr"] = 0.005
        model.train()
        for x, y in data.loader("train", 32, shuffle=True, seed=seed, epoch=epoch):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def digits16(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits16") / "digits16.npz"
    prepare_dataset("digits", out, image_size=16)
    return load_prepared(out)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and a shared 2-core machine thrashes on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return digits16(tmp_path_factory)


@pytest.fixture(scope="module")
def snn(data):
    return train_digits_snn(data, seed=0, epochs=6)


@pytest.fixture(scope="module")
def source_snn(data):
    """Another SNN of the same architecture (other seed, shorter): the black-box source."""
    return train_digits_snn(data, seed=1, epochs=2)


@pytest.fixture(scope="module")
def batch(data):
    return next(iter(data.loader("test", N_EVAL, shuffle=False, seed=0)))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _correct(model, z, y, attack=None):
    with torch.no_grad():
        logits = model(z) if attack is None else attack.predict(model, z)
    return logits.argmax(1) == y


def _acc(model, attack, x, y, seed=0):
    return int(_correct(model, attack(model, x, y, generator=_gen(seed)), y, attack).sum())


# --- R+FGSM and uniform noise: independent computations ---------------------------------------

def _toy_batch(n=16):
    g = _gen(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("alpha", [None, 2 / 255, 8 / 255])
def test_rfgsm_is_a_random_sign_step_then_one_gradient_step(toy_model, alpha):
    x, y = _toy_batch()
    eps = 8 / 255
    a = eps / 2 if alpha is None else alpha
    x1 = (x + a * torch.randn(x.shape, generator=_gen(3)).sign()).clamp(0, 1)
    xr = x1.clone().requires_grad_(True)
    F.cross_entropy(toy_model(xr), y, reduction="sum").backward()
    expected = torch.min(torch.max(x1 + (eps - a) * xr.grad.sign(), x - eps), x + eps).clamp(0, 1)
    atk = make_attack("rfgsm", eps=eps, alpha=alpha)
    torch.testing.assert_close(atk(toy_model, x, y, generator=_gen(3)), expected)
    assert atk.cost.backward == 1 and atk.form == "paper"
    if a == eps:  # paper form with α = ε: no gradient step is left, R+FGSM is random sign noise
        torch.testing.assert_close(expected, x1)


def _rfgsm_torchattacks_327(model, x, y, eps, alpha, generator):
    """torchattacks 3.2.7 ``RFGSM.forward`` with steps = 1 (the SR code's call), re-typed from its update rule:
    a random signed step of α clipped to [0, 1], a gradient step of α·sign(∇ mean CE), δ clipped to [−ε, ε],
    then x + δ clipped to [0, 1]."""
    adv = torch.clamp(x + alpha * torch.randn(x.shape, generator=generator).sign(), min=0, max=1)
    adv.requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
    adv = adv.detach() + alpha * grad.sign()
    delta = torch.clamp(adv - x, min=-eps, max=eps)
    return torch.clamp(x + delta, min=0, max=1)


@pytest.mark.parametrize("eps,alpha", [(8 / 255, None), (8 / 255, 2 / 255), (4 / 255, 8 / 255), (16 / 255, 8 / 255)])
def test_rfgsm_released_form_is_torchattacks_327(toy_model, eps, alpha):
    """``form: released`` is the SR code's RFGSM: step α (8/255 by default) twice, then clip to the ε-ball."""
    x, y = _toy_batch(64)
    a = 8 / 255 if alpha is None else alpha
    expected = _rfgsm_torchattacks_327(toy_model, x, y, eps, a, _gen(3))
    atk = make_attack("rfgsm", eps=eps, alpha=alpha, form="released")
    x_adv = atk(toy_model, x, y, generator=_gen(3))
    torch.testing.assert_close(x_adv, expected)
    assert (atk.alpha, atk.form, atk.cost.backward) == (a, "released", 1)
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    paper = make_attack("rfgsm", eps=eps, alpha=a)(toy_model, x, y, generator=_gen(3))
    if math.isclose(eps, 2 * a):  # torchattacks' own defaults ε = 16/255, α = 8/255: α = ε − α, the same attack
        torch.testing.assert_close(x_adv, paper)
    else:
        assert not torch.allclose(x_adv, paper)


def test_rfgsm_released_with_alpha_eps_moves_about_half_the_pixels_along_the_gradient(toy_model):
    """The SR code's setting α = ε = 8/255 is not random noise: a pixel whose random sign agrees with the
    gradient sign at the random point ends at x + ε·sign(g), the others return to x."""
    x, y = _toy_batch(64)
    x = 0.1 + 0.8 * x  # away from the box, so no clip hides a step
    eps = 8 / 255
    r = torch.randn(x.shape, generator=_gen(5)).sign()
    x1 = (x + eps * r).requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(toy_model(x1), y), x1)
    x_adv = make_attack("rfgsm", eps=eps, form="released")(toy_model, x, y, generator=_gen(5))
    agree = r == g.sign()
    torch.testing.assert_close(x_adv, torch.where(agree, x + eps * g.sign(), x))
    assert 0.4 < agree.float().mean() < 0.6


@pytest.mark.parametrize("name,options", [
    ("rfgsm", {"form": "tramer"}),
    ("rfgsm", {"form": "released", "alpha": -1.0}),
    ("ensemble", {"attack": {"name": "rfgsm", "options": {"form": 1}}}),
])
def test_bad_rfgsm_options_are_one_line_errors(name, options):
    with pytest.raises(SnnRobustError) as exc:
        check_attack_options(name, options)
    assert ("form" in str(exc.value) or "alpha" in str(exc.value)) and "\n" not in str(exc.value)


def test_rfgsm_alpha_above_eps_stays_in_the_ball(toy_model):
    x, y = _toy_batch()
    x_adv = make_attack("rfgsm", eps=2 / 255, alpha=8 / 255)(toy_model, x, y, generator=_gen())
    assert (x_adv - x).abs().max() <= 2 / 255 + 1e-6


def test_random_noise_is_uniform_in_the_ball_and_costs_no_gradient(toy_model):
    x, y = _toy_batch(64)
    eps = 0.1
    atk = make_attack("random", eps=eps)
    x_adv = atk(toy_model, x, y, generator=_gen(5))
    expected = (x + eps * (torch.rand(x.shape, generator=_gen(5)) * 2 - 1)).clamp(0, 1)
    torch.testing.assert_close(x_adv, expected)
    assert atk.cost.backward == 0 and atk.cost.forward == 0
    inside = (x > eps) & (x < 1 - eps)  # away from the box, δ is uniform on [−ε, ε]
    delta = (x_adv - x)[inside]
    assert delta.abs().max() <= eps + 1e-6 and abs(delta.mean()) < 0.01 and abs(delta.std() - eps / math.sqrt(3)) < 0.01


def test_random_draws_keep_the_worst_draw(snn, batch):
    """draws=4 breaks a sample iff one of 4 consecutive uniform draws from the generator breaks it."""
    x, y = batch
    eps = 0.3
    gen = _gen(7)
    singles = [(x + eps * (torch.rand(x.shape, generator=gen) * 2 - 1)).clamp(0, 1) for _ in range(4)]
    any_broken = torch.stack([~_correct(snn, s, y) for s in singles]).any(0)
    atk = make_attack("random", eps=eps, draws=4)
    held = _correct(snn, atk(snn, x, y, generator=_gen(7)), y)
    assert torch.equal(held, ~any_broken) and any_broken.any()
    assert atk.cost.forward == 4 and atk.cost.backward == 0
    assert int(held.sum()) <= _acc(snn, make_attack("random", eps=eps), x, y, seed=7)


def test_random_noise_result_columns_say_which_reading():
    """Tab. 4's two readings (one draw, the released worst of 4) are told apart in every result row."""
    one, four = make_attack("random", eps=0.1), make_attack("random", eps=0.1, draws=4)
    assert (one.columns()["draws"], four.columns()["draws"]) == (1, 4)
    assert {k: v for k, v in four.columns().items() if k != "draws"} == {k: v for k, v in one.columns().items()
                                                                         if k != "draws"}


# --- orderings on the trained SNN --------------------------------------------------------------

def test_attack_strength_orderings_on_a_trained_snn(snn, batch):
    x, y = batch
    clean = int(_correct(snn, x, y).sum())
    pgd10, pgd50 = (_acc(snn, make_attack("pgd", eps=EPS, steps=s), x, y) for s in (10, 50))
    fgsm = _acc(snn, make_attack("fgsm", eps=EPS), x, y)
    rfgsm = _acc(snn, make_attack("rfgsm", eps=EPS), x, y)
    apgd = _acc(snn, make_attack("apgd", eps=EPS, steps=10), x, y)
    random1 = _acc(snn, make_attack("random", eps=EPS), x, y)
    random4 = _acc(snn, make_attack("random", eps=EPS, draws=4), x, y)
    assert pgd50 <= pgd10 + 1 and pgd10 < clean
    assert rfgsm <= clean and apgd <= clean and apgd < clean
    assert fgsm <= random1 and random4 <= random1


# --- APGD -----------------------------------------------------------------------------------------

def test_apgd_checkpoints_follow_the_papers_recurrence():
    """w_j = ⌈p_j·N⌉ with p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), N = 100."""
    p, gaps = [0.0, 0.22], []
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    w = [math.ceil(round(v * 100, 9)) for v in p if v <= 1.0]
    gaps = [b - a for a, b in zip(w, w[1:])]
    periods = checkpoint_periods(100)
    assert [next(periods) for _ in gaps] == gaps


def test_apgd_budget_cost_and_restarts(snn, batch):
    x, y = batch
    one = make_attack("apgd", eps=EPS, steps=5)
    z1 = one(snn, x, y, generator=_gen())
    assert (z1 - x).abs().max() <= EPS + 1e-6 and z1.min() >= 0 and z1.max() <= 1
    assert one.cost.backward == one.cost.forward == 6  # the start point and 5 iterates
    two = make_attack("apgd", eps=EPS, steps=5, n_restarts=2)
    z2 = two(snn, x, y, generator=_gen())
    broken1, broken2 = ~_correct(snn, z1, y), ~_correct(snn, z2, y)
    assert (broken2 | ~broken1).all()  # the first restart is the same run: a second one only adds
    dlr = make_attack("apgd", eps=EPS, steps=5, loss="dlr")
    assert _acc(snn, dlr, x, y) < int(_correct(snn, x, y).sum())


# --- RGA ------------------------------------------------------------------------------------------

def test_rate_slope_by_hand():
    x = torch.tensor([-0.1, 0.0, 0.25, 0.75, 1.5, 2.0, 2.5])
    assert rate_slope(x, 1.0).tolist() == [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]
    # τ = 0.5: (1 − 0.2 + 0.1)/1.5 = 0.6 on [0.5, 2], 0.2 on [0, 0.5)
    torch.testing.assert_close(rate_slope(x, 0.5), torch.tensor([0.0, 0.2, 0.2, 0.6, 0.6, 0.6, 0.0]))


class _RateReference(torch.nn.Module):
    """An IF neuron unrolled in plain torch ops, with a straight-through rate backward:
    spikes forward; ∂out[t]/∂x[t] = 0.5·1[0 ≤ x̄ ≤ 2] (``step``, the rule under test) or
    ∂out[t]/∂x̄ = the same (``mean``, the rate chain rule: mean over t of the upstream gradients)."""

    def __init__(self, combine: str):
        super().__init__()
        self.combine = combine

    def forward(self, x):
        v, spikes = torch.zeros_like(x[0]), []
        for t in range(x.shape[0]):
            v = v + x[t]
            s = (v >= 1.0).to(x.dtype)
            v = v * (1 - s)
            spikes.append(s)
        slope = 0.5 * ((x.mean(0) >= 0) & (x.mean(0) <= 2)).to(x.dtype)
        through = x if self.combine == "step" else x.mean(0, keepdim=True)
        return torch.stack(spikes) + (through - through.detach()) * slope


def _with_reference_neurons(model, combine):
    ref = copy.deepcopy(model)
    for parent in list(ref.modules()):
        for name, child in list(parent.named_children()):
            if hasattr(child, "surrogate_function"):
                setattr(parent, name, _RateReference(combine))
    return ref


def _input_grad(model, x, y):
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    return xr.grad


def _neurons(model):
    return [m for m in model.modules() if hasattr(m, "surrogate_function")]


@pytest.mark.parametrize("kind", ["lean", "spikingjelly"])
def test_rga_gradient_equals_an_unrolled_rate_reference(snn, batch, data, kind):
    model = build_model("snn_vgg_tiny", data.num_classes, data.in_shape, **MODEL_OPTS, neuron=kind)
    model.load_state_dict(snn.state_dict())
    model = model.double().eval()
    x, y = batch[0][:24].double(), batch[1][:24]
    before = _input_grad(model, x, y)
    with rate_gradient(model):
        rga = _input_grad(model, x, y)
    reference = _input_grad(_with_reference_neurons(model, "step"), x, y)
    torch.testing.assert_close(rga, reference, rtol=1e-10, atol=1e-12)
    assert rga.abs().sum() > 0 and not torch.allclose(rga, before)
    # Rate-coded layers see the same upstream gradient at every t: per-step == mean-over-t combination.
    torch.testing.assert_close(rga, _input_grad(_with_reference_neurons(model, "mean"), x, y), rtol=1e-9, atol=1e-12)
    # The attack's rule is this context: FGSM with gradient rga = one signed step along it.
    fgsm = make_attack("fgsm", eps=EPS, gradient={"rule": "rga"})(model, x, y)
    torch.testing.assert_close(fgsm, (x + EPS * reference.sign()).clamp(0, 1))
    # And the model is exactly as before: no forward left behind, the same surrogate gradient.
    assert all("forward" not in m.__dict__ for m in _neurons(model))
    torch.testing.assert_close(_input_grad(model, x, y), before, rtol=0, atol=0)


def test_rga_context_is_undone_on_an_exception(snn, batch):
    x, y = batch
    with pytest.raises(RuntimeError, match="inside"):
        with rate_gradient(snn):
            assert all("forward" in m.__dict__ for m in _neurons(snn))
            raise RuntimeError("inside")
    assert all("forward" not in m.__dict__ for m in _neurons(snn))


def test_rga_on_single_step_neurons_is_a_one_line_error():
    from spikingjelly.activation_based import neuron

    model = torch.nn.Sequential(torch.nn.Flatten(), neuron.IFNode(step_mode="s"))
    with pytest.raises(SnnRobustError, match="multi-step") as exc:
        with rate_gradient(model):
            pass
    assert "\n" not in str(exc.value)


# --- the ensemble ---------------------------------------------------------------------------------

def _members_alone(ens, base, opts, specs, model, x, y, seed, judge=None):
    """Per-member correctness of running each member alone on every sample, with the ensemble's generators."""
    judge = model if judge is None else judge
    gens = ens.member_generators(_gen(seed), "cpu")
    rows = []
    for spec, gen in zip(specs, gens):
        atk = make_attack(base, eps=EPS, gradient=spec, **opts)
        rows.append(_correct(judge, atk(model, x, y, generator=gen), y))
    return torch.stack(rows)


@pytest.mark.parametrize("base,opts", [("pgd", {"steps": 5}), ("apgd", {"steps": 5}), ("rfgsm", {})])
def test_cascade_equals_every_member_on_every_sample(snn, batch, base, opts):
    """The cascade's per-sample outcome is the worst case over members run alone on all samples (same
    generators), it is no stronger than any member alone, and it costs fewer passes than running all."""
    x, y = batch
    spec = {"attack": {"name": base, "options": opts}, "members": SR_MEMBERS}
    ens = make_attack("ensemble", eps=EPS, **spec)
    held = _correct(snn, ens(snn, x, y, generator=_gen(11)), y, ens)
    alone = _members_alone(ens, base, opts, SR_MEMBERS, snn, x, y, seed=11)
    clean = _correct(snn, x, y)
    assert torch.equal(held, clean & alone.all(0))
    assert all(int(held.sum()) <= int(row.sum()) for row in alone)
    first_breaker = [int(((~alone[k]) & alone[:k].all(0) & clean).sum()) for k in range(len(SR_MEMBERS))]
    assert ens.member_broken == first_breaker and first_breaker[0] > 0
    full = make_attack("ensemble", eps=EPS, cascade=False, **spec)
    assert torch.equal(_correct(snn, full(snn, x, y, generator=_gen(11)), y, full), held)
    assert full.member_broken == first_breaker
    assert ens.cost.backward < full.cost.backward and ens.cost.forward < full.cost.forward


def test_ensemble_through_evaluate_attack_gives_columns_and_per_member_counts(snn, batch):
    x, y = batch
    ens = make_attack("ensemble", eps=EPS, attack={"name": "pgd", "options": {"steps": 3}})
    row = evaluate_attack(snn, ens, [(x[:48], y[:48]), (x[48:], y[48:])], seed=2, progress=False)
    cols = ens.columns()
    assert cols["ensemble"] is True and cols["members"] == "triangle:1+sigmoid:4+atan:2+rga"
    assert (cols["base_attack"], cols["n_members"], cols["reading"], cols["gradient"]) == \
        ("pgd", 4, "source", "ensemble")
    broken = [int(v) for v in cols["member_broken"].split(",")]
    assert sum(broken) == sum(row["clean_correct"]) - sum(row["adv_correct"])
    assert row["robust_acc"] <= row["clean_acc"] and row["backward_passes"] <= 2 * 4 * 3
    assert (ens.steps, ens.random_start) == (3, True)
    again = evaluate_attack(snn, ens, [(x[:48], y[:48]), (x[48:], y[48:])], seed=2, progress=False)
    assert again["adv_correct"] == row["adv_correct"] and ens.member_broken == broken  # counts restart


def test_gamma_sweep_gives_one_triangle_member_per_gamma():
    sweep = {"surrogate": "triangle", "gamma": {"start": 0.1, "stop": 3.0, "step": 0.1}}
    ens = make_attack("ensemble", eps=EPS, members=sweep)
    gammas = [m.gradient["gamma"] for m in ens._members]
    assert len(gammas) == 30 and gammas == [round(0.1 * k, 10) for k in range(1, 31)]
    assert {m.gradient["name"] for m in ens._members} == {"triangle"}
    assert ens.columns()["members"] == "triangle:gamma=0.1..3/0.1" and ens.columns()["n_members"] == 30
    listed = make_attack("ensemble", eps=EPS, members={"surrogate": "atan", "gamma": [1, 2]})
    assert listed.columns()["members"] == "atan:1+atan:2"
    own = make_attack("ensemble", eps=EPS, members=[None, {"rule": "rga", "tau": 0.5}])
    assert own.columns()["members"] == "train+rga:tau=0.5"


def test_ensemble_in_spike_space_keeps_the_sequence_within_eps(snn, batch):
    x, y = batch[0][:16], batch[1][:16]
    ens = make_attack("ensemble", eps=0.2, space="spike", attack={"name": "pgd", "options": {"steps": 2}},
                      members=[{"rule": "surrogate", "name": "atan", "gamma": 2}, {"rule": "rga"}])
    s_adv = ens(snn, x, y, generator=_gen())
    s0 = snn.encode(x)
    assert s_adv.shape == s0.shape == (snn.T, *x.shape) and (s_adv - s0).abs().max() <= 0.2 + 1e-6
    assert int(_correct(snn, s_adv, y, ens).sum()) <= int(_correct(snn, x, y).sum())


@pytest.mark.parametrize("reading", ["source", "released"])
def test_black_box_readings(snn, source_snn, batch, reading):
    """Members attack the source and the cascade judges on the target. ``source``: each member's rule
    differentiates the source; ``released``: every member is the source's own surrogate (repeats)."""
    x, y = batch
    opts = {"steps": 3}
    ens = make_attack("ensemble", eps=EPS, attack={"name": "pgd", "options": opts}, reading=reading)
    transfer = Transfer(ens, source_snn)
    held = _correct(snn, transfer(snn, x, y, generator=_gen(4)), y, transfer)
    specs = SR_MEMBERS if reading == "source" else [None] * len(SR_MEMBERS)
    alone = _members_alone(ens, "pgd", opts, specs, source_snn, x, y, seed=4, judge=snn)
    assert torch.equal(held, _correct(snn, x, y) & alone.all(0))
    assert ens.columns()["reading"] == reading and transfer.columns()["reading"] == reading
    white = _correct(snn, ens(snn, x, y, generator=_gen(4)), y, ens)
    assert int(white.sum()) <= int(held.sum())


def test_white_box_readings_are_the_same_attack(snn, batch):
    x, y = batch
    runs = [make_attack("ensemble", eps=EPS, attack={"name": "pgd", "options": {"steps": 2}}, reading=r)
            for r in ("source", "released")]
    a, b = (r(snn, x, y, generator=_gen(9)) for r in runs)
    assert torch.equal(a, b)


@pytest.mark.parametrize("options,msg", [
    ({"members": [{"rule": "surrogate"}, {"rule": "rga2"}]}, "ensemble member 2: unknown gradient rule 'rga2'"),
    ({"members": [{"rule": "surrogate", "name": "erf"}]}, "ensemble member 1: unknown surrogate 'erf'"),
    ({"attack": {"name": "nope"}}, "ensemble base attack: unknown attack 'nope'"),
    ({"attack": {"name": "pgd", "options": {"bogus": 1}}}, "ensemble base attack: unknown option 'bogus'"),
    ({"attack": {"name": "ensemble"}}, "cannot be an ensemble"),
    ({"attack": {"name": "pgd", "options": {"gradient": {"rule": "rga"}}}}, "set 'gradient' on the ensemble"),
    ({"attack": "pgd"}, "must be a mapping"),
    ({"members": []}, "at least one member"),
    ({"members": "rga"}, "option 'members' of attack 'ensemble' must be a list"),
    ({"gradient": {"rule": "rga"}}, "set 'members', not 'gradient'"),
    ({"members": {"surrogate": "triangle", "gamma": {"start": 1, "stop": 0.5, "step": 0.1}}}, "stop >= start"),
    ({"members": {"surrogate": "triangle", "gamma": {"start": 0.1, "stop": 3, "step": 1e-6}}}, "at most 1000"),
    ({"members": {"surrogate": "triangle"}}, "gamma sweep"),
    ({"reading": "target"}, "reading"),
])
def test_bad_ensemble_options_are_one_line_errors(options, msg):
    with pytest.raises(SnnRobustError, match=msg) as exc:
        check_attack_options("ensemble", options)
    assert "\n" not in str(exc.value)


def test_ensemble_is_a_registered_attack_with_the_shared_options():
    ens = make_attack("ensemble", eps=EPS, loss="dlr", mode="train", attack={"name": "apgd", "options": {"steps": 3}})
    assert isinstance(ens, Ensemble)
    assert all((m.loss, m.mode, m.eps, m.steps) == ("dlr", "train", EPS, 3) for m in ens._members)
    assert [m.gradient for m in ens._members] == SR_MEMBERS
