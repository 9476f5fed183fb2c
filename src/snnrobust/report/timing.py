"""Where a run's time goes: seconds per rule and per study, the slowest jobs and the critical path, read from the
benchmark file Snakemake writes per job (``results/benchmarks/**.tsv``: ``s`` wall seconds, ``cpu_time``, ...).

The job graph comes from Snakemake's own metadata records (``.snakemake/metadata``), not from a copy of the rule
structure: for every output file of every job it ran, Snakemake records the job's rule and its input files as it
resolved them. A job's dependencies are then the jobs whose outputs it read, for any rule, present or future,
and the records travel with the results (``make pull`` restores them). The walk starts at the run's targets (every
requested study's tables, figures and pages), so it covers exactly the jobs this run needs: benchmarks of older
configs or of studies not requested are left out and counted. A job's benchmark file is found from its rule's
patterns, which the workflow hands down (common.smk, ``rule_patterns``): the record's output path matched against
the rule's output patterns gives the wildcards, and those fill in the rule's benchmark pattern. The about page that
shows all this is still running, so its own job is not counted.

A job two studies need (one model trained once for both) is attributed in equal shares: each of the k studies
needing it gets seconds / k, so the per-study ``attributed_s`` and the cross-study summaries (the overview of all
studies) add up to the run's total. ``alone_s`` counts every job a study needs in full: what building that study
on its own (`make reproduce STUDY=<study>`) would cost.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

#: How many of the slowest jobs the page lists (the jobs CSV has them all, slowest first).
SLOWEST = 10
#: What the cross-study summaries (the overview of all studies: jobs no single study needs) are called in tables.
CROSS_STUDY = "cross-study summaries"
#: The tidy CSVs written beside the page: ``<prefix><name>.csv``.
CSV_NAMES = ("jobs", "rules", "studies", "critical_path")
#: A wildcard in a Snakemake pattern, with an optional inline constraint (one level of braces inside it).
_WILDCARD = re.compile(r"\{\s*([A-Za-z_]\w*)\s*(?:,(?:[^{}]|\{[^{}]*\})*)?\}")


@lru_cache(maxsize=None)
def pattern_regex(pattern: str) -> re.Pattern:
    """A Snakemake file pattern as a regex, as Snakemake reads it: each wildcard matches ``.+`` (its inline
    constraint when it has one) and a wildcard named twice must match the same text twice."""
    out, seen, end = [], set(), 0
    for m in _WILDCARD.finditer(pattern):
        out.append(re.escape(pattern[end:m.start()]))
        name = m.group(1)
        constraint = m.group(0)[1:-1].partition(",")[2].strip() or ".+"
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{constraint})")
        seen.add(name)
        end = m.end()
    out.append(re.escape(pattern[end:]))
    return re.compile("".join(out) + "$")


def fill(pattern: str, wildcards: Mapping[str, str]) -> str:
    """A Snakemake pattern with its wildcards (inline constraints dropped) replaced by their values."""
    return _WILDCARD.sub(lambda m: str(wildcards[m.group(1)]), pattern)


def read_benchmark(path: Path) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one benchmark TSV; the mean over its rows when the rule
    repeats its benchmark. "NA" (a job too short to sample) reads as NaN."""
    frame = pd.read_csv(path, sep="\t", na_values=["NA", "-"])

    def mean(column: str) -> float:
        return float(pd.to_numeric(frame[column], errors="coerce").mean()) if column in frame else math.nan

    return {"seconds": mean("s"), "cpu_s": mean("cpu_time"), "max_rss_mb": mean("max_rss")}


class Records:
    """Snakemake's metadata records under ``folder``, by output path; a record is read when first asked for.
    A record's file name is the urlsafe base64 of the output path, split into ``@``-prefixed folders when it is
    longer than a file name may be."""

    def __init__(self, folder: Path):
        self.files: dict[str, Path] = {}
        if Path(folder).is_dir():
            for file in Path(folder).rglob("*"):
                if file.is_file():
                    parts = file.relative_to(folder).parts
                    try:
                        key = base64.urlsafe_b64decode("".join(p.removeprefix("@") for p in parts)).decode()
                    except (ValueError, UnicodeDecodeError):  # not a record (a stray file)
                        continue
                    self.files[key] = file

    def get(self, path: str) -> dict | None:
        """The record of the job that last wrote ``path`` (``rule``, ``input``, ``log``, ...), or None."""
        file = self.files.get(path)
        if file is None:
            return None
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("rule") and not record.get("incomplete") else None


@dataclass
class Job:
    """One job of the run, named after its benchmark file (relative, no suffix): ``train/digits/snn/vanilla/s0``."""

    name: str
    rule: str
    inputs: tuple[str, ...]
    benchmark: str | None
    outputs: list[str] = field(default_factory=list)
    seconds: float = math.nan
    cpu_s: float = math.nan
    max_rss_mb: float = math.nan


@dataclass
class Timing:
    """The tables of the page and its CSVs, and what the numbers leave out."""

    jobs: pd.DataFrame
    rules: pd.DataFrame
    studies: pd.DataFrame
    critical_path: pd.DataFrame
    total_s: float
    critical_s: float
    unrecorded_targets: list[str]
    other_benchmarks: int
    missing_benchmarks: int
    cycle: bool = False


def _job_of(path: str, record: dict, rules: Mapping[str, dict], benchmarks: Path) -> tuple[str, str | None]:
    """(job name, benchmark path) of the job that wrote ``path``: its wildcards from the rule's output regexes."""
    rule = record["rule"]
    spec = rules.get(rule)
    for pattern in (spec or {}).get("outputs", []):
        match = pattern_regex(pattern).match(path)
        if match:
            bench = fill(spec["benchmark"], match.groupdict())
            try:
                name = str(Path(bench).resolve().relative_to(benchmarks.resolve()).with_suffix(""))
            except ValueError:  # a benchmark outside the folder: its own path names it
                name = bench
            return name, bench
    # a rule without a benchmark (or patterns that no longer match): one job per log file, else per output
    return f"{rule}: {(record.get('log') or [path])[0]}", None


def collect_jobs(targets: Iterable[str], records: Records | Mapping[str, dict], rules: Mapping[str, dict],
                 benchmarks: Path) -> tuple[dict[str, Job], dict[str, set[str]], dict[str, str], list[str]]:
    """Every job the targets need, walking recorded inputs upward: (jobs, job → the jobs it read from,
    output file → its job, the targets that have no record)."""
    jobs: dict[str, Job] = {}
    producer: dict[str, str] = {}
    targets = list(dict.fromkeys(targets))
    todo, seen = list(reversed(targets)), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        record = records.get(path)
        if record is None:  # a source file, or an output Snakemake kept no record of
            continue
        name, bench = _job_of(path, record, rules, benchmarks)
        job = jobs.get(name)
        if job is None:
            job = jobs[name] = Job(name, record["rule"], tuple(record.get("input") or ()), bench)
            todo.extend(reversed(job.inputs))
        job.outputs.append(path)
        producer[path] = name
    deps = {name: {producer[f] for f in job.inputs if f in producer and producer[f] != name}
            for name, job in jobs.items()}
    return jobs, deps, producer, [t for t in targets if t not in producer]


def critical_path(seconds: Mapping[str, float], deps: Mapping[str, set[str]]) -> tuple[list[str], float]:
    """The longest chain of dependent jobs by summed seconds (a job without a benchmark weighs 0), first job
    first, and its seconds: no number of cores runs the jobs faster. Ties go to the name that sorts first."""
    order = list(TopologicalSorter({j: sorted(deps.get(j, ())) for j in sorted(seconds)}).static_order())
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for job in order:
        weight = 0.0 if math.isnan(seconds[job]) else seconds[job]
        prev = max(sorted(deps.get(job, ())), key=finish.__getitem__, default=None)
        finish[job] = weight + (finish[prev] if prev is not None else 0.0)
        before[job] = prev
    if not finish:
        return [], 0.0
    end = max(sorted(finish), key=finish.__getitem__)
    chain = [end]
    while before[chain[-1]] is not None:
        chain.append(before[chain[-1]])
    return chain[::-1], finish[end]


def study_owners(studies: Mapping[str, list[str]], deps: Mapping[str, set[str]], producer: Mapping[str, str],
                 summaries: Iterable[str] = ()) -> dict[str, set[str]]:
    """job → the studies that need it. A cross-study summary (a target of ``summaries``, or one every study
    lists: the overview of all studies) belongs to no study: the walk from each study's own targets does not
    enter it, so it and whatever only it needs stay unowned (as in snnrobust.sharing.dag)."""
    lists = [set(t) for t in studies.values()]
    common = (set.intersection(*lists) if len(lists) > 1 else set()) | set(summaries)
    summary_jobs = {producer[t] for t in common if t in producer}
    owners: dict[str, set[str]] = {}
    for study, targets in studies.items():
        todo = [producer[t] for t in targets if t in producer and t not in common]
        seen: set[str] = set()
        while todo:
            job = todo.pop()
            if job in seen or job in summary_jobs:
                continue
            seen.add(job)
            owners.setdefault(job, set()).add(study)
            todo.extend(deps.get(job, ()))
    return owners


def hms(seconds: float) -> str:
    """Seconds as h:mm:ss ("—" when unknown)."""
    if seconds is None or math.isnan(seconds):
        return "—"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}"


def _sum(values: pd.Series) -> float:
    return float(values.fillna(0.0).sum())


def compute(spec: Mapping[str, Any]) -> Timing:
    """The run's timing from ``spec``: ``benchmarks`` (folder), ``metadata`` (Snakemake's records folder),
    ``rules`` (rule → ``outputs`` and ``benchmark`` patterns), ``studies`` (each study's targets) and
    ``summaries`` (cross-study targets, e.g. the overview of all studies)."""
    benchmarks = Path(spec.get("benchmarks", "results/benchmarks"))
    records = Records(Path(spec.get("metadata", ".snakemake/metadata")))
    studies = {s: list(t) for s, t in (spec.get("studies") or {}).items()}
    summaries = list(spec.get("summaries") or [])
    targets = [t for ts in studies.values() for t in ts] + summaries
    jobs, deps, producer, unrecorded = collect_jobs(targets, records, spec.get("rules") or {}, benchmarks)
    for job in jobs.values():
        if job.benchmark and Path(job.benchmark).is_file():
            for key, value in read_benchmark(Path(job.benchmark)).items():
                setattr(job, key, value)
    used = {Path(j.benchmark).resolve() for j in jobs.values() if j.benchmark}
    other = sum(1 for f in benchmarks.rglob("*.tsv") if f.resolve() not in used) if benchmarks.is_dir() else 0

    owners = study_owners(studies, deps, producer, summaries)
    cycle = False
    try:
        chain, critical_s = critical_path({n: j.seconds for n, j in jobs.items()}, deps)
    except CycleError:  # records of different runs that contradict each other: no path to report
        chain, critical_s, cycle = [], math.nan, True
    step = {name: i + 1 for i, name in enumerate(chain)}

    frame = pd.DataFrame([{
        "job": j.name, "rule": j.rule, "seconds": j.seconds, "hms": hms(j.seconds), "cpu_s": j.cpu_s,
        "max_rss_mb": j.max_rss_mb,
        "studies": ";".join(s for s in studies if s in owners.get(j.name, ())) or CROSS_STUDY,
        "study_share": 1 / len(owners[j.name]) if owners.get(j.name) else math.nan,
        "critical_path_step": step.get(j.name), "benchmark": j.benchmark, "outputs": ";".join(j.outputs),
    } for j in jobs.values()], columns=["job", "rule", "seconds", "hms", "cpu_s", "max_rss_mb", "studies",
                                        "study_share", "critical_path_step", "benchmark", "outputs"])
    frame = frame.sort_values(["seconds", "job"], ascending=[False, True], na_position="last", kind="stable")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame["critical_path_step"] = frame["critical_path_step"].astype("Int64")
    total = _sum(frame["seconds"])

    rules = frame.groupby("rule", sort=False).agg(
        jobs=("job", "size"), seconds=("seconds", _sum), mean_s=("seconds", "mean"), max_s=("seconds", "max"),
        cpu_s=("cpu_s", _sum), no_benchmark=("seconds", lambda s: int(s.isna().sum())),
        slowest_job=("job", "first")).reset_index()
    rules.insert(3, "share_pct", 100 * rules["seconds"] / total if total else math.nan)
    rules = rules.sort_values(["seconds", "rule"], ascending=[False, True], kind="stable").reset_index(drop=True)

    rows = []
    for study in studies:
        mine = frame.loc[frame["job"].map(lambda n, s=study: s in owners.get(n, ())).astype(bool)]
        only_mine = mine["job"].map(lambda n: len(owners[n]) == 1).astype(bool)
        rows.append({"study": study, "jobs": len(mine), "alone_s": _sum(mine["seconds"]),
                     "own_s": _sum(mine.loc[only_mine, "seconds"]),
                     "attributed_s": _sum(mine["seconds"] * mine["study_share"])})
    cross = frame[frame["studies"] == CROSS_STUDY]
    if len(cross):
        rows.append({"study": CROSS_STUDY, "jobs": len(cross), "alone_s": math.nan, "own_s": _sum(cross["seconds"]),
                     "attributed_s": _sum(cross["seconds"])})
    by_study = pd.DataFrame(rows, columns=["study", "jobs", "alone_s", "own_s", "attributed_s"])
    by_study["share_pct"] = 100 * by_study["attributed_s"] / total if total else math.nan

    lookup = {j: jobs[j] for j in chain}
    finish, path_rows = 0.0, []
    for i, name in enumerate(chain):
        sec = lookup[name].seconds
        finish += 0.0 if math.isnan(sec) else sec
        path_rows.append({"step": i + 1, "job": name, "rule": lookup[name].rule, "seconds": sec,
                          "cumulative_s": finish})
    path = pd.DataFrame(path_rows, columns=["step", "job", "rule", "seconds", "cumulative_s"])
    return Timing(frame.reset_index(drop=True), rules, by_study, path, total, critical_s, unrecorded, other,
                  int(frame["seconds"].isna().sum()), cycle)


def write_csvs(timing: Timing, prefix: str) -> list[str]:
    """The four tidy CSVs ``<prefix>jobs.csv`` (every job, slowest first), ``rules``, ``studies``,
    ``critical_path``, each written atomically; returns their paths."""
    from snnrobust.io import atomic_path

    out = []
    for name in CSV_NAMES:
        path = f"{prefix}{name}.csv"
        with atomic_path(path) as tmp:
            getattr(timing, name).round(4).to_csv(tmp, index=False)
        out.append(path)
    return out


def _seconds(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.1f}"


def _table(frame: pd.DataFrame, css: str) -> str:
    """An HTML table of strings (numbers formatted here: the page's own cell formatter rounds to 4 digits); job
    names wrap as the report pages' paths do."""
    from snnrobust.report.page import td, th

    head = "".join(th(c) for c in frame.columns)
    body = "".join("<tr>" + "".join(td(str(v)) for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f} %"


def render(timing: Timing) -> str:
    """The page's "Where the time goes" section (HTML)."""
    jobs, total = timing.jobs, timing.total_s
    if jobs.empty:
        return ("<h2>Where the time goes</h2><p>No job of this run has a Snakemake record yet, so there is nothing "
                "to time (run the workflow first).</p>")
    top = timing.rules.iloc[0]
    lead = (f"<p>{len(jobs)} jobs. Their benchmarks sum to <b>{hms(total)}</b> ({_seconds(total)} s): the time "
            f"one core would take doing them one after another. ")
    if timing.cycle:
        lead += "The critical path cannot be given: the Snakemake records of this run contradict each other. "
    else:
        lead += (f"The critical path, the longest chain of jobs each needing the one before, takes "
                 f"<b>{hms(timing.critical_s)}</b>: no number of cores makes the run shorter than that. ")
    cpu = _sum(jobs["cpu_s"])
    if cpu and total:
        lead += (f"Their processes used {_seconds(cpu)} CPU seconds, {100 * cpu / total:.0f} % of their wall time "
                 f"(as Snakemake sampled it): far below 100 % per thread means the jobs waited (for a core, the disk, "
                 f"start-up) more than they computed, or that they ran in <code>make reproduce</code>'s warm-start "
                 f"workers (<code>snnrobust.preload</code>), forks Snakemake does not sample: there CPU seconds and "
                 f"memory are the waiting job process's, not the work's. ")
    lead += (f"Rule <code>{html.escape(str(top['rule']))}</code> takes the most, {_pct(top['share_pct'])} "
             f"({top['jobs']} jobs); the slowest job is <code>{html.escape(str(jobs.iloc[0]['job']))}</code> "
             f"({hms(jobs.iloc[0]['seconds'])}).</p>")
    notes = []
    if timing.missing_benchmarks:
        notes.append(f"{timing.missing_benchmarks} jobs have no benchmark file (made elsewhere and pulled, or "
                     f"their rule keeps none) and count as 0 s.")
    if timing.unrecorded_targets:
        notes.append(f"{len(timing.unrecorded_targets)} targets have no Snakemake record (made outside Snakemake "
                     f"or with --drop-metadata); they and what only they need are not counted: "
                     + ", ".join(html.escape(t) for t in timing.unrecorded_targets[:5])
                     + (" …" if len(timing.unrecorded_targets) > 5 else "") + ".")
    if timing.other_benchmarks:
        notes.append(f"{timing.other_benchmarks} benchmark files belong to no job of this run (other configs or "
                     f"studies, and this page's own job, which is still running) and are not counted.")
    rules = timing.rules.assign(
        seconds=timing.rules["seconds"].map(_seconds), share=timing.rules["share_pct"].map(_pct),
        hms=timing.rules["seconds"].map(hms), mean_s=timing.rules["mean_s"].map(_seconds),
        max_s=timing.rules["max_s"].map(_seconds), cpu_s=timing.rules["cpu_s"].map(_seconds),
    )[["rule", "jobs", "seconds", "hms", "share", "mean_s", "max_s", "cpu_s", "slowest_job"]]
    studies = timing.studies.assign(**{c: timing.studies[c].map(_seconds) for c in ("alone_s", "own_s",
                                                                                   "attributed_s")},
                                    share=timing.studies["share_pct"].map(_pct)).drop(columns="share_pct")
    slow = jobs.head(SLOWEST)
    slow = slow.assign(seconds=slow["seconds"].map(_seconds), cpu_s=slow["cpu_s"].map(_seconds),
                       critical_path_step=slow["critical_path_step"].map(lambda v: "" if pd.isna(v) else str(v)),
                       )[["rank", "job", "rule", "seconds", "hms", "cpu_s", "studies", "critical_path_step"]]
    path = timing.critical_path.assign(seconds=timing.critical_path["seconds"].map(_seconds),
                                       hms=timing.critical_path["seconds"].map(hms),
                                       cumulative=timing.critical_path["cumulative_s"].map(hms),
                                       ).drop(columns="cumulative_s")
    return (f"<h2>Where the time goes</h2>{lead}"
            + (f"<ul>{''.join(f'<li>{n}</li>' for n in notes)}</ul>" if notes else "")
            + "<p>Seconds are each job's wall time from its Snakemake benchmark file (start-up included); a job "
              "that did not rerun keeps the seconds of the run that made it.</p>"
            + f"<h3>Per rule</h3>{_table(rules, 'timing-rules')}"
            + "<h3>Per study</h3><p>A job several studies need is shared out in equal parts (<i>attributed</i>; "
              "these add up to the total). <i>alone</i> counts every job the study needs in full: what building "
              "that study by itself costs. <i>own</i>: jobs no other study needs.</p>"
            + _table(studies, "timing-studies")
            + f"<h3>The {min(SLOWEST, len(jobs))} slowest jobs</h3>{_table(slow, 'timing-slowest')}"
            + "<h3>Critical path</h3><p>Each job needs the previous one's outputs (from the inputs Snakemake "
              "recorded for it).</p>" + _table(path, "timing-critical-path"))


__all__ = ["Job", "Records", "Timing", "collect_jobs", "compute", "critical_path", "fill", "pattern_regex",
           "read_benchmark", "render", "study_owners", "write_csvs"]
