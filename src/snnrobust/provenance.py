"""Provenance stamped into every result file: git commit, config hash, package versions, environment lock,
device and seed.

The verbs that compute results (train, attack, analyze) put ``provenance(spec, device)`` in what they
write, so a result file says by itself which code, config, libraries, device and seed produced it;
``python -m snnrobust provenance PATH`` prints it back and the report's about page lists it.

Two hashes: ``spec_hash`` is the job's own spec (the slice of the config the result depends on; a change
reruns the job), ``config_hash`` the whole merged config of the run that wrote it. The library never reads
the config, so the workflow hands the latter down in ``SNNROBUST_CONFIG_HASH`` (``config_hash(config)``);
a verb run by hand records ``null``. Torch is imported lazily: Snakemake imports this module at parse time.

``lock_sha256`` is the SHA-256 of the environment lock (``envs/requirements-linux-x86_64-py311.lock``,
which `make install` installs): it names the whole environment, transitive packages included, that made a
result. ``null`` when no lock file is found (an installed copy run outside a checkout).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import snnrobust

#: Environment variable through which the workflow passes the run's config hash to every job.
CONFIG_HASH_ENV = "SNNROBUST_CONFIG_HASH"
#: Distributions whose versions a result depends on (None when one is not installed).
PACKAGES = ("snnrobust", "torch", "numpy", "spikingjelly", "torch-geometric", "scikit-learn", "pandas")
#: The environment lock `make install` installs, relative to the checkout (snnrobust.envlock.LOCK_NAME).
LOCK_FILE = "envs/requirements-linux-x86_64-py311.lock"
#: Bumped when the fields below change, so readers can tell old records from new ones (3: lock_file, lock_sha256).
SCHEMA = 3


def spec_hash(spec: dict) -> str:
    """Short SHA-256 of the canonical JSON of a job spec (what a result depends on; also the checkpoint
    fingerprint, so its form must not change)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(config: Mapping[str, Any]) -> str:
    """Short SHA-256 of a whole config's canonical JSON: key order and YAML layout do not change it."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _source_root() -> Path:
    """The checkout the package is imported from (``src/snnrobust`` → two folders up)."""
    return Path(snnrobust.__file__).resolve().parents[2]


def _checkout_root() -> Path | None:
    """The repository the package runs from when it is a source checkout (``<root>/src/snnrobust``), else None:
    an installed copy sits in site-packages, whose parent folders are no checkout of ours."""
    package = Path(snnrobust.__file__).resolve().parent
    return package.parents[1] if package.parent.name == "src" else None


def lock_file() -> Path | None:
    """The environment lock of the code that runs: the source checkout's (``make install`` is editable), else
    the working directory's (an installed copy run by the workflow from its checkout); None when neither has one."""
    for root in (_checkout_root(), Path.cwd()):
        if root is not None and (root / LOCK_FILE).is_file():
            return root / LOCK_FILE
    return None


def lock_sha256(path: Path | None = None) -> str | None:
    """Full SHA-256 of the lock file (default: ``lock_file()``), None when there is none. Read on every call:
    the lock is small, and a cached hash would outlive a `make lock` in a long-lived process."""
    path = lock_file() if path is None else Path(path)
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    root = _source_root()
    if not (root / ".git").exists():  # an installed copy: never report an enclosing foreign repository
        return None
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(full commit of the source checkout, whether tracked files differ from it); (None, None) without git."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def code_version() -> str:
    """Package version plus the short git commit of the source tree when there is one."""
    commit, _ = git_state()
    return f"{snnrobust.__version__}+{commit[:7] if commit else 'nogit'}"


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Installed version of each distribution in PACKAGES (None if absent)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def seed_of(spec: Mapping[str, Any]) -> int | None:
    """The seed a job used: an attack's ``seed``, a training recipe's ``train.seed``, else its run's label."""
    for value in (spec.get("seed"), (spec.get("train") or {}).get("seed"), (spec.get("labels") or {}).get("seed")):
        if value is not None:
            return int(value)
    return None


def device_record(device) -> dict[str, str]:
    """The device actually used: its type and, on CUDA, the GPU's name."""
    import torch

    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"device": device.type, "device_name": name}


def provenance(spec: dict, device=None) -> dict[str, Any]:
    """What a result file records about how it was made. ``device`` is the one the verb ran on (default:
    the spec's ``device`` resolved as the verbs resolve it)."""
    import torch

    from snnrobust.device import resolve_device

    commit, dirty = git_state()
    used = resolve_device(spec.get("device")) if device is None else device
    lock = lock_file()
    return {
        "schema": SCHEMA,
        "git_commit": commit,
        "git_dirty": dirty,
        "code_version": code_version(),
        "config_hash": os.environ.get(CONFIG_HASH_ENV) or None,
        "spec_hash": spec_hash(spec),
        "seed": seed_of(spec),
        **device_record(used),
        "threads": torch.get_num_threads(),
        "packages": package_versions(),
        "lock_file": LOCK_FILE if lock is not None else None,
        "lock_sha256": lock_sha256(lock) if lock is not None else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
