"""`make gpu-check` compares clean accuracies of a CUDA run with the CPU run; without a GPU it refuses in one line."""

import json
import subprocess
import sys

import pytest
import torch

from snnrobust.errors import SnnRobustError
from snnrobust.gpu_check import clean_accuracies, compare


def _run(root, key, acc):
    path = root / "models" / key / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"final": {"test_acc": acc}}))


def test_compare_within_and_beyond_tolerance(tmp_path):
    _run(tmp_path / "cpu", "digits/snn/vanilla/s0", 97.5)
    _run(tmp_path / "gpu", "digits/snn/vanilla/s0", 96.9)
    cpu, gpu = clean_accuracies(tmp_path / "cpu"), clean_accuracies(tmp_path / "gpu")
    assert cpu == {"digits/snn/vanilla/s0": 97.5}
    assert "diff -0.60" in compare(cpu, gpu, tolerance=2.0)[0]
    with pytest.raises(SnnRobustError, match="more than 0.5 points"):
        compare(cpu, gpu, tolerance=0.5)
    with pytest.raises(SnnRobustError, match="different models"):
        compare(cpu, {}, tolerance=2.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_refuses_in_one_line_without_a_gpu(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snnrobust.gpu_check", "--cpu-results", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["snnrobust: error: gpu-check needs a CUDA GPU and none is present"]
