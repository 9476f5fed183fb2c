"""The environment lock: which file pins every package, its hash, and whether this Python matches it.

`make install` installs `envs/requirements-linux-x86_64-py311.lock` (pip-compile --generate-hashes) and then
the project with --no-deps; `python -m snnrobust.envlock` checks that what is installed equals the lock,
package for package, so "same config and seed, same numbers" also means "same code, down to numpy".
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from importlib import metadata
from pathlib import Path

#: The lock of this platform and Python (the only one CI can build and test; see README "Environment").
LOCK_NAME = "requirements-linux-x86_64-py311.lock"
#: Installed but not locked on purpose: the installer itself and the project (installed --no-deps, editable).
NOT_LOCKED = frozenset({"pip", "snnrobust"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 name: `Flufl.Lock` and `flufl_lock` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def repo_lock_path(start: Path | None = None) -> Path | None:
    """The lock file of the checkout this code runs from (or of `start`), or None outside a checkout."""
    roots = [start] if start is not None else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in roots:
        path = Path(root) / "envs" / LOCK_NAME
        if path.is_file():
            return path
    return None


def lock_sha256(path: Path | None = None) -> str | None:
    """sha256 of the lock file (provenance records it: which environment made a result), None if absent."""
    path = path if path is not None else repo_lock_path()
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` of every package a pip-compile lock (or requirement list) pins."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    """Every distribution importable by this Python, by canonical name."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    """One line per package that is missing, extra or at another version than the lock says."""
    out = []
    for name in sorted(set(lock) | set(have)):
        if name in NOT_LOCKED:
            continue
        want, got = lock.get(name), have.get(name)
        if want is None:
            out.append(f"{name}=={got} is installed but not in the lock")
        elif got is None:
            out.append(f"{name}=={want} is locked but not installed")
        elif want != got:
            out.append(f"{name} is {got}, the lock says {want}")
    return out


CONDA_HEAD = """\
# Conda environment for cluster users (`snakemake --use-conda`, or `conda env create -f envs/snnrobust.yaml`): python from conda-forge, every
# Python package at the version of envs/{lock} (written by `make lock`; do not edit by hand).
name: snnrobust
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def conda_env(pins: dict[str, str], lock_name: str = LOCK_NAME) -> str:
    """envs/snnrobust.yaml: the lock's pins, one per line (conda's pip cannot mix hashes and an editable)."""
    lines = [CONDA_HEAD.format(lock=lock_name)]
    lines += [f"      - {name}=={version}\n" for name, version in sorted(pins.items())]
    lines.append("      - -e ..\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnrobust.envlock", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", default=None, help=f"lock file (default: envs/{LOCK_NAME} of this checkout)")
    parser.add_argument("--write-conda", default=None, metavar="YAML",
                        help="write the conda env file from the lock instead of checking this environment")
    a = parser.parse_args(argv)
    path = Path(a.lock) if a.lock else repo_lock_path()
    if path is None or not path.is_file():
        print(f"snnrobust: error: lock file {a.lock or 'envs/' + LOCK_NAME} not found", file=sys.stderr)
        return 2
    if a.write_conda:
        Path(a.write_conda).write_text(conda_env(read_pins(path), path.name))
        print(f"wrote {a.write_conda} from {path}")
        return 0
    diff = differences(read_pins(path), installed())
    if diff:
        print(f"snnrobust: error: this environment differs from {path} in {len(diff)} package(s): "
              + "; ".join(diff[:5]) + (" ..." if len(diff) > 5 else "") + " (run: make install)", file=sys.stderr)
        return 2
    print(f"environment equals {path} ({len(read_pins(path))} packages, sha256 {lock_sha256(path)[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
