"""The pipeline's products, read from Snakemake's own DAG of one scale, with the studies that need each.

A product is every file a job leaves behind that a later run relies on: its outputs, its benchmark, the
checkpoint it resumes from and Snakemake's metadata record of each output (the record holds the params,
code and input checksums that decide a rerun, so it must travel with the output; see
../shared/notes/snakemake-dvc.md). Reading the DAG itself, instead of re-deriving paths from the
config, keeps the DVC stages in step with the rules by construction.

Snakemake's Python API is used as pinned in pyproject.toml (snakemake 9.27): the DAG, its jobs and the
file persistence's record paths are internal objects of that version; tests/test_dvc.py keeps the
generated dvc.yaml in sync with them.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from snnrobust.errors import SnnRobustError

#: Files a run writes outside Snakemake's rules: `make reproduce` renders the report after the DAG.
REPORT = "results/report.html"
#: Job params that name a file the job writes beside its outputs (training resumes from it).
FILE_PARAMS = ("checkpoint",)
#: The studies a cross-study product belongs to: every study, shared only by `STUDY=all`.
ALL = "all"


@dataclass(frozen=True)
class Product:
    """One tracked file and the studies whose targets need it (``ALL`` alone: a cross-study summary)."""

    path: str
    studies: frozenset[str]


def _job_files(job, persistence, root: Path) -> list[str]:
    """Outputs, benchmark, checkpoint params and metadata records of one job, relative to ``root``."""
    files = [str(f) for f in job.output]
    if job.benchmark:
        files.append(str(job.benchmark))
    files += [str(job.params[name]) for name in FILE_PARAMS if name in job.params.keys()]
    for f in job.output:
        record = persistence._record_path(persistence._metadata_path, persistence._get_key(f))
        files.append(os.path.relpath(record, root))
    return files


def _closure(dag, start, skip: set) -> set:
    """Every job ``start`` depends on, not descending into the ``skip`` jobs."""
    seen, todo = set(), [start]
    while todo:
        job = todo.pop()
        for dep in dag.dependencies[job]:
            if dep not in seen and dep not in skip:
                seen.add(dep)
                todo.append(dep)
    return seen


def assign_studies(dag, studies: list[str]) -> tuple[dict, set]:
    """job → the studies needing it, and the cross-study summary jobs.

    A target file that every study's target rule lists would summarise whichever studies a run requested
    (`make reproduce STUDY=x` would rewrite it with x alone): its job belongs to no single study, and the walk
    from each study's targets does not descend into it. The pipeline has none: each study's target lists its
    own summaries (results/pages/<study>/), and the all-studies ones are `all`'s alone, so a pull of one
    study's stages completes that study's target."""
    targets = {job.rule.name: job for job in dag.jobs if job.rule.name in studies}
    wanted = [{str(f) for f in targets[s].input} for s in studies]
    common = set.intersection(*wanted) if len(studies) > 1 else set()
    summaries = {dep for job in targets.values() for dep, via in dag.dependencies[job].items()
                 if {str(f) for f in via} <= common}
    owners: dict = {}
    for study, job in targets.items():
        for dep in _closure(dag, job, summaries):
            owners.setdefault(dep, set()).add(study)
    return owners, summaries


def products(root: Path, configfile: Path) -> tuple[list[str], list[Product]]:
    """The config's studies and every product of their DAG (one target rule per study, and `all` for the
    summaries of all studies), in DAG order. A job no study's target needs belongs to ``ALL``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    root = root.resolve()
    cwd, captured = os.getcwd(), io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), \
                SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            wapi = api.workflow(resource_settings=ResourceSettings(cores=1),
                                config_settings=ConfigSettings(configfiles=[configfile.resolve()]),
                                snakefile=root / "Snakefile", workdir=root)
            workflow = wapi._workflow  # parses the Snakefile (config checks run here)
            studies = list(workflow.globals["STUDIES"])
            wapi.dag(DAGSettings(targets={*studies, "all"}))
            workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
            workflow._build_dag()
            dag, persistence = workflow.dag, workflow.persistence
            owners, summaries = assign_studies(dag, studies)
            found = {}
            for level in dag.toposorted():
                for job in level:
                    if not job.output:  # a target rule (all, one per study): no files of its own
                        continue
                    # a job only a summary needs belongs, like the summary, to every study together
                    needs = frozenset(owners[job]) if job in owners and job not in summaries else frozenset({ALL})
                    for path in _job_files(job, persistence, root):
                        found.setdefault(path, Product(path, needs))
    except SystemExit as exc:  # the Snakefile stops with one line on a bad config
        raise SnnRobustError(str(exc.code).removeprefix("snnrobust: error: ")) from None
    except SnnRobustError:
        raise
    except Exception as exc:
        tail = [line for line in captured.getvalue().splitlines() if line.strip()][-1:]
        raise SnnRobustError(f"cannot read the Snakemake DAG of {configfile}: {type(exc).__name__}: "
                             f"{tail[0] if tail else exc}") from None
    finally:
        os.chdir(cwd)
    found[REPORT] = Product(REPORT, frozenset({ALL}))
    return studies, list(found.values())
