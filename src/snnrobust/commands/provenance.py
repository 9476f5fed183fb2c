"""Verb `provenance`: read back what result files record about how they were made (commit, config hash,
packages, environment lock, device, seed), print it, and optionally write the report's about page (HTML) and
its CSV. Given the workflow's timing spec, the page also says where the run's time went (snnrobust.report.timing).

A path is a result JSON (train run.json, attack, transfer, analysis), a model.pt or metrics.csv (read from the
run.json beside it), or a folder (every result JSON under it). Records written before the provenance fields
were complete are read too; a field they lack shows as "not recorded".
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from snnrobust.errors import SnnRobustError
from snnrobust.provenance import LOCK_FILE, PACKAGES

#: Files whose provenance lives in the run.json beside them (a trained model's other outputs).
BESIDE_RUN = ("model.pt", "metrics.csv")
#: Columns of one file's provenance row, in print order (packages follow).
FIELDS = ("file", "kind", "git_commit", "git_dirty", "config_hash", "spec_hash", "seed", "device", "device_name",
          "python", "lock_sha256", "host", "slurm_job_id")
#: What a run shares across its files: the about page groups files by these.
SHARED = ("git_commit", "git_dirty", "config_hash", "lock_sha256", "device", "device_name", "python", *PACKAGES)
MISSING = "not recorded"
#: What a record made where no lock file was found says about its environment (older records: MISSING).
NO_LOCK = "no lock file"


def _load(path: Path) -> dict | None:
    """The JSON document of a result file, or None when the file is not one (no ``provenance`` mapping)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("provenance"), dict) else None


def _kind(doc: dict) -> str:
    if "final" in doc:
        return "train"
    rows = doc.get("rows") or [{}]
    if doc.get("kind") == "attack":
        return "transfer" if rows[0].get("threat") == "black-box" else "attack"
    return "analysis" if "analysis_name" in rows[0] else str(doc.get("kind", "result"))


def _commit(prov: dict) -> str | None:
    """The full commit, or the short one older records kept in ``code_version`` ('0.1.0+abc1234')."""
    if prov.get("git_commit"):
        return prov["git_commit"]
    rev = str(prov.get("code_version", "")).partition("+")[2]
    return rev if rev and rev != "nogit" else None


def _lock(prov: dict) -> str | None:
    """The lock file's sha256; NO_LOCK when the writer found none; None (not recorded) in records before schema 3."""
    if "lock_sha256" not in prov:
        return None
    return prov["lock_sha256"] or NO_LOCK


def provenance_row(path: Path, doc: dict) -> dict[str, Any]:
    """One file's provenance as a flat row (package versions as columns named after the package)."""
    prov = doc["provenance"]
    packages = dict(prov.get("packages") or {})
    packages.setdefault("torch", prov.get("torch"))
    seed = prov.get("seed", (doc.get("rows") or [doc])[0].get("seed", doc.get("seed")))
    return {"file": str(path), "kind": _kind(doc), "git_commit": _commit(prov), "git_dirty": prov.get("git_dirty"),
            "config_hash": prov.get("config_hash"), "spec_hash": prov.get("spec_hash"), "seed": seed,
            "device": prov.get("device"), "device_name": prov.get("device_name"), "python": prov.get("python"),
            "lock_sha256": _lock(prov), "host": prov.get("host"), "slurm_job_id": prov.get("slurm_job_id"),
            **{name: packages.get(name) for name in PACKAGES}}


def _expand(path: str) -> tuple[list[tuple[Path, dict]], bool]:
    """(result files of one path, whether it was a folder); a path that holds none is a one-line error."""
    p = Path(path)
    if p.is_dir():
        found = [(f, doc) for f in sorted(p.rglob("*.json")) if (doc := _load(f)) is not None]
        if not found:
            raise SnnRobustError(f"no result file with provenance under {path}")
        return found, True
    if not p.exists():
        raise SnnRobustError(f"provenance: {path} does not exist")
    source = p.with_name("run.json") if p.name in BESIDE_RUN else p
    doc = _load(source) if source.is_file() else None
    if doc is None:
        raise SnnRobustError(f"{path} records no provenance (give a result JSON of train, attack or analyze, "
                             f"a model.pt, or a folder of them)")
    return [(source, doc)], False


def provenance_frame(paths: Iterable[str]) -> tuple[pd.DataFrame, bool]:
    """Rows of every result file the paths name (duplicates once); True when some path was a folder."""
    rows, seen, any_folder = [], set(), False
    for path in paths:
        found, folder = _expand(path)
        any_folder |= folder
        for file, doc in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                rows.append(provenance_row(file, doc))
    return pd.DataFrame(rows, columns=[*FIELDS, *PACKAGES]), any_folder


def _show(value: Any) -> str:
    return MISSING if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _commit_text(commit: Any, dirty: Any) -> str:
    """A commit, flagged when its checkout had uncommitted changes (``dirty`` may be a bool or its text)."""
    return _show(commit) + (" (with uncommitted changes)" if str(dirty) == "True" else "")


def _packages_text(row: pd.Series) -> str:
    return ", ".join(f"{name} {_show(row[name])}" for name in PACKAGES)


def _lock_text(sha: Any) -> str:
    """The lock hash as printed: with the lock file's name when there is one."""
    text = _show(sha)
    return text if text in (MISSING, NO_LOCK) else f"sha256 {text} ({LOCK_FILE})"


def describe_file(row: pd.Series) -> str:
    """The printed block of one file."""
    device = _show(row["device"]) + (f" ({row['device_name']})" if isinstance(row["device_name"], str) else "")
    job = f", Slurm job {row['slurm_job_id']}" if isinstance(row["slurm_job_id"], str) else ""
    return "\n".join([
        f"{row['file']} ({row['kind']})",
        f"  git commit   {_commit_text(row['git_commit'], row['git_dirty'])}",
        f"  config hash  {_show(row['config_hash'])}",
        f"  spec hash    {_show(row['spec_hash'])}",
        f"  seed         {_show(row['seed'])}",
        f"  device       {device}",
        f"  packages     {_packages_text(row)}",
        f"  env lock     {_lock_text(row['lock_sha256'])}",
        f"  python       {_show(row['python'])}",
        f"  host         {_show(row['host'])}{job}",
    ])


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Distinct shared provenance (commit, config, device, packages) with how many files of each kind carry it."""
    keys = frame[list(SHARED)].astype(object).where(frame[list(SHARED)].notna(), MISSING).astype(str)
    grouped = keys.assign(kind=frame["kind"]).groupby(list(SHARED), sort=False)["kind"]
    out = grouped.agg(lambda k: ", ".join(f"{n} {kind}" for kind, n in k.value_counts().sort_index().items()))
    return out.rename("files").reset_index()


def describe_folder(frame: pd.DataFrame) -> str:
    """The printed summary of many files: each distinct provenance, then one line per file."""
    groups = summary(frame)
    seeds = sorted({int(s) for s in frame["seed"].dropna()})
    lines = [f"{len(frame)} result files; {len(groups)} distinct provenance; seeds "
             f"{', '.join(map(str, seeds)) or MISSING}"]
    for _, g in groups.iterrows():
        lines += [f"- {g['files']}",
                  f"  git commit   {_commit_text(g['git_commit'], g['git_dirty'])}",
                  f"  config hash  {g['config_hash']}",
                  f"  device       {g['device']} ({g['device_name']})",
                  f"  packages     {_packages_text(g)}",
                  f"  env lock     {_lock_text(g['lock_sha256'])}",
                  f"  python       {g['python']}"]
    lines.append("files:")
    for _, row in frame.iterrows():
        lines.append(f"  {row['file']}  commit={_show(row['git_commit'])[:12]} config={_show(row['config_hash'])} "
                     f"seed={_show(row['seed'])} device={_show(row['device'])}")
    return "\n".join(lines)


def _environments(frame: pd.DataFrame) -> str:
    """The page's paragraph on environment locks: each distinct lock hash with its file count, and whether it is
    the lock of the checkout writing the page (a result made under another lock came from another environment)."""
    from snnrobust.provenance import lock_sha256

    now = lock_sha256()
    counts = frame["lock_sha256"].astype(object).where(frame["lock_sha256"].notna(), MISSING).value_counts()
    items = []
    for sha, n in counts.items():
        same = " (the lock of this checkout)" if sha == now else ""
        text = html.escape(_lock_text(sha))
        items.append(f"<li><code>{text}</code>{same}: {n} result file{'s' if n != 1 else ''}</li>")
    today = f"<code>sha256 {now}</code>" if now else NO_LOCK
    return (f"<h2>Environment</h2><p>Each result records the SHA-256 of the environment lock <code>{LOCK_FILE}</code> "
            f"(every package, transitive ones included, that <code>make install</code> installs), so a result says "
            f"which environment made it. This checkout's lock now: {today}.</p><ul>{''.join(items)}</ul>")


def render_about(frame: pd.DataFrame, timing: Any = None) -> str:
    """The report's about page: where the run's time went (when ``timing`` is given), the environment locks,
    the run's distinct provenance, then every result file's."""
    from snnrobust.report.page import _CSS, _html_table

    groups = summary(frame)
    groups = groups.assign(lock_sha256=groups["lock_sha256"].map(lambda v: v if len(v) < 64 else v[:16] + "…"))
    per_file = frame[["file", "kind", "seed", "spec_hash", "git_commit", "config_hash", "device", "host",
                      "slurm_job_id"]]
    time_section = ""
    if timing is not None:
        from snnrobust.report.timing import render

        time_section = render(timing)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>About this run</title>'
            f"<style>{_CSS}</style></head>\n<body><h1>About this run: time and provenance</h1>"
            f"{time_section}<h2>Provenance</h2>"
            f"<p>{len(frame)} result files. Each records the git commit of the code that wrote it (and whether "
            f"that checkout had uncommitted changes), the hash of the run's whole config, the hash of its own job "
            f"spec, the seed, the device, the hash of the environment lock and the versions of the libraries it "
            f"ran with. <code>python -m snnrobust provenance PATH</code> prints the same for any file or folder.</p>"
            f"{_environments(frame)}"
            f"<h2>Distinct provenance</h2>{_html_table(groups, 'provenance-summary')}"
            f"<h2>Result files</h2>{_html_table(per_file, 'provenance-files')}</body></html>\n")


def _timing_spec(text: str) -> dict:
    """The workflow's timing spec (JSON object: benchmarks, metadata, rules, studies)."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnnRobustError(f"--timing is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("studies", {}), dict):
        raise SnnRobustError("--timing must be a JSON object whose 'studies' maps each study to its targets")
    return spec


def provenance_cmd(paths: list[str], out_html: str | None = None, out_csv: str | None = None,
                   as_json: bool = False, timing: str | None = None, out_timing: str | None = None) -> str:
    """The `provenance` verb: the text it prints; the about page and CSVs are written atomically when asked.
    ``timing`` (the workflow's JSON spec) adds where the time went to the page; ``out_timing`` is the prefix of
    its tidy CSVs (``<prefix>jobs.csv``, ``rules``, ``studies``, ``critical_path``)."""
    from snnrobust.io import atomic_path, check_writable

    if not paths:
        raise SnnRobustError("provenance: give at least one result file or folder")
    if out_timing and not timing:
        raise SnnRobustError("provenance: --out-timing needs --timing (the workflow's timing spec)")
    spec = _timing_spec(timing) if timing else None
    outs = [(out_html, "--out-html"), (out_csv, "--out-csv")]
    if out_timing:
        from snnrobust.report.timing import CSV_NAMES

        outs += [(f"{out_timing}{name}.csv", "--out-timing") for name in CSV_NAMES]
    for out, flag in outs:
        if out:
            check_writable(out, flag)
    frame, folder = provenance_frame(paths)
    times = None
    if spec is not None:
        from snnrobust.report.timing import compute, write_csvs

        times = compute(spec)
        if out_timing:
            write_csvs(times, out_timing)
    if out_html:
        page = render_about(frame, times)
        with atomic_path(out_html) as tmp:
            tmp.write_text(page, encoding="utf-8")
    if out_csv:
        with atomic_path(out_csv) as tmp:
            frame.to_csv(tmp, index=False)
    if as_json:
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return json.dumps(records, indent=1)
    if folder or len(frame) > 1:
        return describe_folder(frame)
    return describe_file(frame.iloc[0])


__all__ = ["provenance_cmd", "provenance_frame", "provenance_row", "render_about", "summary"]
