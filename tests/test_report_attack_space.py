"""Report keys ``space`` (pixel | spike) and ``mode`` (eval | train): attack rows carry them (``Attack.columns``),
claims select on them and paper rows that declare them pair only with the matching reproduced rows."""

import pandas as pd

from snnrobust.report.claims import evaluate, known_keys, parse_claims
from snnrobust.report.pairing import KEY_ORDER, pair
from snnrobust.report.reproduced import attack_measurements, in_paper_vocabulary, with_row_keys

# three PGD runs of one model that differ only in where they perturb and the model's mode while differentiating
ATTACKS = {"pgd_spike_train": ("spike", "train", 10.0), "pgd_pixel": ("pixel", "eval", 30.0),
           "pgd_pixel_train": ("pixel", "train", 25.0)}


def _frame() -> pd.DataFrame:
    rows = pd.DataFrame([
        {"dataset": "digits", "model": "sew_max", "method": "vanilla", "seed": 0, "attack": attack,
         "attack_name": "pgd", "eps": 8 / 255, "steps": 7, "loss": "ce", "space": space, "mode": mode,
         "clean_acc": 80.0, "robust_acc": acc, "n": 32}
        for attack, (space, mode, acc) in ATTACKS.items()])
    frame = attack_measurements(rows, "attacks")
    spec = {"attack_map": {a: "PGD" for a in ATTACKS}, "method_map": {"vanilla": "Vanilla"},
            "arch_map": {"sew_max": "SEW-ResNet18"}}
    return in_paper_vocabulary(with_row_keys(frame.assign(arch=frame["model"]), spec), spec)


def _claim(left: dict, op: str, right: dict):
    (claim,) = parse_claims([{"id": "c", "text": "t", "left": {**left, "metric": "accuracy"}, "op": op,
                              "right": {**right, "metric": "accuracy"}}], "sparsity_trail", "test")
    return claim


def test_space_and_mode_are_report_keys():
    assert {"space", "mode"} <= set(KEY_ORDER) and {"space", "mode"} <= known_keys("sparsity_trail")


def test_attack_rows_keep_their_space_and_mode_and_clean_rows_have_none():
    frame = _frame()
    attacked = frame[(frame["attack"] == "PGD") & (frame["metric"] == "accuracy")]
    assert sorted(zip(attacked["space"], attacked["mode"], attacked["value"])) == sorted(ATTACKS.values())
    clean = frame[frame["attack"] == "clean"]
    assert len(clean) == 1 and clean["space"].isna().all() and clean["mode"].isna().all()


def test_a_claim_selecting_spike_vs_pixel_compares_the_right_rows():
    frame, keys = _frame(), known_keys("sparsity_trail")
    # space varies between the sides; mode is matched, so the spike (train-mode) row meets the pixel train-mode row
    verdict = evaluate(_claim({"attack": "PGD", "space": "spike"}, "<", {"attack": "PGD", "space": "pixel"}),
                       frame, keys)
    assert (verdict.left, verdict.right, verdict.settings) == (10.0, 25.0, 1)
    verdict = evaluate(_claim({"attack": "PGD", "space": "pixel", "mode": "train"}, "<",
                              {"attack": "PGD", "space": "pixel", "mode": "eval"}), frame, keys)
    assert (verdict.left, verdict.right, verdict.settings) == (25.0, 30.0, 1)
    verdict = evaluate(_claim({"attack": "PGD", "space": "spike", "mode": "eval"}, "<",
                              {"attack": "PGD", "space": "pixel"}), frame, keys)
    assert verdict.status == "not yet run"  # no spike-space run in eval mode


def test_paper_rows_declaring_space_pair_only_with_that_space():
    ours = _frame()
    ours = ours[ours["metric"] == "accuracy"].reset_index(drop=True)
    paper = pd.DataFrame([{"arch": "SEW-ResNet18", "attack": "PGD", "space": "spike", "mode": "train", "value": 13.47},
                          {"arch": "SEW-ResNet18", "attack": "PGD", "space": "pixel", "mode": "eval", "value": 9.0},
                          {"arch": "SEW-ResNet18", "attack": "clean", "value": 42.19}])
    pairs = pair(paper, ours, ["arch", "attack", "space", "mode"])
    got = {int(p): [v if pd.notna(v) else None for v in ours.loc[r, ["attack", "space", "mode", "value"]]]
           for p, r in zip(pairs["_paper"], pairs["_rep"])}
    assert got == {0: ["PGD", "spike", "train", 10.0], 1: ["PGD", "pixel", "eval", 30.0], 2: ["clean", None, None, 80.0]}


def test_a_claim_may_name_space_and_mode_without_a_paper_column():
    claim = _claim({"attack": "PGD", "space": "spike", "mode": "train"}, ">", {"attack": "PGD", "space": "pixel"})
    assert claim.varied() == {"space", "mode"}
