"""The default pipeline shared through a real network remote: DVC over SSH (dvc-ssh) to Debian's sshd on
127.0.0.1 with key-only authentication. After `make reproduce` (default scale, less the SR study: see
tests/test_dvc_remote.py), `make push` and a git tag, a fresh clone's
`make pull` leaves Snakemake nothing to do with a byte-identical report, a changed attack parameter reruns
exactly that attack's jobs, a tag plus `make pull` restores its version's files, and an unreachable or
corrupted remote is one line with nothing local changed or checked out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import sshd
from test_dvc_remote import (clone, copy_workspace, error_line, files, git, lock_hashes, make, md5, pending,
                             pushed, snakemake)

SCALE = "default"
ATTACK = "pgd10"  # the attack whose parameter changes (both studies of the run use it)
NEW_STEPS = 3
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def origin(tmp_path_factory, server) -> Path:
    """The default run pushed over SSH right after `make reproduce`, committed and tagged v1."""
    return pushed(tmp_path_factory, "dvc-ssh", server.url, server.keyfile)


def _hashes(wf: Path) -> dict[str, str]:
    return {p: md5(wf / p) for p in lock_hashes(wf)}


def _change_attack(wf: Path) -> None:
    config = yaml.safe_load((wf / "config/default.yaml").read_text())
    config["attacks"][ATTACK].setdefault("options", {})["steps"] = NEW_STEPS
    (wf / "config/default.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_clone_and_pull_then_nothing_reruns_a_changed_attack_reruns_exactly_and_tags_restore(origin, server, tmp_path):
    remote = server.url(origin.parent / "remote")
    wf = clone(origin, tmp_path / "clone", remote, server.keyfile)
    make(wf, "pull", f"SCALE={SCALE}")
    v1 = lock_hashes(wf)
    assert _hashes(wf) == v1
    assert "Nothing to be done" in snakemake(wf, SCALE, "-n").stdout
    assert (wf / "results/report.html").read_bytes() == (origin / "results/report.html").read_bytes()

    # one attack parameter changes: its jobs rerun, and only the tables, figures and pages built on them
    _change_attack(wf)
    plan = pending(wf, SCALE)
    expected = {p for p in v1 if p.startswith(("results/attacks/", "results/transfer/"))
                and Path(p).name.startswith(f"{ATTACK}_eps")}
    computed = {p for p, rule in plan.items() if rule in ("prepare_data", "train", "attack", "transfer", "analyze")}
    assert expected and computed == expected, plan
    assert all(p.startswith(("results/tables/", "results/figures/", "results/pages/")) for p in set(plan) - computed), plan

    # rerun and push it as v2; then each tag plus `make pull` gives back exactly its version
    make(wf, "reproduce", f"SCALE={SCALE}")
    make(wf, "push", f"SCALE={SCALE}")
    git(wf, "commit", "-qam", "v2: fewer attack steps")
    git(wf, "tag", "v2")
    v2 = lock_hashes(wf)
    assert {p for p in v1 if v1[p] != v2[p]} & expected
    for tag, pinned in (("v1", v1), ("v2", v2)):
        git(wf, "checkout", "-q", tag)
        make(wf, "pull", f"SCALE={SCALE}")
        assert _hashes(wf) == pinned, tag
        assert "Nothing to be done" in snakemake(wf, SCALE, "-n").stdout, tag


# Library notices (asyncssh's CryptographyDeprecationWarning under a newer cryptography) are not errors:
# with every warning shown, or turned into an error, stderr still holds our one line only (issue 19).
@pytest.mark.parametrize("warnings_env", [{}, {"PYTHONWARNINGS": "always"},
                                          {"PYTHONWARNINGS": "error::DeprecationWarning,error::UserWarning"}],
                         ids=["default", "always", "error"])
def test_unreachable_remote_is_one_line_and_changes_nothing(origin, server, tmp_path, warnings_env):
    wf = clone(origin, tmp_path / "clone", f"ssh://{server.user}@127.0.0.1:{sshd.free_port()}/nowhere",
               server.keyfile)
    before = files(wf)
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", check=False, env=warnings_env))
    assert "cannot reach DVC remote" in line and "nothing local was changed" in line
    assert files(wf) == before


def test_corrupted_object_on_the_ssh_remote_is_named_and_not_checked_out(origin, server, tmp_path):
    remote = copy_workspace(origin.parent / "remote", tmp_path / "remote")
    target = "results/models/digits/snn_vgg_tiny/vanilla/s0/run.json"
    h = lock_hashes(origin)[target]
    obj = remote / "files/md5" / h[:2] / h[2:]
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:-1] + b"#")
    wf = clone(origin, tmp_path / "clone", server.url(remote), server.keyfile)
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", check=False))
    assert target in line and f"dvc.lock: {h}" in line and "copy fetched from 'storage'" in line
    assert files(wf) == {}
