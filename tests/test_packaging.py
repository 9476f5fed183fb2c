"""Packaging: one lock file pins every package (hashes included); pyproject.toml's pins, the conda env and
the installed venv all agree with it (issue 19)."""

import tomllib

import pytest
import yaml

from conftest import REPO
from snnrobust import envlock

LOCK = REPO / "envs" / envlock.LOCK_NAME


def _pins(lines):
    return {envlock.canonical(name): version for name, version in (line.split("==") for line in lines if "==" in line)}


def _pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return _pins(project["dependencies"] + project["optional-dependencies"]["test"])


def test_lock_agrees_with_every_pyproject_pin():
    lock = envlock.read_pins(LOCK)
    wanted = _pyproject_pins()
    assert {name: lock.get(name) for name in wanted} == wanted
    assert wanted["torch"] == "2.14.1" and wanted["torchvision"] == "0.29.1"
    assert len(lock) > 3 * len(wanted)  # transitive packages are locked too


def test_every_locked_package_carries_a_hash():
    hashed, current = {}, None
    for line in LOCK.read_text().splitlines():
        pin = envlock._PIN.match(line)
        if pin:
            current = pin.group(1)
            hashed[current] = False
        elif current and line.strip().startswith("--hash=sha256:"):
            hashed[current] = True
    assert len(hashed) == len(envlock.read_pins(LOCK)) and all(hashed.values())


def test_conda_env_pins_exactly_the_lock():
    env = yaml.safe_load((REPO / "envs/snnrobust.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) == envlock.read_pins(LOCK)
    assert (REPO / "envs/snnrobust.yaml").read_text() == envlock.conda_env(envlock.read_pins(LOCK))


def test_this_environment_equals_the_lock():
    """`make install` built this venv: it must hold exactly the locked packages at their locked versions."""
    assert envlock.differences(envlock.read_pins(LOCK), envlock.installed()) == []


@pytest.mark.parametrize("have, expected", [
    ({"numpy": "2.4.6"}, []),
    ({"numpy": "2.4.7"}, ["numpy is 2.4.7, the lock says 2.4.6"]),
    ({}, ["numpy==2.4.6 is locked but not installed"]),
    ({"numpy": "2.4.6", "left-pad": "1.0"}, ["left-pad==1.0 is installed but not in the lock"]),
    ({"numpy": "2.4.6", "pip": "26.0", "snnrobust": "0.1.0"}, []),
])
def test_differences_name_each_mismatch(have, expected):
    assert envlock.differences({"numpy": "2.4.6"}, have) == expected


def test_lock_hash_is_the_files_sha256(tmp_path):
    import hashlib

    assert envlock.lock_sha256(LOCK) == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert envlock.lock_sha256(tmp_path / "missing.lock") is None


def test_envlock_cli_reports_a_mismatch_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.lock"
    bad.write_text(LOCK.read_text().replace("numpy==2.4.6", "numpy==1.0.0"))
    proc = subprocess.run([sys.executable, "-m", "snnrobust.envlock", "--lock", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "numpy is 2.4.6, the lock says 1.0.0" in lines[0]
