"""Command-line front of the library: ``python -m snnrobust <verb>``; the workflow calls only this.

Every verb takes its job description as JSON (``--spec``), writes its outputs atomically and, on
bad input, prints one line ``snnrobust: error: ...`` and exits with status 2 (1 for an unexpected
exception, named in the same one line); ``snnrobust --debug <verb>`` (or SNNROBUST_DEBUG=1) also
prints the traceback. Every output path is checked for writability before any work starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Callable, NoReturn

from snnrobust.errors import SnnRobustError

VERBS: dict[str, Callable[[argparse.Namespace], None]] = {}


def verb(name: str, help: str, args: list[tuple[tuple, dict]]):
    """Register a CLI verb with its arguments (one decorator per verb, no if-chain)."""

    def deco(fn):
        VERBS[name] = fn
        fn._cli = (help, args)
        return fn

    return deco


class _Constant(str):
    """A JSON NaN / Infinity / -Infinity kept as its name while parsing, so the error can name its key."""


def _no_constant(value, path: str = "") -> None:
    """A one-line error naming the key path (``train.lr``, ``grid.steps[1]``) of the first NaN or infinity."""
    if isinstance(value, _Constant):
        raise SnnRobustError(f"--spec {path or '<top>'} is {value}; only finite numbers are allowed")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _no_constant(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key))


def _json(text: str) -> dict:
    try:
        value = json.loads(text, parse_constant=_Constant)
    except json.JSONDecodeError as exc:
        raise SnnRobustError(f"--spec is not valid JSON: {exc.msg} at column {exc.colno}") from None
    _no_constant(value)
    if not isinstance(value, dict):
        raise SnnRobustError("--spec must be a JSON object")
    return value


SPEC = (("--spec",), {"default": "{}", "help": "job description as a JSON object"})
PROGRESS = (("--no-progress",), {"action": "store_true", "help": "hide tqdm progress bars"})


@verb("prepare", "build one prepared dataset file from a data source",
      [(("--source",), {"required": True}), SPEC, (("--out",), {"required": True})])
def _prepare(a):
    from snnrobust.commands.prepare import prepare
    prepare(a.source, a.spec, a.out)


@verb("train", "train one model with one method (resumes from --checkpoint)",
      [(("--data",), {"required": True}), SPEC, (("--out-model",), {"required": True}),
       (("--out-metrics",), {"required": True}), (("--out-run",), {"required": True}),
       (("--checkpoint",), {"required": True}), PROGRESS])
def _train(a):
    from snnrobust.commands.train import train
    train(a.data, a.spec, a.out_model, a.out_metrics, a.out_run, a.checkpoint, progress=not a.no_progress)


@verb("attack", "attack one trained model on a fixed evaluation subset",
      [(("--model",), {"required": True}), (("--data",), {"required": True}), SPEC,
       (("--out",), {"required": True}),
       (("--source-model",), {"default": None, "help": "black-box: make the examples on this model, score on --model"}),
       PROGRESS])
def _attack(a):
    from snnrobust.commands.attack import attack
    attack(a.model, a.data, a.spec, a.out, progress=not a.no_progress, source_model=a.source_model)


@verb("analyze", "gradient analyses of one trained model (∇x f_y sparsity and norms)",
      [(("--model",), {"required": True}), (("--data",), {"required": True}), SPEC,
       (("--out",), {"required": True})])
def _analyze(a):
    from snnrobust.commands.analyze import analyze
    analyze(a.model, a.data, a.spec, a.out)


@verb("table", "collect result files into a tidy table (paper vs reproduced where given)",
      [(("--inputs",), {"nargs": "+", "required": True}), SPEC, (("--out",), {"required": True}),
       (("--out-html",), {"default": None})])
def _table(a):
    from snnrobust.commands.report import table
    table(a.inputs, a.spec, a.out, a.out_html)


@verb("figure", "draw one registered seaborn figure from tidy tables",
      [(("--inputs",), {"nargs": "+", "required": True}), SPEC, (("--out",), {"required": True})])
def _figure(a):
    from snnrobust.commands.report import figure
    figure(a.inputs, a.spec, a.out)


@verb("page", "one paper's report page: coverage, claims, paper-vs-reproduced tables",
      [(("--study",), {"required": True}), (("--attacks",), {"nargs": "*", "default": []}),
       (("--transfer",), {"nargs": "*", "default": []}), (("--analyses",), {"nargs": "*", "default": []}),
       (("--training",), {"nargs": "*", "default": []}), SPEC, (("--out",), {"required": True}),
       (("--out-csv",), {"required": True}), (("--out-coverage",), {"default": None})])
def _page(a):
    from snnrobust.report.page import write_page
    write_page(a.study, a.attacks, a.transfer, a.analyses, a.training, a.spec, a.out, a.out_csv, a.out_coverage)


@verb("overview", "the report's first page: every table, figure and claim of the three papers with its status",
      [(("--coverage",), {"nargs": "*", "default": []}), (("--claims",), {"nargs": "*", "default": []}),
       (("--scale",), {"required": True}), (("--out",), {"required": True}), (("--out-csv",), {"required": True})])
def _overview(a):
    from snnrobust.report.overview import write_overview
    write_overview(a.coverage, a.claims, a.scale, a.out, a.out_csv)


@verb("readme-results", "regenerate one scale's results section of the README from results/",
      [(("--results",), {"default": "results"}), (("--scale",), {"required": True}),
       (("--readme",), {"default": "README.md"})])
def _readme_results(a):
    from snnrobust.report.readme import render_section, update_readme
    update_readme(a.readme, a.scale, render_section(a.results, a.scale))


@verb("provenance", "print what result files record: git commit, config hash, packages, device, seed",
      [(("paths",), {"nargs": "+", "metavar": "PATH", "help": "result JSON, model.pt, or a folder of them"}),
       (("--out-html",), {"default": None, "help": "also write the report's about page"}),
       (("--out-csv",), {"default": None, "help": "also write one row per result file"}),
       (("--json",), {"action": "store_true", "dest": "as_json", "help": "print JSON records instead"}),
       (("--timing",), {"default": None, "help": "JSON: benchmarks and records folders, rule patterns, studies' "
                                                "targets; the about page then says where the run's time went"}),
       (("--out-timing",), {"default": None, "metavar": "PREFIX",
                            "help": "also write PREFIX{jobs,rules,studies,critical_path}.csv"})])
def _provenance(a):
    from snnrobust.commands.provenance import provenance_cmd
    print(provenance_cmd(a.paths, a.out_html, a.out_csv, a.as_json, a.timing, a.out_timing))


@verb("validate-config", "check a pipeline config against the schema and the registries",
      [(("--config",), {"required": True}), (("--schema",), {"required": True})])
def _validate(a):
    from snnrobust.config import load_config
    load_config(a.config, a.schema)
    print(f"{a.config}: ok")


@verb("unlock-stale", "remove Snakemake's lock left by a killed run; refuse (exit 2) while a run is live",
      [(("--workdir",), {"default": ".", "help": "the Snakemake working directory"})])
def _unlock_stale(a):
    from snnrobust.locks import clear_stale_lock

    if clear_stale_lock(a.workdir):
        print(f"snnrobust: removed the stale Snakemake lock of an interrupted run in {a.workdir}", file=sys.stderr)


class _UsageError(SnnRobustError):
    """A command line argparse rejects (missing or unknown argument)."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line (through ``main``) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="snnrobust", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="print the full traceback of an error")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, fn in VERBS.items():
        help_text, args = fn._cli
        p = sub.add_parser(name, help=help_text)
        for flags, kwargs in args:
            p.add_argument(*flags, **kwargs)
    return parser


# Arguments whose value is a file a verb writes: checked before any work starts.
OUTPUT_ARGS = ("out", "out_model", "out_metrics", "out_run", "out_html", "checkpoint")


def _check_outputs(args: argparse.Namespace) -> None:
    from snnrobust.io import check_writable

    for name in OUTPUT_ARGS:
        if getattr(args, name, None):
            check_writable(getattr(args, name), "--" + name.replace("_", "-"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    """Run one verb; every failure is one line on stderr (a traceback only with --debug)."""
    from snnrobust.quiet import silence_library_warnings

    silence_library_warnings()
    debug = os.environ.get("SNNROBUST_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        _check_outputs(args)
        if hasattr(args, "spec"):
            args.spec = _json(args.spec)
        VERBS[args.verb](args)
    except SnnRobustError as exc:
        _report(f"snnrobust: error: {_one_line(exc)}", debug)
        return 2
    except KeyboardInterrupt:
        _report("snnrobust: error: interrupted", debug)
        return 130
    except Exception as exc:  # a bug or an unforeseen input: still one line, named
        hint = "" if debug else " (run snnrobust --debug ... for the traceback)"
        _report(f"snnrobust: error: unexpected {type(exc).__name__}: {_one_line(exc)}{hint}", debug)
        return 1
    return 0


def _report(line: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(line, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
