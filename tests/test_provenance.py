"""Provenance: every result file records git commit, config hash, package versions, the environment lock's hash,
device and seed, and `python -m snnrobust provenance PATH` prints it back (one line on bad input)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib import metadata

import pandas as pd
import pytest
import yaml

import snnrobust
from snnrobust import provenance as prov_module
from snnrobust.provenance import (CONFIG_HASH_ENV, LOCK_FILE, PACKAGES, config_hash, git_state, lock_file, lock_sha256,
                                  provenance, seed_of)
from conftest import REPO, SMALL_SNN_SPEC, run_cli


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_config_hash_ignores_layout_and_key_order_but_not_values():
    block = "training:\n  defaults:\n    epochs: 8\n    lr: 0.05\nscale: default\n"
    flow = "scale: default\ntraining: {defaults: {lr: 0.05, epochs: 8}}\n"
    changed = "scale: default\ntraining: {defaults: {lr: 0.05, epochs: 9}}\n"
    a, b, c = (yaml.safe_load(t) for t in (block, flow, changed))
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(c)
    assert len(config_hash(a)) == 12 and int(config_hash(a), 16) >= 0


@pytest.mark.parametrize("spec, seed", [
    ({"attack": {"name": "fgsm"}, "seed": 3, "labels": {"seed": 0}}, 3),   # an attack's own seed
    (SMALL_SNN_SPEC, SMALL_SNN_SPEC["train"]["seed"]),                     # a training recipe's seed
    ({"analysis": {"name": "grad_norms"}, "labels": {"seed": 2}}, 2),       # an analysis: its run's seed
    ({"analysis": {"name": "grad_norms"}}, None),
])
def test_seed_is_the_one_the_job_used(spec, seed):
    assert seed_of(spec) == seed


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs the git checkout")
def test_provenance_records_commit_config_packages_device_and_seed(monkeypatch):
    monkeypatch.setenv(CONFIG_HASH_ENV, "0123456789ab")
    git_state.cache_clear()
    record = provenance({**SMALL_SNN_SPEC, "device": "cpu"})
    assert record["git_commit"] == _git("rev-parse", "HEAD")
    assert record["git_dirty"] == bool(_git("status", "--porcelain", "--untracked-files=no"))
    assert record["config_hash"] == "0123456789ab"
    assert record["seed"] == SMALL_SNN_SPEC["train"]["seed"]
    assert (record["device"], record["device_name"]) == ("cpu", "cpu")
    for name in ("torch", "numpy", "spikingjelly", "snnrobust"):
        assert record["packages"][name] == metadata.version(name)
    assert set(record["packages"]) == set(PACKAGES)
    json.dumps(record)  # a result file stores it as JSON


def test_the_lock_file_is_the_one_make_install_uses():
    envlock = pytest.importorskip("snnrobust.envlock")
    assert LOCK_FILE == f"envs/{envlock.LOCK_NAME}"


def test_provenance_records_the_checkouts_lock_hash(tmp_path, monkeypatch):
    lock = tmp_path / LOCK_FILE
    lock.parent.mkdir(parents=True)
    lock.write_text("numpy==2.0.0 \\\n    --hash=sha256:00\n")
    monkeypatch.setattr(prov_module, "_checkout_root", lambda: tmp_path)
    record = provenance({"device": "cpu"})
    assert record["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert record["lock_file"] == LOCK_FILE and record["schema"] >= 3
    lock.write_text("numpy==2.1.0\n")  # `make lock` again: a new environment, a new hash
    assert provenance({"device": "cpu"})["lock_sha256"] == hashlib.sha256(b"numpy==2.1.0\n").hexdigest()
    json.dumps(record)


def test_without_a_lock_file_the_hash_is_null(tmp_path, monkeypatch):
    monkeypatch.setattr(prov_module, "_checkout_root", lambda: tmp_path / "checkout")
    monkeypatch.chdir(tmp_path)
    assert lock_file() is None and lock_sha256() is None
    record = provenance({"device": "cpu"})
    assert record["lock_sha256"] is None and record["lock_file"] is None


def test_an_installed_copy_finds_the_lock_of_the_working_directory_only(tmp_path, monkeypatch):
    """Installed in site-packages, the package's parent folders are no checkout: the workflow's working directory
    (the checkout it runs in) gives the lock; elsewhere there is none."""
    monkeypatch.setattr(snnrobust, "__file__", str(tmp_path / "lib/python3.11/site-packages/snnrobust/__init__.py"))
    assert prov_module._checkout_root() is None
    checkout = tmp_path / "checkout"
    (checkout / LOCK_FILE).parent.mkdir(parents=True)
    (checkout / LOCK_FILE).write_text("x==1\n")
    monkeypatch.chdir(checkout)
    assert lock_file() == checkout / LOCK_FILE and lock_sha256() == hashlib.sha256(b"x==1\n").hexdigest()
    monkeypatch.chdir(tmp_path)
    assert lock_file() is None


def test_a_source_checkout_is_found_from_the_package():
    assert prov_module._checkout_root() == REPO  # tests run from the checkout (make install is editable)


def test_outside_the_workflow_the_config_hash_is_null(monkeypatch):
    monkeypatch.delenv(CONFIG_HASH_ENV, raising=False)
    assert provenance({"device": "cpu"})["config_hash"] is None


@pytest.fixture(scope="module")
def results(digits_npz, tmp_path_factory):
    """One tiny train, attack and analysis result written by the verbs, with a config hash in the environment."""
    import os

    root = tmp_path_factory.mktemp("results")
    run = root / "models" / "digits" / "snn" / "s0"
    env_before = os.environ.get(CONFIG_HASH_ENV)
    os.environ[CONFIG_HASH_ENV] = "feedc0ffee00"
    try:
        spec = {**SMALL_SNN_SPEC, "device": "cpu",
                "train": {**SMALL_SNN_SPEC["train"], "epochs": 1, "train_limit": 64, "eval_limit": 64}}
        run_cli("train", "--data", str(digits_npz), "--spec", json.dumps(spec), "--out-model", str(run / "model.pt"),
                "--out-metrics", str(run / "metrics.csv"), "--out-run", str(run / "run.json"),
                "--checkpoint", str(root / "ckpt" / "last.pt"), "--no-progress")
        attack = {"attack": {"name": "fgsm"}, "eps": 8 / 255, "n_eval": 32, "seed": 5, "device": "cpu",
                  "labels": {"dataset": "digits", "seed": 0}}
        run_cli("attack", "--model", str(run / "model.pt"), "--data", str(digits_npz), "--spec", json.dumps(attack),
                "--out", str(root / "attacks" / "fgsm.json"), "--no-progress")
        analysis = {"analysis": {"name": "grad_norms"}, "n_eval": 16, "device": "cpu", "labels": {"seed": 0}}
        run_cli("analyze", "--model", str(run / "model.pt"), "--data", str(digits_npz), "--spec",
                json.dumps(analysis), "--out", str(root / "analysis" / "grad_norms.json"))
    finally:
        if env_before is None:
            os.environ.pop(CONFIG_HASH_ENV, None)
        else:
            os.environ[CONFIG_HASH_ENV] = env_before
    return root


def test_every_verb_records_provenance(results):
    files = {"train": results / "models/digits/snn/s0/run.json", "attack": results / "attacks/fgsm.json",
             "analysis": results / "analysis/grad_norms.json"}
    seeds = {"train": SMALL_SNN_SPEC["train"]["seed"], "attack": 5, "analysis": 0}
    for kind, path in files.items():
        prov = json.loads(path.read_text())["provenance"]
        assert prov["config_hash"] == "feedc0ffee00", kind
        assert prov["seed"] == seeds[kind], kind
        assert prov["device"] == "cpu", kind
        assert prov["packages"]["torch"] == metadata.version("torch"), kind
        assert prov["git_commit"] == git_state()[0], kind
        assert prov["lock_sha256"] == lock_sha256(), kind  # the checkout's lock (null while it has none)


def test_cli_prints_one_file(results):
    out = run_cli("provenance", str(results / "attacks/fgsm.json")).stdout
    assert "config hash  feedc0ffee00" in out and "seed         5" in out and "device       cpu" in out
    assert f"torch {metadata.version('torch')}" in out
    lock = lock_sha256()
    assert (f"env lock     sha256 {lock} ({LOCK_FILE})" if lock else "env lock     no lock file") in out
    commit = git_state()[0]
    assert (commit or "not recorded") in out
    # a model's provenance is its run.json's
    model = run_cli("provenance", str(results / "models/digits/snn/s0/model.pt")).stdout
    assert model.splitlines()[0] == f"{results / 'models/digits/snn/s0/run.json'} (train)"


def test_cli_summarises_a_folder_and_writes_the_about_page(results, tmp_path):
    html_out, csv_out = tmp_path / "about.html", tmp_path / "about.csv"
    out = run_cli("provenance", str(results), "--out-html", str(html_out), "--out-csv", str(csv_out)).stdout
    assert out.splitlines()[0].startswith("3 result files; 1 distinct provenance; seeds 0, 5")
    table = pd.read_csv(csv_out)
    assert sorted(table["kind"]) == ["analysis", "attack", "train"]
    assert set(table["config_hash"]) == {"feedc0ffee00"}
    page = html_out.read_text()
    assert "About this run" in page and "feedc0ffee00" in page and "3 result files" in page
    lock = lock_sha256()
    assert table["lock_sha256"].tolist() == [lock or "no lock file"] * 3
    assert (f"sha256 {lock}" if lock else "no lock file") in page and "Environment" in page
    assert "Where the time goes" not in page  # no timing spec given: the page is provenance only
    records = json.loads(run_cli("provenance", str(results), "--json").stdout)
    assert {r["kind"]: r["seed"] for r in records} == {"train": 0, "attack": 5, "analysis": 0}


def test_an_old_record_is_read_with_what_it_has(tmp_path):
    old = {"rows": [{"seed": 1, "analysis_name": "grad_norms"}],
           "provenance": {"spec_hash": "abc", "code_version": "0.1.0+1234abc", "torch": "2.0.0", "device": "cpu"}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    out = run_cli("provenance", str(path)).stdout
    assert "git commit   1234abc" in out and "config hash  not recorded" in out and "seed         1" in out
    assert "torch 2.0.0" in out and "numpy not recorded" in out and "env lock     not recorded" in out


def test_the_about_page_groups_results_by_environment_lock(tmp_path):
    """Results made under two locks and without one: the page names each environment and which is this checkout's."""
    folder = tmp_path / "results"
    folder.mkdir()
    now = lock_sha256()
    locks = {"a": "1" * 64, "b": "2" * 64, "c": None, "d": now}
    for name, sha in locks.items():
        (folder / f"{name}.json").write_text(json.dumps({"rows": [{"seed": 0}], "kind": "attack", "provenance": {
            "seed": 0, "device": "cpu", "lock_file": LOCK_FILE if sha else None, "lock_sha256": sha}}))
    html_out = tmp_path / "about.html"
    out = run_cli("provenance", str(folder), "--out-html", str(html_out)).stdout
    assert out.count("env lock     sha256 " + "1" * 64) == 1 and "env lock     no lock file" in out
    page = html_out.read_text()
    assert f"sha256 {'1' * 64}" in page and f"sha256 {'2' * 64}" in page and "no lock file" in page
    if now:
        assert "(the lock of this checkout): 1 result file<" in page


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.json", "does not exist"),
    (lambda d: (d / "plain.json").write_text('{"rows": []}') and d / "plain.json", "records no provenance"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no result file with provenance under"),
])
def test_bad_paths_are_one_line_errors_and_write_nothing(tmp_path, make, message):
    target = make(tmp_path)
    about = tmp_path / "about.html"
    proc = run_cli("provenance", str(target), "--out-html", str(about), check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("snnrobust: error:") and message in proc.stderr
    assert not about.exists()
