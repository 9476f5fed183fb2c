"""`make push`, `make pull` and `make remote`: DVC transfers of one scale's stages, each file checked
against its hash in dvc.lock, every failure one line.

push: regenerate dvc.yaml from the DAG, record the stages' mtimes, `dvc commit` (this writes dvc.lock,
so a push right after `make reproduce` sends everything), check the cache copies, `dvc push`.
pull: fetch into the cache only, check every needed cache copy against dvc.lock (a corrupted remote or
cache object is an error naming the file, and nothing is checked out), then check out and restore the
mtimes. A failed fetch (unreachable remote, files missing there) stops before the workspace is touched,
and DVC itself refuses to replace a local file whose content is in no cache.

.dvc/config (no comments: DVC rewrites the file) sets the default remote `storage` to a folder beside the
checkout, with `verify = True` so that even a plain `dvc pull` drops a download that does not match its
hash, and `cache.type = reflink,copy`: never hardlinks or symlinks, since Snakemake rewrites its metadata
records in place and would write through a link into the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import yaml

from snnrobust.errors import SnnRobustError
from snnrobust.sharing import dag, mtimes, stages as stages_mod
from snnrobust.sharing.stages import Stage

REMOTE = "storage"
DVC_LOCK = "dvc.lock"
_SHOWN = 3  # files named in a one-line message before "and N more"


def _names(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


class _Records(logging.Handler):
    """Keeps DVC's log records for the one-line error instead of printing them."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def cause(self) -> str:
        """The last error DVC logged, with its exception (e.g. why a connection failed)."""
        for record in reversed(self.records):
            if record.levelno >= logging.ERROR:
                exc = record.exc_info[1] if record.exc_info else None
                return f"{record.getMessage()}: {exc}" if exc else record.getMessage()
        return ""

    def corrupted(self) -> set[str]:
        """md5s of the objects DVC found corrupted (and dropped) while checking a remote or the cache."""
        return {Path(r.args[0]).parent.name + Path(r.args[0]).name for r in self.records
                if r.msg.startswith("corrupted cache file") and r.args}


@contextlib.contextmanager
def _quiet_dvc():
    """DVC's and its libraries' log records go to one collector (DVC attaches console handlers at import)."""
    handler = _Records()
    logs = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    saved = [(log.handlers[:], log.propagate, log.level) for log in logs]
    for log in logs:
        log.handlers, log.propagate = [handler], False
        log.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for log, (handlers, propagate, level) in zip(logs, saved):
            log.handlers, log.propagate, log.level = handlers, propagate, level


def _open(root: Path, verify: bool | None = None):
    """The DVC repo at ``root`` with its default remote (``verify`` overrides the remote's setting)."""
    from dvc.config import Config
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        name = Config(str(root / ".dvc"))["core"].get("remote")
        if not name:
            raise SnnRobustError("no default DVC remote: run `make remote URL=<path or ssh://host/path>` first")
        repo = Repo(str(root), remote_config=None if verify is None else {"verify": verify})
    except DvcException as exc:
        raise SnnRobustError(f"DVC: {_one_line(str(exc))}") from None
    return repo, name, repo.config["remote"].get(name, {}).get("url", "?")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _lock(root: Path, stages: list[Stage]) -> dict[str, str]:
    """path → md5 of every file of ``stages`` as dvc.lock pins it."""
    try:
        locked = (yaml.safe_load((root / DVC_LOCK).read_text()) or {}).get("stages", {})
    except FileNotFoundError:
        locked = {}
    out = {}
    for stage in stages:
        if stage.name not in locked:
            raise SnnRobustError(f"{DVC_LOCK} has no hashes for stage {stage.name}: nothing was pushed for it at this "
                                 f"version (run `make push` where its results are, then commit {DVC_LOCK})")
        entries = {o["path"]: o.get("md5") for o in locked[stage.name].get("outs", [])}
        if sorted(entries) != sorted(stage.outs) or None in entries.values():
            raise SnnRobustError(f"{DVC_LOCK} does not match dvc.yaml for stage {stage.name}: "
                                 f"commit the dvc.lock that `make push` wrote with this dvc.yaml")
        out.update(entries)
    return out


def md5(path: str | os.PathLike) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _corrupted(repo, pinned: dict[str, str]) -> list[tuple[str, str, str]]:
    """(path, md5 in dvc.lock, actual md5) of every cache copy whose content does not match dvc.lock; the
    bad copies are removed so that no later checkout or push can use them."""
    bad = []
    for path, expected in pinned.items():
        obj = repo.cache.local.oid_to_path(expected)
        if os.path.exists(obj) and (actual := md5(obj)) != expected:
            bad.append((path, expected, actual))
            os.chmod(obj, 0o644)  # DVC keeps cache copies read-only
            os.unlink(obj)
    return bad


def _mismatch_error(bad, where, remedy: str) -> SnnRobustError:
    details = [f"{path} ({where(path)}: md5 {actual}, dvc.lock: {expected})" for path, expected, actual in bad]
    return SnnRobustError(f"{len(bad)} file(s) do not match their hash in {DVC_LOCK}: {_names(details)}; "
                          f"removed the bad cache copies; {remedy}")


def _absent_error(name: str, url: str, pinned: dict[str, str], absent: list[str], corrupted: set[str]):
    """Files the fetch could not bring: missing on the remote, or there but corrupted (DVC's check of a
    local-path remote drops an object whose content does not match its hash, as if it were missing)."""
    bad = [p for p in absent if pinned[p] in corrupted]
    if bad:
        return SnnRobustError(f"{len(bad)} file(s) on DVC remote {name!r} ({url}) do not match their hash in "
                              f"{DVC_LOCK} (corrupted copies, dropped): {_names(bad)}; `make push` from a good copy "
                              f"restores them; nothing was checked out")
    return SnnRobustError(f"DVC remote {name!r} ({url}) lacks {len(absent)} of {len(pinned)} file(s) of this version "
                          f"({_names(absent)}): was `make push` run for it? nothing local was changed")


def _checkout_error(root: Path, exc) -> SnnRobustError:
    """DVC refuses, before changing anything, to replace local files whose content is in no cache."""
    lines = str(exc).splitlines()
    if "unsaved files" in lines[0]:
        local = [os.path.relpath(p, root.resolve()) for p in lines[1:] if p.strip()]
        return SnnRobustError(f"pull would replace {len(local)} local file(s) that differ from {DVC_LOCK} and are in no "
                              f"DVC cache ({_names(local)}): `make push` them or move them away; nothing was changed")
    return SnnRobustError(f"checkout failed: {_one_line(str(exc))}")


def generate(root: Path, scale: str, check: bool = False) -> list[Stage]:
    """dvc.yaml for ``scale`` from the Snakemake DAG: written, or (``check``) compared with the file."""
    configfile = f"config/{scale}.yaml"
    if not (root / configfile).is_file():
        raise SnnRobustError(f"{configfile} is missing")
    studies, products = dag.products(root, root / configfile)
    stages = stages_mod.build(scale, studies, products)
    text = stages_mod.render(stages, configfile)
    path = root / stages_mod.DVC_YAML
    current = path.read_text() if path.exists() else ""
    if check:
        if current != text:
            raise SnnRobustError(f"{stages_mod.DVC_YAML} is out of date with the Snakemake DAG of scale {scale!r}: "
                                 f"run `python -m snnrobust.sharing stages --scale {scale}` and commit it")
    elif current != text:
        from snnrobust.io import write_bytes

        write_bytes(path, text.encode())
        print(f"{stages_mod.DVC_YAML}: written for scale {scale!r} ({len(stages)} stages); commit it with {DVC_LOCK}")
    return stages


def push(root: Path, scale: str, study: str) -> int:
    """Commit and upload the stages of ``study`` at ``scale``; returns how many files were uploaded."""
    from dvc.exceptions import DvcException

    chosen = stages_mod.select(generate(root, scale), scale, study)
    missing = [f for s in chosen for f in s.files if not (root / f).is_file()]
    if missing:
        raise SnnRobustError(f"{len(missing)} file(s) to push are missing ({_names(missing)}): "
                             f"run `make reproduce SCALE={scale} STUDY={study}` first")
    for stage in chosen:
        mtimes.write(root, stage)
    repo, name, url = _open(root)
    names = [s.name for s in chosen]
    with _quiet_dvc() as log:
        try:
            for stage in names:
                repo.commit(stage, force=True, relink=False)  # never rewrite (re-time) a workspace file
            bad = _corrupted(repo, _lock(root, chosen))
            if bad:
                raise _mismatch_error(bad, lambda p: "local DVC cache", "run `make push` again to re-add them")
            pushed = repo.push(targets=names)
        except DvcException as exc:
            cause = log.cause() or _one_line(str(exc))
            raise SnnRobustError(f"push to DVC remote {name!r} ({url}) failed: {cause}") from None
    print(f"pushed {pushed} new file(s) of {len(names)} stage(s) to {name!r} ({url}); "
          f"commit {stages_mod.DVC_YAML} and {DVC_LOCK} (and tag the commit) to version them")
    return pushed


def pull(root: Path, scale: str, study: str) -> int:
    """Fetch, check and check out the stages of ``study`` at ``scale``; returns how many files were set."""
    from dvc.exceptions import DvcException

    chosen = stages_mod.select(stages_mod.load(root), scale, study)
    pinned = _lock(root, chosen)
    repo, name, url = _open(root, verify=False)  # hashes are checked below, with the file named
    names = [s.name for s in chosen]

    def in_cache(md5_: str) -> bool:
        return os.path.exists(repo.cache.local.oid_to_path(md5_))

    cached_before = {h for h in pinned.values() if in_cache(h)}
    with _quiet_dvc() as log:
        try:
            repo.fetch(targets=names)
        except DvcException as exc:
            failure = log.cause() or _one_line(str(exc))
        else:
            failure = ""
        if "failed to connect" in failure:
            raise SnnRobustError(f"cannot reach DVC remote {name!r} ({url}): {failure}; nothing local was changed")
        absent = [p for p, h in pinned.items() if not in_cache(h)]
        if absent:
            raise _absent_error(name, url, pinned, absent, log.corrupted())
        if failure:
            raise SnnRobustError(f"fetch from DVC remote {name!r} ({url}) failed: {failure}; nothing local was changed")
    bad = _corrupted(repo, pinned)
    if bad:
        def where(path):
            return "local DVC cache" if pinned[path] in cached_before else f"copy fetched from {name!r}"
        raise _mismatch_error(bad, where, "nothing was checked out (`make pull` again refetches them)")
    with _quiet_dvc():
        try:
            repo.checkout(targets=names)
        except DvcException as exc:
            raise _checkout_error(root, exc) from None
    # Snakemake migrates a metadata folder without this one (an old layout); a pulled folder is current.
    (root / ".snakemake" / "incomplete").mkdir(parents=True, exist_ok=True)
    count = sum(mtimes.restore(root, stage) for stage in chosen)
    print(f"pulled {len(names)} stage(s) ({count} files) of scale {scale!r}, study {study!r}, from {name!r} ({url})")
    return count


def set_remote(root: Path, url: str, keyfile: str | None = None) -> None:
    """Make ``url`` the default remote ``storage`` (in .dvc/config, shared); ``keyfile`` (SSH) goes to
    .dvc/config.local. The two files are edited together and validated as one, or left as they were."""
    from dvc.config import Config
    from dvc.exceptions import DvcException

    if not url.strip():
        raise SnnRobustError("no remote URL: `make remote URL=<path or ssh://[user@]host[:port]/path>`")
    dvc_dir = root / ".dvc"
    files = [dvc_dir / "config", dvc_dir / "config.local"]
    saved = {f: f.read_bytes() if f.exists() else None for f in files}
    try:
        config = Config(str(dvc_dir), validate=False)
        with config.edit("local", validate=False) as conf:  # an old SSH key must not outlive its URL
            conf["remote"].pop(REMOTE, None)
            if keyfile:
                conf["remote"][REMOTE] = {"keyfile": str(Path(keyfile).expanduser().resolve())}
        with config.edit("repo", validate=False) as conf:
            conf["remote"][REMOTE] = {"url": url, "verify": True}
            conf["core"]["remote"] = REMOTE
        Config(str(dvc_dir))  # validates both levels together
    except DvcException as exc:
        for f, content in saved.items():
            if content is None:
                f.unlink(missing_ok=True)
            else:
                f.write_bytes(content)
        raise SnnRobustError(f"remote {url!r}: {_one_line(str(exc))}; the DVC config was left as it was") from None
    print(f"default DVC remote {REMOTE!r}: {url}" + (f" (key {keyfile}, in .dvc/config.local)" if keyfile else ""))
