"""``python -m snnrobust.sharing <verb>``: the Makefile's push, pull and remote targets, the dvc.yaml
generator and each stage's command for `dvc repro`. Errors are one line, ``snnrobust: error: ...``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback
from pathlib import Path

from snnrobust.errors import SnnRobustError


def _stages(a) -> None:
    from snnrobust.sharing.transfer import generate

    stages = generate(Path("."), a.scale, check=a.check)
    if a.check:
        print(f"dvc.yaml is in sync with the Snakemake DAG of scale {a.scale!r} ({len(stages)} stages)")


def _push(a) -> None:
    from snnrobust.sharing.transfer import push

    push(Path("."), a.scale, a.study)


def _pull(a) -> None:
    from snnrobust.sharing.transfer import pull

    pull(Path("."), a.scale, a.study)


def _remote(a) -> None:
    from snnrobust.sharing.transfer import set_remote

    set_remote(Path("."), a.url, a.keyfile)


def _build(a) -> None:
    """`dvc repro`: Snakemake decides what to run (the whole scale), then the stage's mtimes are recorded."""
    from snnrobust.sharing import mtimes, stages

    stage = next((s for s in stages.load(Path(".")) if s.name == a.stage), None)
    if stage is None:
        raise SnnRobustError(f"dvc.yaml has no stage {a.stage!r}")
    if subprocess.run(["make", "reproduce", f"SCALE={stage.scale}"]).returncode != 0:
        raise SnnRobustError(f"make reproduce SCALE={stage.scale} failed")
    mtimes.write(Path("."), stage)


SCALE = (("--scale",), {"default": "default", "help": "config/<scale>.yaml (default: default)"})
STUDY = (("--study",), {"default": "all", "help": "one study id, or all (default)"})
#: verb → (function, help, arguments): one entry per verb, no if-chain.
VERBS = {
    "stages": (_stages, "write dvc.yaml from the Snakemake DAG of a scale (--check: only compare)",
               [SCALE, (("--check",), {"action": "store_true"})]),
    "push": (_push, "commit a scale's results to DVC (writes dvc.lock) and upload them", [SCALE, STUDY]),
    "pull": (_pull, "fetch a version's results, check them against dvc.lock, check them out", [SCALE, STUDY]),
    "remote": (_remote, "set the default remote's URL", [(("--url",), {"required": True}),
                                                          (("--keyfile",), {"default": None,
                                                                            "help": "SSH private key (local config)"})]),
    "build": (_build, "a stage's command for `dvc repro`", [(("stage",), {})]),
}


def main(argv: list[str] | None = None) -> int:
    from snnrobust.quiet import silence_library_warnings

    silence_library_warnings()  # asyncssh/dvc deprecation notices are not errors (issue 19)
    parser = argparse.ArgumentParser(prog="python -m snnrobust.sharing", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="repository root (default: the current folder)")
    parser.add_argument("--debug", action="store_true", help="print tracebacks")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, (fn, help_, args) in VERBS.items():
        p = sub.add_parser(name, help=help_)
        for flags, kwargs in args:
            p.add_argument(*flags, **kwargs)
        p.set_defaults(fn=fn)
    a = parser.parse_args(argv)
    debug = a.debug or os.environ.get("SNNROBUST_DEBUG", "") not in ("", "0")
    try:
        os.chdir(a.root)
        a.fn(a)
    except SnnRobustError as exc:
        if debug:
            traceback.print_exc()
        print(f"snnrobust: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snnrobust: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # unforeseen: still one line, named
        if debug:
            traceback.print_exc()
        print(f"snnrobust: error: unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"
              " (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
