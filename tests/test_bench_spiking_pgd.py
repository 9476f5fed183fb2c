"""The Spiking-PGD benchmark's measure function at a tiny size: its row schema and the target text (never timings)."""

import pytest

from snnrobust import bench_spiking_pgd as bench

pytestmark = pytest.mark.usefixtures("one_thread")

ROW_KEYS = {"model", "reuse", "rho", "forward_share", "forward_share_flops", "backward_share_flops", "wall_s",
            "min_wall_s", "ratio_to_pgd", "floor", "robust_acc", "robust_acc_pgd", "acc_delta", "meets_target"}


def test_measure_rows_schema_at_a_tiny_size(monkeypatch):
    monkeypatch.setitem(bench.MODELS, "resnet18", ("resnet18", {"width": 0.0625}, "resnet18 width 1/16 (test)"))
    monkeypatch.setitem(bench.MODELS, "snn_vgg_tiny", ("snn_vgg_tiny", {"T": 2, "width": 0.25}, "tiny (test)"))
    result = bench.measure(0, 1, batch=4, n_eval=4, train_steps=1, rhos=(0.01,), steps=2, data="synthetic")
    rows = result["rows"]
    assert all(set(row) == ROW_KEYS for row in rows)
    cases = [(row["model"], row["reuse"]) for row in rows]
    assert cases == [("resnet18", mode) for mode in ("none", *bench.REUSE)] + [
        ("snn_vgg_tiny", mode) for mode in ("none", "forward", "backward")]  # a VGG has no blocks
    for row in rows:
        assert row["wall_s"] > 0 and row["floor"] == pytest.approx((1 + row["forward_share"]) / 2)
        assert row["acc_delta"] == pytest.approx(row["robust_acc"] - row["robust_acc_pgd"])
        if row["reuse"] == "none":
            assert row["rho"] is None and row["ratio_to_pgd"] == 1.0 and row["forward_share"] == 1.0
            assert row["meets_target"] is False
        else:
            assert row["rho"] == 0.01 and isinstance(row["meets_target"], bool)
    assert result["config"]["n_eval"] == 4 and result["config"]["data"] == "synthetic"
    text = bench.table(result)
    assert bench.TARGET in text and "resnet18" in text and "snn_vgg_tiny" in text
