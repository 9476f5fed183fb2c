"""Check a Snakemake workflow profile before anything is submitted or touched: for a Slurm profile
(``executor: slurm``), every partition it names must exist on the cluster (``sinfo``).

    python workflow/scripts/slurm/check_profile.py workflow/profiles/slurm

Partitions are read from ``default-resources`` and ``set-resources`` (``slurm_partition``) and from the
file of ``slurm-partition-config``. A problem is one line ``snnrobust: error: ...`` and exit status 2,
so `make reproduce PROFILE=...` stops before Snakemake runs and no local file is deleted or overwritten.
A profile of another executor passes without a query.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PARTITION_KEY = "slurm_partition"


class ProfileError(Exception):
    """A profile that cannot run; its message is the one line printed."""


def _read_yaml(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ProfileError(f"{what} {path} not found")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{what} {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict):
        raise ProfileError(f"{what} {path} must be a mapping")
    return doc


def _name(value) -> str:
    """A partition as the profile writes it; Snakemake evaluates resource strings, so "'gpu'" means gpu."""
    return str(value).strip().strip("'\"")


def named_partitions(profile: Path) -> dict[str, str]:
    """Partition → where the profile names it (the first place)."""
    config_path = profile / "config.yaml"
    config = _read_yaml(config_path, "profile")
    found: dict[str, str] = {}
    default = config.get("default-resources") or {}
    if isinstance(default, dict) and PARTITION_KEY in default:
        found.setdefault(_name(default[PARTITION_KEY]), f"{config_path} default-resources")
    for rule, resources in (config.get("set-resources") or {}).items():
        if isinstance(resources, dict) and PARTITION_KEY in resources:
            found.setdefault(_name(resources[PARTITION_KEY]), f"{config_path} set-resources of rule {rule}")
    if config.get("slurm-partition-config"):
        part_path = profile / str(config["slurm-partition-config"])
        partitions = _read_yaml(part_path, "partition file").get("partitions")
        if not isinstance(partitions, dict) or not partitions:
            raise ProfileError(f"partition file {part_path} needs a non-empty 'partitions' mapping")
        for name in partitions:
            found.setdefault(_name(name), str(part_path))
    return found


def cluster_partitions() -> list[str]:
    """The partitions Slurm knows (``sinfo -h -o %R``)."""
    if shutil.which("sinfo") is None:
        raise ProfileError("sinfo not found: a Slurm profile needs Slurm's client commands on this host")
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ProfileError("sinfo did not answer in 60 s: is slurmctld running?") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise ProfileError(f"sinfo failed ({first}): is slurmctld running?")
    return sorted({line.strip() for line in proc.stdout.splitlines() if line.strip()})


def check_profile(profile: Path) -> str:
    """The line printed when the profile is fine; raises ProfileError otherwise."""
    config = _read_yaml(profile / "config.yaml", "profile")
    if config.get("executor") != "slurm":
        return f"profile {profile}: executor {config.get('executor', 'local')}, nothing to check"
    wanted = named_partitions(profile)
    have = cluster_partitions()
    for name, where in wanted.items():
        if name not in have:
            raise ProfileError(f"partition {name!r} (named in {where}) does not exist on this cluster; "
                               f"sinfo lists: {', '.join(have) or 'no partition'}")
    return f"profile {profile}: partitions {', '.join(wanted) or '(cluster default)'} exist"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: check_profile.py PROFILE_DIR", file=sys.stderr)
        return 2
    try:
        print(check_profile(Path(args[0])))
    except ProfileError as exc:
        print(f"snnrobust: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
