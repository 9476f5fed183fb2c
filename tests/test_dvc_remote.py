"""`make push` / `make pull` with a local-folder DVC remote, on the default scale reproduced once in a
temporary git copy of the project: a push right after `make reproduce` sends every product with its
Snakemake records, `STUDY=` pulls one paper's files only, a corrupted remote or cache copy is an error naming
the file with nothing checked out, and a remote without the files (or a local file that no cache holds)
changes nothing locally.

The run is config/default.yaml as it is, less the SR study: its adversarially trained models and ensemble
attacks are most of the default run's jobs and time, while the two other studies (a minute or two on 2
cores) still share a model, so files of several studies meet in one stage. The helpers here and that one
run serve tests/test_dvc_ssh.py too: the session builds it once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from snnrobust.config import load_config

PY_BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "PATH": f"{PY_BIN}{os.pathsep}{os.environ['PATH']}"}
TRACKED_TOPS = ("results", "data", ".snakemake/metadata", ".dvc-mtimes")


# ---------------------------------------------------------------- helpers (shared with test_dvc_ssh.py)

def run(args: list[str], cwd: Path, check: bool = True, timeout: int = 1200,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def make(wf: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`make` in a workspace whose venv (a link to this one) counts as installed."""
    return run(["make", "-s", *args, "-o", ".venv/.installed"], wf, check=check, env=env)


def git(wf: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], wf).stdout


def _link_venv(wf: Path) -> Path:
    (wf / ".venv").symlink_to(PY_BIN.parent)
    with (wf / ".git/info/exclude").open("a") as f:
        f.write(".venv\n")
    return wf


def workspace(dest: Path) -> Path:
    """A git repository holding the project's working tree (tracked and untracked files, never ignored ones,
    so no results, cache or local DVC config), committed."""
    listed = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], REPO).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "project")
    return _link_venv(dest)


def clone(src: Path, dest: Path, remote: str, keyfile: Path | None = None) -> Path:
    git(src.parent, "clone", "-q", str(src), str(dest))
    _link_venv(dest)
    make(dest, "remote", f"URL={remote}", *([f"KEYFILE={keyfile}"] if keyfile else []))
    return dest


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def lock_hashes(wf: Path) -> dict[str, str]:
    """path → md5 of every output dvc.lock pins."""
    stages = yaml.safe_load((wf / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in stages.values() for o in s["outs"]}


def files(wf: Path) -> dict[str, tuple[str, int]]:
    """Every file under the DVC-tracked folders (not git's READMEs there): (md5, mtime_ns)."""
    out = {}
    for top in TRACKED_TOPS:
        for p in sorted((wf / top).rglob("*")) if (wf / top).exists() else []:
            if p.is_file() and p.name != "README.md":
                out[str(p.relative_to(wf))] = (md5(p), p.stat().st_mtime_ns)
    return out


def snakemake(wf: Path, scale: str, *args: str) -> subprocess.CompletedProcess:
    return run([str(PY_BIN / "snakemake"), "--workflow-profile", "workflow/profiles/default",
                "--configfile", f"config/{scale}.yaml", "--cores", "2", *args], wf)


def pending(wf: Path, scale: str, *targets: str) -> dict[str, str]:
    """output file → rule of every job Snakemake would run now (from `--summary`, which runs nothing)."""
    out = {}
    for line in snakemake(wf, scale, "--summary", *targets).stdout.splitlines():
        cols = line.split("\t")
        if len(cols) == 6 and cols[5] == "update pending":
            out[cols[0]] = cols[2]
    return out


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one `snnrobust: error:` line a failed make target printed (asserting there is exactly one)."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("snnrobust: error:")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stdout + proc.stderr
    noise = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(("snnrobust:", "make"))]
    assert not noise, f"more than the one error line on stderr: {noise}"
    return lines[0]


def copy_workspace(src: Path, dest: Path) -> Path:
    """A copy of a workspace with its results; file times are kept, so Snakemake sees the same state."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


_REPRODUCED: dict[str, Path] = {}
HEAVY_STUDY = "sr"


def _needs_heavy_run(sweep: dict, config: dict) -> bool:
    """Whether a sweep or analysis entry needs a (model, method) that no remaining study trains."""
    trained = {(m, meth) for study in config["studies"].values() for entry in study.get("train", [])
               for m in entry["model"] for meth in entry["method"]}
    return any((m, meth) not in trained for m in sweep["model"] for meth in sweep["method"])


def reproduced(tmp_path_factory) -> Path:
    """`make reproduce` at default scale (less the SR study) in a git copy of the project, once per session."""
    if "default" not in _REPRODUCED:
        wf = workspace(tmp_path_factory.mktemp("reproduced") / "wf")
        config = yaml.safe_load((wf / "config/default.yaml").read_text())
        del config["studies"][HEAVY_STUDY]
        for study in config["studies"].values():  # sweeps and analyses of a run only the SR study trains (trail
            for key in ("sweeps", "analyses"):     # Fig. 2; Spiking-PGD's redundancy of the normal ANN)
                if key in study:
                    study[key] = [s for s in study[key] if not _needs_heavy_run(s, config)]
        (wf / "config/default.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        git(wf, "commit", "-qam", "default scale without the SR study")
        make(wf, "reproduce", "SCALE=default")
        _REPRODUCED["default"] = wf
    return _REPRODUCED["default"]


def pushed(tmp_path_factory, name: str, url_of, keyfile: Path | None = None) -> Path:
    """A copy of the reproduced workspace, pushed right after the run to ``url_of(remote folder)``, with
    dvc.yaml and dvc.lock committed and tagged v1 (a version of the project)."""
    root = tmp_path_factory.mktemp(name)
    wf = copy_workspace(reproduced(tmp_path_factory), root / "origin")
    (root / "remote").mkdir()
    make(wf, "remote", f"URL={url_of(root / 'remote')}", *([f"KEYFILE={keyfile}"] if keyfile else []))
    assert "pushed" in make(wf, "push", "SCALE=default").stdout
    git(wf, "add", "-A")
    git(wf, "commit", "-qm", "v1 results")
    git(wf, "tag", "v1")
    return wf


SCALE = "default"
STUDY = "sparsity_trail"  # the smallest study: its pull must bring its files and no other study's


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    return pushed(tmp_path_factory, "dvc-local", str)


def _remote(origin: Path) -> Path:
    return origin.parent / "remote"


def _corrupt(path: Path) -> None:
    """Flip one byte in the middle, keeping size and mtime (DVC's own state cannot tell)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# ---------------------------------------------------------------- tests

pytestmark = pytest.mark.slow


def test_push_after_reproduce_sends_every_product_with_its_snakemake_records(origin):
    pinned = lock_hashes(origin)
    on_remote = {p.parent.name + p.name for p in (_remote(origin) / "files/md5").rglob("*") if p.is_file()}
    assert set(pinned.values()) <= on_remote
    # every file the run left under the tracked folders is pinned: outputs, benchmarks, checkpoints,
    # prepared data and each metadata record Snakemake wrote (its rerun decisions travel with the results)
    on_disk = set(files(origin))
    assert on_disk <= set(pinned), sorted(on_disk - set(pinned))[:5]
    for prefix in ("data/prepared/", "results/checkpoints/", "results/benchmarks/", ".snakemake/metadata/"):
        assert any(p.startswith(prefix) for p in on_disk), prefix
    assert all(md5(origin / p) == h for p, h in pinned.items())


@pytest.mark.parametrize("study", [STUDY, "spiking_pgd"])  # every study of the reproduced run (not sr: see above)
def test_pull_of_one_study_fetches_that_study_only_and_completes_its_target(origin, tmp_path, study):
    wf = clone(origin, tmp_path / "clone", str(_remote(origin)))
    make(wf, "pull", f"SCALE={SCALE}", f"STUDY={study}")
    present = set(files(wf))
    plan = load_config(wf / f"config/{SCALE}.yaml", REPO / "workflow/schemas/config.schema.yaml")
    own = plan.study_files(study)
    assert {p for p in present if p.startswith("results/attacks/")} == set(own["attacks"])
    assert {p for p in present if p.startswith("results/analysis/")} == set(own["analyses"])
    assert {p for p in present if p.endswith("metrics.csv")} == set(own["training"])
    own_files = {p for paths in own.values() for p in paths}
    foreign = {p for other in plan.studies if other != study
               for paths in plan.study_files(other).values() for p in paths} - own_files
    assert foreign and not present & foreign
    assert "results/report.html" not in present and "results/pages/overview.html" not in present
    assert {f"results/pages/{study}/overview.html", f"results/pages/{study}/about.html"} <= present
    assert all(md5(wf / p) == h for p, h in lock_hashes(wf).items() if p in present)
    # the pull brought everything the study's target needs (its own summary pages included): nothing to do
    assert pending(wf, SCALE, study) == {}
    dry = snakemake(wf, SCALE, "-n", study)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_corrupted_remote_copy_is_an_error_naming_the_file_and_nothing_is_checked_out(origin, tmp_path):
    remote = copy_workspace(_remote(origin), tmp_path / "remote")
    target = "results/attacks/digits/snn_vgg_tiny/vanilla/s0/pgd10_eps8.json"
    h = lock_hashes(origin)[target]
    _corrupt(remote / "files/md5" / h[:2] / h[2:])
    wf = clone(origin, tmp_path / "clone", str(remote))
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", check=False))
    assert target in line and "do not match their hash" in line and "corrupted" in line
    assert files(wf) == {}  # nothing checked out, so nothing downstream can run on it


def test_corrupted_cache_copy_is_an_error_naming_the_file_then_a_pull_refetches(origin, tmp_path):
    wf = clone(origin, tmp_path / "clone", str(_remote(origin)))
    make(wf, "pull", f"SCALE={SCALE}", f"STUDY={STUDY}")
    target = "results/models/digits/sew_resnet18_max/vanilla/s0/metrics.csv"  # a model of the trail study
    h = lock_hashes(wf)[target]
    _corrupt(wf / ".dvc/cache/files/md5" / h[:2] / h[2:])
    (wf / target).unlink()
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", f"STUDY={STUDY}", check=False))
    assert target in line and "local DVC cache" in line and f"dvc.lock: {h}" in line
    assert not (wf / target).exists()
    make(wf, "pull", f"SCALE={SCALE}", f"STUDY={STUDY}")
    assert md5(wf / target) == h


def test_remote_without_the_files_changes_nothing_locally(origin, tmp_path):
    wf = clone(origin, tmp_path / "clone", str(tmp_path / "empty-remote"))
    model = wf / "results/models/digits/snn_vgg_tiny/vanilla/s0/model.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"a local file the pull must not touch")
    before = files(wf)
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", check=False))
    assert "lacks" in line and "make push" in line and "nothing local was changed" in line
    assert files(wf) == before


def test_pull_never_replaces_a_local_file_that_no_cache_holds(origin, tmp_path):
    wf = clone(origin, tmp_path / "clone", str(_remote(origin)))
    table = wf / f"results/tables/{STUDY}/attacks.csv"
    table.parent.mkdir(parents=True)
    table.write_text("edited locally\n")
    before = files(wf)
    line = error_line(make(wf, "pull", f"SCALE={SCALE}", f"STUDY={STUDY}", check=False))
    assert f"results/tables/{STUDY}/attacks.csv" in line and "nothing was changed" in line
    assert files(wf) == before


def test_push_of_missing_results_is_one_line(origin, tmp_path):
    wf = clone(origin, tmp_path / "clone", str(tmp_path / "remote"))
    line = error_line(make(wf, "push", f"SCALE={SCALE}", check=False))
    assert "missing" in line and f"make reproduce SCALE={SCALE}" in line
    assert not (tmp_path / "remote").exists()
