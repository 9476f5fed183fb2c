"""Claims carry their uncertainty: a paired bootstrap interval over the evaluation samples (and seeds) decides
holds / fails / within noise; its width matches the paired binomial formula; the overview counts the verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from snnrobust.report.claims import FAILS, HOLDS, NOT_RUN, WITHIN_NOISE, evaluate, known_keys, load_claims
from snnrobust.report.intervals import Interval, OutcomeStore, claim_interval, verdict
from snnrobust.report.overview import verdict_counts
from snnrobust.report.page import build_page
from snnrobust.report.paper_values import list_papers
from snnrobust.report.reproduced import measurements

N = 500
Z = 1.959964  # the normal quantile of a two-sided 95 % interval


def _paired(both: int, left_only: int, right_only: int, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes of two models on the same n samples: correct on both, on the left only, on the right only."""
    left, right = np.zeros(n), np.zeros(n)
    left[:both + left_only] = 1
    right[:both] = 1
    right[both + left_only:both + left_only + right_only] = 1
    return left, right


def _rows(left: np.ndarray, right: np.ndarray, seed: int = 0, setting: str = "s") -> pd.DataFrame:
    """Two measurements (percent) of one setting with their per-sample outcomes behind in-memory references."""
    return pd.DataFrame([
        dict(setting=setting, side="left", value=100 * left.mean(), seed=seed, dataset="d",
             outcomes_from=f"mem#{id(left)}"),
        dict(setting=setting, side="right", value=100 * right.mean(), seed=seed, dataset="d",
             outcomes_from=f"mem#{id(right)}"),
    ])


def _loader(*arrays: np.ndarray):
    table = {f"mem#{id(a)}": 100 * a for a in arrays}
    return lambda ref: table.get(ref)


def _mcnemar_width(both: int, left_only: int, right_only: int, n: int = N) -> float:
    """Width (points) of the normal-approximation 95 % interval of a paired difference of two proportions."""
    b, c = left_only / n, right_only / n
    return 100 * 2 * Z * math.sqrt((b + c - (b - c) ** 2) / n)


# --- the interval decides the verdict ------------------------------------------------------------------------

def test_one_point_on_500_samples_is_within_noise_and_twenty_points_is_not():
    left, right = _paired(70, 15, 10)  # 17 % vs 16 %: the cpu-scale "SR* beats AT" gap
    small = claim_interval(_rows(left, right), load=_loader(left, right))
    assert small.diff == pytest.approx(1.0) and small.low < 0 < small.high
    assert verdict(">", small, held=True) == WITHIN_NOISE

    left, right = _paired(100, 100, 0)  # 40 % vs 20 %
    large = claim_interval(_rows(left, right), load=_loader(left, right))
    assert large.diff == pytest.approx(20.0) and 0 < large.low < 20 < large.high
    assert verdict(">", large, held=True) == HOLDS and verdict("<", large, held=False) == FAILS


@pytest.mark.parametrize("both, left_only, right_only", [(100, 60, 30), (70, 15, 10), (200, 5, 0)])
def test_interval_width_matches_the_paired_binomial_formula(both, left_only, right_only):
    left, right = _paired(both, left_only, right_only)
    found = claim_interval(_rows(left, right), load=_loader(left, right))
    assert found.high - found.low == pytest.approx(_mcnemar_width(both, left_only, right_only), rel=0.12)
    assert found.low < found.diff < found.high


def test_pairing_by_sample_narrows_the_interval():
    """Five samples that only the left model gets right: +1 point that is no noise, as both saw the same images."""
    left, right = _paired(200, 5, 0)
    paired = claim_interval(_rows(left, right), load=_loader(left, right))
    assert paired.low > 0 and verdict(">", paired, held=True) == HOLDS
    unpaired_sd = 100 * math.sqrt(left.mean() * (1 - left.mean()) / N + right.mean() * (1 - right.mean()) / N)
    assert paired.high - paired.low < 2 * Z * unpaired_sd / 3


def test_seeds_are_resampled_and_widen_the_interval():
    """Three seeds whose left accuracies spread 10–50 % around a right side at 20 %: within noise, although
    each seed's samples alone would call it."""
    right = _paired(100, 0, 0)[0]
    lefts = [_paired(n, 0, 0)[0] for n in (150, 50, 250)]  # 30, 10, 50 %
    rows = pd.concat([_rows(lf, right, seed=s) for s, lf in enumerate(lefts)], ignore_index=True)
    found = claim_interval(rows, load=_loader(right, *lefts))
    assert found.diff == pytest.approx(10.0) and found.low < 0 < found.high
    assert "3 seeds resampled" in found.over and "paired bootstrap over 500 samples" in found.over
    one = claim_interval(_rows(lefts[0], right), load=_loader(lefts[0], right))
    assert one.low > 0


def test_interval_is_deterministic_and_keeps_the_margin():
    left, right = _paired(70, 15, 10)
    first = claim_interval(_rows(left, right), margin=-1.0, load=_loader(left, right))
    again = claim_interval(_rows(left, right), margin=-1.0, load=_loader(left, right))
    assert first == again and first.diff == pytest.approx(2.0)  # 17 − (16 − 1)


def test_norms_without_per_sample_values_use_their_std_and_say_so():
    rows = pd.DataFrame([dict(setting="s", side="left", value=10.0, seed=0, value_std=4.0, value_n=100),
                         dict(setting="s", side="right", value=10.5, seed=0, value_std=3.0, value_n=100)])
    found = claim_interval(rows)
    assert found.high - found.low == pytest.approx(2 * Z * math.sqrt(0.16 + 0.09), rel=0.1)
    assert "normal approximation" in found.over and "unpaired" in found.over
    assert verdict("<", found, held=True) == WITHIN_NOISE


def test_no_source_of_noise_gives_no_interval_and_the_point_verdict():
    rows = pd.DataFrame([dict(setting="s", side="left", value=10.0, seed=0),
                         dict(setting="s", side="right", value=11.0, seed=0)])
    found = claim_interval(rows)
    assert not found.exists and found.diff == -1.0 and found.over.startswith("no interval")
    assert verdict("<", found, held=True) == HOLDS and verdict(">", found, held=False) == FAILS
    assert Interval(-1.0).text() == "-1"


# --- through the report: result files → claims → overview -----------------------------------------------------

EPS = 8 / 255
SPEC = {"study": "sr", "paper": "sr", "scale": "cpu", "slots": {"sr_table1": "attacks"},
        "method_map": {"vanilla": "Vanilla", "at": "AT", "sr_star": "SR*"}, "attack_map": {"pgd10": "PGD"},
        "stand_ins": {"digits": "CIFAR-10"}, "arch_map": {"tiny": "WRN-16"}, "stand_in_models": ["tiny"],
        "attack_keys": {"pgd10": {"ensemble": False}}}


def _attack_file(path: Path, method: str, clean: np.ndarray, adv: np.ndarray, seed: int = 0) -> str:
    """An attack result file as the attack verb writes it: one row and the per-sample outcomes."""
    row = dict(dataset="digits", model="tiny", method=method, seed=seed, attack="pgd10", attack_name="pgd", eps=EPS,
               eps_255=8.0, steps=10, n=len(adv), clean_acc=100 * clean.mean(), robust_acc=100 * adv.mean(),
               wall_s=1.0, forward_passes=10, backward_passes=10, threat="white-box")
    samples = {"clean_correct": clean.astype(int).tolist(), "adv_correct": adv.astype(int).tolist()}
    path.write_text(json.dumps({"kind": "attack", "rows": [row], "samples": samples}))
    return str(path)


def _correct(first: int, last: int) -> np.ndarray:
    """0/1 outcomes on N samples: correct on samples first … last − 1."""
    flags = np.zeros(N)
    flags[first:last] = 1
    return flags


def _claims(tmp_path, sr_adv: np.ndarray, at_adv: np.ndarray) -> pd.DataFrame:
    clean = np.ones(N)
    clean[:40] = 0
    files = [_attack_file(tmp_path / "sr.json", "sr_star", clean, sr_adv),
             _attack_file(tmp_path / "at.json", "at", clean, at_adv)]
    return build_page(measurements(files, [], [], [], SPEC), SPEC).claims.set_index("claim")


def test_page_claims_read_the_stored_outcomes(tmp_path):
    small = _claims(tmp_path, _correct(0, 85), _correct(10, 90)).loc["sr_star_beats_at_white_box"]  # 17 vs 16 %
    assert small["result"] == WITHIN_NOISE and small["difference"] == pytest.approx(1.0)
    assert small["low"] < 0 < small["high"] and "paired bootstrap over 500 samples" in small["interval"]
    assert small["paper_result"] == HOLDS  # the paper's own verdict stays beside ours
    large = _claims(tmp_path, _correct(0, 200), _correct(50, 150)).loc["sr_star_beats_at_white_box"]  # 40 vs 20 %
    assert large["result"] == HOLDS and large["low"] > 0


def test_files_without_outcomes_keep_the_point_verdict(tmp_path):
    """Result files written before per-sample outcomes were stored: no interval, the point comparison decides."""
    files = []
    for method, adv in (("sr_star", _correct(0, 85)), ("at", _correct(10, 90))):
        path = tmp_path / f"{method}.json"
        _attack_file(path, method, np.ones(N), adv)
        doc = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in doc.items() if k != "samples"}))
        files.append(str(path))
    assert OutcomeStore()(f"{files[0]}#adv_correct") is None
    frame = measurements(files, [], [], [], SPEC)
    accuracy = frame[frame["metric"] == "accuracy"]
    assert accuracy["outcomes_from"].str.endswith(("#adv_correct", "#clean_correct")).all()
    claim = build_page(frame, SPEC).claims.set_index("claim").loc["sr_star_beats_at_white_box"]
    assert claim["result"] == HOLDS and claim["interval"].startswith("no interval") and pd.isna(claim["low"])


def test_evaluate_on_paper_values_is_the_point_verdict():
    from snnrobust.report.paper_values import load_paper_values

    claim = next(c for c in load_claims("sr") if c.id == "sr_star_beats_at_white_box")
    printed = evaluate(claim, load_paper_values("sr"), known_keys("sr"))
    assert printed.status == HOLDS and not printed.interval.exists


def test_overview_counts_each_verdict_per_paper(tmp_path):
    claims = load_claims("sr")
    verdicts = [HOLDS, FAILS, WITHIN_NOISE, WITHIN_NOISE] + [NOT_RUN] * (len(claims) - 4)
    path = tmp_path / "sr_claims.csv"
    pd.DataFrame([{"paper": "sr", "claim": c.id, "text": c.text, "source": c.source, "result": v,
                   "difference": 1.0, "low": -0.5, "high": 2.5, "interval": "95 % interval: paired bootstrap",
                   "paper_result": HOLDS} for c, v in zip(claims, verdicts)]).to_csv(path, index=False)
    cov = tmp_path / "sr_coverage.csv"
    pd.DataFrame([{"paper": "sr", "slot": "sr_table1", "kind": "table", "section": "4", "status": "reproduced",
                   "caption": "c"}]).to_csv(cov, index=False)
    out, out_csv = tmp_path / "overview.html", tmp_path / "overview.csv"
    run_cli("overview", "--coverage", str(cov), "--claims", str(path), "--scale", "cpu",
            "--out", str(out), "--out-csv", str(out_csv))
    table = pd.read_csv(out_csv)
    counts = verdict_counts(table).set_index("paper")
    assert counts.loc["sr", [HOLDS, FAILS, WITHIN_NOISE, NOT_RUN]].tolist() == [1, 1, 2, len(claims) - 4]
    others = [p for p in list_papers() if p != "sr"]
    assert (counts.loc[others, NOT_RUN] == counts.loc[others, "total"]).all() and counts.loc[others, HOLDS].eq(0).all()
    page = out.read_text()
    assert f"Claims: 1 holds, 1 fails, 2 within noise, {len(claims) - 4} not yet run." in page
    assert 'class="within-noise"' in page and "+1 [-0.5, +2.5]" in page
    assert table.loc[table["paper"] == "sr", "paper_result"].eq(HOLDS).all()


def test_overview_rejects_an_unknown_verdict(tmp_path):
    path = tmp_path / "sr_claims.csv"
    pd.DataFrame([{"paper": "sr", "claim": "c", "text": "t", "source": "s", "result": "maybe"}]).to_csv(path,
                                                                                                   index=False)
    proc = run_cli("overview", "--coverage", "--claims", str(path), "--scale", "cpu", "--out", str(tmp_path / "o.html"),
                   "--out-csv", str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2 and "unknown verdict" in proc.stderr and not (tmp_path / "o.html").exists()
