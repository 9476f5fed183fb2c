"""The trail paper's Table 3 change (avg-pool accuracy minus its max-pool twin's) computed from reproduced rows."""

from __future__ import annotations

import pandas as pd
import pytest

from snnrobust.report.reproduced import pooling_changes

SPEC = {"arch_map": {"sew_max": "SEW-ResNet18", "sew_avg": "SEW-ResNet18", "sr_max": "Spiking-ResNet18",
                     "sr_avg": "Spiking-ResNet18"}}


def _row(model, pooling, attack, value, eps=8 / 255, seed=0):
    return dict(dataset="cifar10", model=model, arch=model, method="vanilla", seed=seed, attack=attack, eps=eps,
                steps=7, threat="white-box", n_eval=500, kind="attacks", metric="accuracy", pooling=pooling,
                value=value)


def test_change_is_avg_minus_its_max_twin_per_attack_and_family():
    frame = pd.DataFrame([_row("sew_max", "max", "pgd7", 30.0), _row("sew_avg", "avg", "pgd7", 25.5),
                          _row("sr_max", "max", "pgd7", 10.0), _row("sr_avg", "avg", "pgd7", 12.0),
                          _row("sew_max", "max", "fgsm", 40.0), _row("sew_avg", "avg", "fgsm", 41.0)])
    out = pooling_changes(frame, SPEC)
    got = {(r.model, r.attack): r.value for r in out.itertuples()}
    assert got == {("sew_avg", "pgd7"): pytest.approx(-4.5), ("sr_avg", "pgd7"): pytest.approx(2.0),
                   ("sew_avg", "fgsm"): pytest.approx(1.0)}
    assert set(out["metric"]) == {"accuracy_change_vs_table2"} and set(out["unit"]) == {"pp"}
    assert out["eps"].map(type).eq(float).all()  # the frame's own types come back


def test_no_twin_no_change_and_settings_must_agree():
    frame = pd.DataFrame([_row("sew_max", "max", "pgd7", 30.0), _row("sew_avg", "avg", "pgd7", 25.0, eps=4 / 255),
                          _row("sr_avg", "avg", "pgd7", 12.0)])
    assert pooling_changes(frame, SPEC).empty
    assert pooling_changes(frame.drop(columns="pooling"), SPEC).empty
