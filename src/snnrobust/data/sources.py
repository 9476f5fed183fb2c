"""The registry of data sources and ``prepare_dataset``, the one entry point that turns a source into a file."""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from snnrobust.data.graphdata import GraphOptions, finish_graph
from snnrobust.data.images import ImageOptions, finish_images
from snnrobust.options import coerce_options
from snnrobust.data.store import write_prepared
from snnrobust.errors import SnnRobustError
from snnrobust.registry import Registry


@dataclass(frozen=True)
class Source:
    """A registered source: its builder plus the common options and finishing step of its kind."""

    name: str
    kind: str
    build: Callable[..., Any]
    common: type
    finish: Callable[..., tuple[dict, dict]]
    test_size: Callable[..., int | None] | None = None  # the test split's size from the options, without loading


DATASETS: Registry[Source] = Registry("data source")

_KINDS = {"image": (ImageOptions, finish_images), "graph": (GraphOptions, finish_graph)}

# Errors from libraries (I/O, archives, decoders, torchvision) that mean bad input rather than a bug.
_INPUT_ERRORS = (OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile, tarfile.TarError)


def _source(kind: str, name: str, test_size: Callable[..., int | None] | None = None) -> Callable[[Callable], Callable]:
    common, finish = _KINDS[kind]

    def deco(build: Callable) -> Callable:
        DATASETS.register(name)(Source(name, kind, build, common, finish, test_size))
        return build

    return deco


def image_source(name: str, test_size: Callable[..., int | None] | None = None) -> Callable[[Callable], Callable]:
    """Register a builder returning ``RawImages``; the image options (n_train, ...) are added for it.
    ``test_size(**own_options)`` tells the test split's size cheaply, so an ``n_eval`` beyond it fails at parse time."""
    return _source("image", name, test_size)


def graph_source(name: str) -> Callable[[Callable], Callable]:
    """Register a builder returning ``RawGraph``."""
    return _source("graph", name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def check_source_options(source: str, opts: dict[str, Any]) -> tuple[Source, Any, dict[str, Any]]:
    """(source, its kind's common options, its own options), every name and value checked: a config
    validator calls this at parse time, ``prepare_dataset`` again before any work."""
    src = DATASETS.get(source)
    where = f"data source {src.name!r}"
    if not isinstance(opts, dict):
        raise SnnRobustError(f"options of {where} must be a mapping, got {opts!r}")
    common_names = {f.name for f in fields(src.common)}
    common = src.common(**coerce_options(src.common, {k: v for k, v in opts.items() if k in common_names}, where))
    own_opts = {k: v for k, v in opts.items() if k not in common_names}
    return src, common, coerce_options(src.build, own_opts, where, also_valid=common_names)


def test_split_size(source: str, opts: dict[str, Any]) -> int | None:
    """Size of the test split the options give (``n_test`` if set), or None where the source cannot tell cheaply."""
    src, common, own = check_source_options(source, opts)
    if getattr(common, "n_test", None) is not None:
        return int(common.n_test)
    if src.test_size is None:
        return None
    try:
        return src.test_size(**own)
    except _INPUT_ERRORS:
        return None  # unreadable data is reported where it is prepared


def graph_adjacency(source: str, opts: dict[str, Any]):
    """The dense adjacency of a graph source's graph, built from its data (an edge budget's check at parse time),
    or None for an image source or data that cannot be read here (reported where it is prepared)."""
    src, _, own = check_source_options(source, opts)
    if src.kind != "graph":
        return None
    import contextlib
    import io

    try:
        # PyG prints "Processing..." while it builds Planetoid: not for a config check's output
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            data = src.build(**own).data
    except (*_INPUT_ERRORS, SnnRobustError):  # not here yet (paper scale downloads it) or unreadable
        return None
    from snnrobust.attacks.topology import undirected_adjacency

    return undirected_adjacency(data.edge_index, int(data.num_nodes))


def prepare_dataset(source: str, out: str | Path, **opts: Any) -> None:
    """Build ``source`` with ``opts`` and write the prepared .npz ``out`` atomically.

    On any failure ``out`` is as it was before: a previous good file stays, and nothing partial appears.
    """
    src, common, own = check_source_options(source, opts)
    try:
        raw = src.build(**own)
        arrays, meta = src.finish(raw, common, src.name, own)
        write_prepared(out, arrays, meta)
    except _INPUT_ERRORS as exc:
        raise SnnRobustError(f"preparing {src.name!r} failed: {_one_line(exc)}") from None
