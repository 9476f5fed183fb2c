"""The Spiking-PGD cost figure (Fig. 5) as data: what ``accuracy_vs_cost`` shows, tested on frames, plus the report
plumbing it rides on (the ``cost`` view, grid-derived attack ids in the paper's words, the forward_share claim)."""

import pandas as pd
import pytest

from snnrobust.errors import SnnRobustError
from snnrobust.report.figures import FIGURES
from snnrobust.report.claims import evaluate, known_keys, load_claims
from snnrobust.report.page import FIGURE_OF_VIEW, build_page
from snnrobust.report.panels_spgd import (ablation_table, accuracy_vs_cost_panels, cost_points,
                                          spgd_ablation_panels)
from snnrobust.report.reproduced import in_paper_vocabulary, view_rows, with_row_keys

STEPS = (1, 2, 5, 10)
SHARES = {0.125: 0.833, 0.14: 0.5, 0.15: 0.25}  # rho -> forward_share


def _job(dataset, attack, name, steps, acc, share=1.0, wall=1.0, rho=None, seed=0, eps=8 / 255, virtual_grad=None):
    if virtual_grad is None and name == "spiking_pgd":
        virtual_grad = True  # every Spiking-PGD row says whether its virtual gradient ran (Attack.columns)
    keys = dict(dataset=dataset, model="snn_vgg_tiny", method="vanilla", seed=seed, threat="white-box", attack=attack,
                attack_name=name, eps=eps, steps=steps, n_eval=128, kind="attacks", rho=rho, virtual_grad=virtual_grad)
    return [{**keys, "metric": "accuracy", "value": acc}, {**keys, "metric": "forward_share", "value": share},
            {**keys, "metric": "wall_s", "value": wall}, {**keys, "metric": "forward_passes", "value": steps + 2}]


def frame(datasets=("digits",), seeds=(0,)):
    """Tidy measurements as ``reproduced.measurements`` gives them: PGD / I-FGSM / MI-FGSM over the steps,
    Spiking-PGD at 10 steps over rho, a clean row and an attack outside the figure."""
    rows = []
    for d in datasets:
        for seed in seeds:
            rows.append(dict(dataset=d, model="snn_vgg_tiny", method="vanilla", seed=seed, attack="clean", eps=0.0,
                             steps=0, n_eval=128, kind="attacks", metric="accuracy", value=90.0))
            for s in STEPS:
                rows += _job(d, f"pgd10-steps{s}", "pgd", s, 80 - 2 * s, wall=0.1 * s, seed=seed)
                rows += _job(d, f"ifgsm-steps{s}", "ifgsm", s, 82 - 2 * s, wall=0.1 * s, seed=seed)
                rows += _job(d, f"mifgsm-steps{s}", "mifgsm", s, 81 - 2 * s, wall=0.1 * s, seed=seed)
            for rho, share in SHARES.items():
                rows += _job(d, f"spiking_pgd-rho{rho:g}", "spiking_pgd", 10, 60 + 10 * share + seed, share=share,
                             wall=1.0 + share, rho=rho, seed=seed)
            rows += _job(d, "fgsm", "fgsm", 1, 70)
    return pd.DataFrame(rows)


def test_one_series_per_family_and_a_wall_clock_panel_beside_each_cost_panel():
    data = accuracy_vs_cost_panels(frame(("digits", "cifar10")))
    assert data.titles == ["digits · accuracy vs relative cost", "digits · accuracy vs wall-clock",
                           "cifar10 · accuracy vs relative cost", "cifar10 · accuracy vs wall-clock"]
    assert data.ncols == 2
    for panel in data.panels:
        assert panel.labels == ["PGD", "I-FGSM", "MI-FGSM", "Spiking-PGD"]  # the paper's legend; no FGSM, no clean
        assert [len(s.points) for s in panel.series] == [4, 4, 4, 3]
        assert panel.ylim == (0, 100)


def test_cost_is_steps_over_t0_and_spiking_pgd_is_scaled_by_forward_share():
    data = accuracy_vs_cost_panels(frame())
    cost = data.panel("accuracy vs relative cost")
    assert "T0 = 10" in cost.xlabel
    for label in ("PGD", "I-FGSM", "MI-FGSM"):
        assert cost.get(label).points["x"].tolist() == pytest.approx([100 * s / 10 for s in STEPS])
    spgd = cost.get("Spiking-PGD").points
    assert spgd["x"].tolist() == pytest.approx(sorted(100 * share for share in SHARES.values()))
    assert spgd["y"].tolist() == pytest.approx(sorted(60 + 10 * share for share in SHARES.values()))
    wall = data.panel("accuracy vs wall-clock")
    assert wall.get("PGD").points["x"].tolist() == pytest.approx([0.1 * s for s in STEPS])
    assert wall.get("Spiking-PGD").points["x"].tolist() == pytest.approx(sorted(1.0 + s for s in SHARES.values()))


def test_seeds_of_one_spiking_pgd_job_share_one_x_and_give_a_band():
    df = frame(seeds=(0, 1))
    df.loc[(df["seed"] == 1) & (df["metric"] == "forward_share") & (df["attack_name"] == "spiking_pgd"), "value"] -= 0.01
    spgd = accuracy_vs_cost_panels(df).panel("accuracy vs relative cost").get("Spiking-PGD")
    assert len(spgd.points) == 3 and spgd.band == "min–max over 2 seeds"
    assert spgd.points["x"].tolist() == pytest.approx(sorted(100 * (s - 0.005) for s in SHARES.values()))


def test_without_wall_only_cost_panels_and_paper_names_are_families_too():
    df = frame().assign(attack_name=None)
    df["attack"] = df["attack"].map(lambda a: {"pgd10": "PGD", "ifgsm": "I-FGSM", "mifgsm": "MI-FGSM",
                                               "spiking_pgd": "Spiking-PGD"}.get(a.split("-")[0], a))
    data = accuracy_vs_cost_panels(df, wall=False)
    assert data.titles == ["accuracy vs relative cost"]
    assert data.panels[0].labels == ["PGD", "I-FGSM", "MI-FGSM", "Spiking-PGD"]


def test_registered_figure_draws_a_png(tmp_path):
    out = tmp_path / "fig5.png"
    assert FIGURES.get("accuracy_vs_cost")(frame(), out) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_fails_in_one_line_without_its_attacks():
    with pytest.raises(SnnRobustError, match="accuracy_vs_cost"):
        accuracy_vs_cost_panels(frame().query("attack_name == 'fgsm' or attack == 'clean'"))


def test_spiking_pgd_without_forward_share_is_left_out_and_named():
    df = frame()
    df = df[~((df["attack_name"] == "spiking_pgd") & (df["metric"] == "forward_share"))]
    points, t0, notes = cost_points(df)
    assert t0 == 10 and "Spiking-PGD" not in set(points["family"]) and "without forward_share" in notes[0]


SPEC = {"paper": "spiking_pgd", "study": "spiking_pgd", "scale": "default", "slots": {"spiking_pgd_figure5": "cost"},
        "stand_ins": {"digits": "CIFAR-10"}, "method_map": {"vanilla": "normal"},
        "attack_map": {"pgd10": "PGD", "ifgsm": "I-FGSM", "mifgsm": "MI-FGSM", "spiking_pgd": "Spiking-PGD"},
        "attack_keys": {"pgd10": {"ensemble": False}, "spiking_pgd": {"ensemble": False}}}


def test_grid_variants_take_their_base_ids_paper_name_and_keys():
    rows = with_row_keys(frame(), SPEC)
    assert set(rows.loc[rows["attack_name"] == "spiking_pgd", "ensemble"]) == {False}
    named = in_paper_vocabulary(rows, SPEC)
    assert set(named["attack"]) == {"clean", "PGD", "I-FGSM", "MI-FGSM", "Spiking-PGD", "fgsm"}


def test_cost_view_keeps_the_figures_attacks_and_the_page_draws_figure5():
    assert FIGURE_OF_VIEW["cost"] == "accuracy_vs_cost"
    rows = view_rows(frame(), "cost")
    assert "fgsm" not in set(rows["attack"]) and "clean" in set(rows["attack"])
    page = build_page(frame(), SPEC)
    status = page.coverage.set_index("slot")["status"]
    assert status["spiking_pgd_figure5"] == "reproduced"
    assert 'alt="spiking_pgd_figure5"' in page.html


def test_cheaper_claim_compares_forward_share_at_the_same_steps():
    (cheaper,) = [c for c in load_claims("spiking_pgd") if c.id == "spiking_pgd_cheaper"]
    assert cheaper.left["metric"] == cheaper.right["metric"] == "forward_share"
    ours = in_paper_vocabulary(with_row_keys(frame(), SPEC), SPEC)
    verdict = evaluate(cheaper, ours, known_keys("spiking_pgd"))
    assert verdict.status == "holds" and verdict.settings == 1  # steps 10 only: PGD-10's share 1.0
    assert verdict.left == pytest.approx(sum(SHARES.values()) / 3) and verdict.right == 1.0


def ablation_frame():
    """Fig. 9's runs beside Fig. 5's: Spiking-PGD without the virtual gradient at two of the rho, and PGD and
    Spiking-PGD at eps 2/255 (PGD at 2, 10 steps; Spiking-PGD at two rho)."""
    rows = []
    for rho, share, acc in ((0.14, 0.5, 75.0), (0.15, 0.25, 78.0)):
        rows += _job("digits", f"spiking_pgd_novg-rho{rho:g}", "spiking_pgd", 10, acc, share=share, rho=rho,
                     virtual_grad=False)
    for s in (2, 10):
        rows += _job("digits", f"pgd_eps2-steps{s}", "pgd", s, 88 - s, eps=2 / 255)
    for rho, share in ((0.002, 0.6), (0.005, 0.2)):
        rows += _job("digits", f"spiking_pgd_eps2-rho{rho:g}", "spiking_pgd", 10, 79.0, share=share, rho=rho,
                     eps=2 / 255)
    return pd.concat([frame(), pd.DataFrame(rows)], ignore_index=True)


def test_figure5_leaves_the_ablation_runs_out_and_splits_its_panels_by_eps():
    data = accuracy_vs_cost_panels(ablation_frame())
    assert data.titles == ["ε=8/255 · accuracy vs relative cost", "ε=8/255 · accuracy vs wall-clock",
                           "ε=2/255 · accuracy vs relative cost", "ε=2/255 · accuracy vs wall-clock"]
    at8 = data.panel("ε=8/255 · accuracy vs relative cost")
    assert len(at8.get("Spiking-PGD").points) == 3  # the two runs without the virtual gradient are not drawn
    assert any("Fig. 9" in note for note in data.notes)


def test_ablation_figure_has_the_rho_the_virtual_gradient_and_the_radius_panels():
    data = spgd_ablation_panels(ablation_frame())
    where = "digits · snn_vgg_tiny"
    assert data.titles == [f"{where} · ε=8/255 · (a) threshold ρ", f"{where} · ε=8/255 · (b) virtual surrogate gradient",
                           f"{where} · (c) attack radius ε"]
    rho = data.panels[0]
    # (a): accuracy and relative cost (forward_share x T/T0, T0 = 10) over rho, the paper-attack runs only
    assert rho.get("relative cost (% of T0)").points["y"].tolist() == pytest.approx([83.3, 50.0, 25.0])
    assert rho.get("accuracy under attack (%)").points["x"].tolist() == pytest.approx([0.125, 0.14, 0.15])
    vsg = data.panels[1]
    assert vsg.labels == ["Spiking-PGD, virtual gradient", "Spiking-PGD, zero gradient when reused", "PGD"]
    off = vsg.get("Spiking-PGD, zero gradient when reused").points
    assert off["x"].tolist() == pytest.approx([25.0, 50.0]) and off["y"].tolist() == pytest.approx([78.0, 75.0])
    radius = data.panels[2]
    assert radius.labels == ["Spiking-PGD · ε=2/255", "PGD · ε=2/255", "Spiking-PGD · ε=8/255", "PGD · ε=8/255"]
    assert radius.get("PGD · ε=2/255").points["x"].tolist() == pytest.approx([20.0, 100.0])


def test_ablation_table_lists_each_run_with_its_cost_and_gradient_setting():
    table = ablation_table(ablation_frame())
    off = table[table["virtual_grad"] == False]  # noqa: E712 (object column of True/False/None)
    assert sorted(off["rho"]) == [0.14, 0.15] and sorted(off["accuracy (%)"]) == [75.0, 78.0]
    assert set(table.loc[table["attack"] == "PGD", "virtual_grad"].map(lambda v: v is None)) == {True}
    assert {"8/255", "2/255"} == set(table["eps"])


def test_ablation_figure_fails_in_one_line_without_a_rho_sweep():
    df = frame()
    with pytest.raises(SnnRobustError, match="spgd_ablation"):
        spgd_ablation_panels(df[df["attack_name"] != "spiking_pgd"].assign(rho=None))


def test_the_ablation_view_draws_figure9_with_its_table():
    spec = {**SPEC, "slots": {"spiking_pgd_figure5": "cost", "spiking_pgd_figure9": "ablation"}}
    page = build_page(ablation_frame(), spec)
    status = page.coverage.set_index("slot")["status"]
    assert status["spiking_pgd_figure9"] == "reproduced"
    assert 'alt="spiking_pgd_figure9"' in page.html and "figure-table" in page.html


def test_figure5_draws_only_the_runs_spiking_pgd_attacked():
    """A model under PGD alone (e.g. an inner-attack study's AT model) is no curve of Fig. 5; it is named."""
    extra = pd.DataFrame(_job("digits", "pgd10", "pgd", 10, 40.0)).assign(model="snn_vgg_inner", method="at")
    data = accuracy_vs_cost_panels(pd.concat([frame(), extra], ignore_index=True))
    cost = data.panel("accuracy vs relative cost")
    assert cost.labels == ["PGD", "I-FGSM", "MI-FGSM", "Spiking-PGD"]
    assert any("1 run(s) with no Spiking-PGD attack" in note for note in data.notes)
