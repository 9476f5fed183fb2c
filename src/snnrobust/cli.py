"""Command-line front of the library: ``python -m snnrobust <verb>``; the workflow calls only this.

Every verb takes its job description as JSON (``--spec``), writes its outputs atomically and, on
bad input, prints one line ``snnrobust: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from snnrobust.errors import SnnRobustError

VERBS: dict[str, Callable[[argparse.Namespace], None]] = {}


def verb(name: str, help: str, args: list[tuple[tuple, dict]]):
    """Register a CLI verb with its arguments (one decorator per verb, no if-chain)."""

    def deco(fn):
        VERBS[name] = fn
        fn._cli = (help, args)
        return fn

    return deco


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnnRobustError(f"--spec is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise SnnRobustError("--spec must be a JSON object")
    return value


SPEC = (("--spec",), {"default": "{}", "help": "job description as a JSON object"})
PROGRESS = (("--no-progress",), {"action": "store_true", "help": "hide tqdm progress bars"})


@verb("prepare", "build one prepared dataset file from a data source",
      [(("--source",), {"required": True}), SPEC, (("--out",), {"required": True})])
def _prepare(a):
    from snnrobust.commands import prepare
    prepare(a.source, a.spec, a.out)


@verb("train", "train one model with one method (resumes from --checkpoint)",
      [(("--data",), {"required": True}), SPEC, (("--out-model",), {"required": True}),
       (("--out-metrics",), {"required": True}), (("--out-run",), {"required": True}),
       (("--checkpoint",), {"required": True}), PROGRESS])
def _train(a):
    from snnrobust.commands import train
    train(a.data, a.spec, a.out_model, a.out_metrics, a.out_run, a.checkpoint, progress=not a.no_progress)


@verb("attack", "attack one trained model on a fixed evaluation subset",
      [(("--model",), {"required": True}), (("--data",), {"required": True}), SPEC,
       (("--out",), {"required": True}), PROGRESS])
def _attack(a):
    from snnrobust.commands import attack
    attack(a.model, a.data, a.spec, a.out, progress=not a.no_progress)


@verb("analyze", "gradient analyses of one trained model (∇x f_y sparsity and norms)",
      [(("--model",), {"required": True}), (("--data",), {"required": True}), SPEC,
       (("--out",), {"required": True})])
def _analyze(a):
    from snnrobust.commands import analyze
    analyze(a.model, a.data, a.spec, a.out)


@verb("table", "collect result files into a tidy table (paper vs reproduced where given)",
      [(("--inputs",), {"nargs": "+", "required": True}), SPEC, (("--out",), {"required": True}),
       (("--out-html",), {"default": None})])
def _table(a):
    from snnrobust.commands import table
    table(a.inputs, a.spec, a.out, a.out_html)


@verb("figure", "draw one registered seaborn figure from tidy tables",
      [(("--inputs",), {"nargs": "+", "required": True}), SPEC, (("--out",), {"required": True})])
def _figure(a):
    from snnrobust.commands import figure
    figure(a.inputs, a.spec, a.out)


@verb("validate-config", "check a pipeline config against the schema and the registries",
      [(("--config",), {"required": True}), (("--schema",), {"required": True})])
def _validate(a):
    from snnrobust.config import load_config
    load_config(a.config, a.schema)
    print(f"{a.config}: ok")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnrobust", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, fn in VERBS.items():
        help_text, args = fn._cli
        p = sub.add_parser(name, help=help_text)
        for flags, kwargs in args:
            p.add_argument(*flags, **kwargs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "spec"):
            args.spec = _json(args.spec)
        VERBS[args.verb](args)
    except SnnRobustError as exc:
        print(f"snnrobust: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
