"""Strict YAML for configs: a duplicate key, an empty file or an empty mapping is an error, not a silent
default, and ``1e-3`` is the number YAML 1.2 says it is (PyYAML's YAML 1.1 reads it as a string)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from snnrobust.errors import SnnRobustError

# YAML 1.2 floats: the exponent needs no dot and its sign is optional (``1e-3``, ``5E4``).
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                       |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                       |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                       |[-+]?\.(?:inf|Inf|INF)
                       |\.(?:nan|NaN|NAN))$""", re.X)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys and reads YAML 1.2 floats."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise SnnRobustError(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key] + 1})"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                         for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def loads_yaml_strict(text: str, where: str) -> dict:
    """Parse ``text`` (named ``where`` in errors) to a non-empty mapping; errors are one line."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except SnnRobustError as exc:
        raise SnnRobustError(f"config {where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SnnRobustError(f"config {where} is not valid YAML{at}: {problem}") from None
    if value is None:
        raise SnnRobustError(f"config {where} is empty")
    if not isinstance(value, dict):
        raise SnnRobustError(f"config {where} must be a mapping of settings, got {type(value).__name__}")
    if not value:
        raise SnnRobustError(f"config {where} is an empty mapping {{}}")
    return value


def load_yaml_strict(path: str | Path) -> dict:
    """Read a config file strictly: missing, unreadable, empty, ``{}``, duplicate keys → one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise SnnRobustError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SnnRobustError(f"config {path} cannot be read: {type(exc).__name__}") from None
    return loads_yaml_strict(text, str(path))
