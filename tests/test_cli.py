"""CLI: the attack ordering on a trained SNN, and bad inputs → one-line error, exit 2, no output."""

import json
import shutil

import pytest

from conftest import SMALL_SNN_SPEC, run_cli


def _attack(trained_snn, digits_npz, out, name, eps_255, **options):
    spec = {"attack": {"name": name, "options": options}, "eps": eps_255 / 255, "n_eval": 256, "batch_size": 128,
            "seed": 0, "labels": {"model": "snn_vgg_tiny"}}
    run_cli("attack", "--model", str(trained_snn / "model.pt"), "--data", str(digits_npz), "--spec", json.dumps(spec),
            "--out", str(out), "--no-progress")
    return json.loads(out.read_text())["rows"][0]


def test_pgd_below_fgsm_below_clean_on_trained_snn(trained_snn, digits_npz, tmp_path):
    fgsm = _attack(trained_snn, digits_npz, tmp_path / "fgsm.json", "fgsm", 8)
    pgd = _attack(trained_snn, digits_npz, tmp_path / "pgd.json", "pgd", 8, steps=10)
    assert fgsm["clean_acc"] == pgd["clean_acc"] >= 85.0
    assert pgd["robust_acc"] <= fgsm["robust_acc"] <= fgsm["clean_acc"]
    assert fgsm["robust_acc"] < fgsm["clean_acc"], "FGSM at 8/255 should hurt a vanilla SNN"
    assert pgd["backward_passes"] == 10 * 2 and pgd["n"] == 256


def test_grad_norms_on_trained_snn(trained_snn, digits_npz, tmp_path):
    out = tmp_path / "g.json"
    run_cli("analyze", "--model", str(trained_snn / "model.pt"), "--data", str(digits_npz),
            "--spec", json.dumps({"n_eval": 64, "labels": {"model": "snn_vgg_tiny"}}), "--out", str(out))
    rows = {r["statistic"]: r for r in json.loads(out.read_text())["rows"]}
    assert 0 < rows["l0_fraction"]["mean"] <= 1 and rows["l1"]["mean"] > 0 and rows["l2"]["mean"] > 0


def _expect_error(args, needle, outputs):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and err.startswith("snnrobust: error:") and needle in err, err
    for out in outputs:
        assert not out.exists(), f"partial output left behind: {out}"


def test_unknown_data_source(tmp_path):
    out = tmp_path / "x.npz"
    _expect_error(["prepare", "--source", "mnist9", "--out", str(out)], "unknown data source 'mnist9'", [out])


def test_missing_npz_folder(tmp_path):
    out = tmp_path / "x.npz"
    _expect_error(["prepare", "--source", "npz", "--spec", json.dumps({"root": str(tmp_path / "nope")}), "--out", str(out)],
                  str(tmp_path / "nope"), [out])


@pytest.mark.parametrize("patch,needle", [
    ({"model": {"arch": "snn_vgg99"}}, "unknown arch 'snn_vgg99'"),
    ({"method": {"name": "magic"}}, "unknown training method 'magic'"),
    ({"train": {"epochs": 1, "optimiser": "sgd"}}, "unknown option 'optimiser' for the training recipe"),
])
def test_bad_train_spec(digits_npz, tmp_path, patch, needle):
    spec = {**SMALL_SNN_SPEC, **patch}
    outs = [tmp_path / "m.pt", tmp_path / "m.csv", tmp_path / "r.json"]
    _expect_error(["train", "--data", str(digits_npz), "--spec", json.dumps(spec), "--out-model", str(outs[0]),
                   "--out-metrics", str(outs[1]), "--out-run", str(outs[2]), "--checkpoint", str(tmp_path / "c.pt")],
                  needle, outs)


def test_missing_prepared_data(tmp_path):
    outs = [tmp_path / "m.pt"]
    _expect_error(["train", "--data", str(tmp_path / "none.npz"), "--spec", json.dumps(SMALL_SNN_SPEC),
                   "--out-model", str(outs[0]), "--out-metrics", str(tmp_path / "m.csv"),
                   "--out-run", str(tmp_path / "r.json"), "--checkpoint", str(tmp_path / "c.pt")],
                  "prepared data not found", outs)


def test_negative_eps(trained_snn, digits_npz, tmp_path):
    out = tmp_path / "a.json"
    spec = {"attack": {"name": "fgsm"}, "eps": -0.01}
    _expect_error(["attack", "--model", str(trained_snn / "model.pt"), "--data", str(digits_npz),
                   "--spec", json.dumps(spec), "--out", str(out)], "eps must be >= 0", [out])


def test_truncated_model_file(trained_snn, digits_npz, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes((trained_snn / "model.pt").read_bytes()[:5000])
    out = tmp_path / "a.json"
    _expect_error(["attack", "--model", str(bad), "--data", str(digits_npz),
                   "--spec", json.dumps({"attack": {"name": "fgsm"}, "eps": 0.01}), "--out", str(out)],
                  "corrupt or truncated checkpoint", [out])


def test_invalid_spec_json(digits_npz, tmp_path):
    out = tmp_path / "a.json"
    _expect_error(["prepare", "--source", "digits", "--spec", "{nope", "--out", str(out)], "not valid JSON", [out])


def test_unexpected_exception_is_one_named_line_and_debug_adds_the_traceback(monkeypatch, capsys):
    from snnrobust import cli

    def boom(args):
        raise ValueError("boom\nsecond line")

    boom._cli = cli.VERBS["figure"]._cli
    monkeypatch.setitem(cli.VERBS, "figure", boom)
    argv = ["figure", "--inputs", "x.json", "--out", "/tmp/never-written.png"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnrobust: error: unexpected ValueError: boom second line") and "\n" not in err
    assert cli.main(["--debug", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("snnrobust: error:")


def test_usage_errors_are_one_line_and_outputs_are_checked_first(tmp_path, capsys):
    from snnrobust.cli import main

    assert main(["attack", "--model", "m.pt"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "required" in err and "--data" in err
    (tmp_path / "f").write_text("")
    # the unwritable output is reported before the (missing) data is even looked at
    assert main(["prepare", "--source", "npz", "--spec", '{"root": "/no/such"}', "--out", str(tmp_path / "f/x.npz")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_verbs_run_after_their_command_module_was_imported(tmp_path, capsys):
    """Importing ``snnrobust.commands.attack`` binds the package attribute ``attack`` to the module: the CLI
    must still call the verb function (regression: 'module' object is not callable)."""
    import importlib

    from snnrobust.cli import main

    for name in ("attack", "train", "analyze", "prepare"):
        importlib.import_module(f"snnrobust.commands.{name}")
    code = main(["attack", "--model", str(tmp_path / "missing.pt"), "--data", str(tmp_path / "missing.npz"),
                 "--spec", "{}", "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert code == 2 and "not callable" not in err and err.startswith("snnrobust: error:"), err
