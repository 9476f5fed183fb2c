"""Load a pipeline config, validate it against the JSON schema, and check every name it uses.

Used by the Snakefile at parse time, so a bad config fails before any job runs, in one line.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import jsonschema
import yaml

from snnrobust.errors import SnnRobustError

AXES = {"dataset": "datasets", "model": "models", "method": "methods", "attack": "attacks"}


def _fill_defaults(schema: dict, instance):
    """Fill schema ``default`` values into the instance (draft-2020 validators do not)."""
    if not isinstance(instance, dict):
        return instance
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        if key in instance:
            _fill_defaults(sub, instance[key])
    return instance


def _where(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "<top>"


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Schema validation with a one-line message naming the offending key, then name checks."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise SnnRobustError(f"config {_where(err)}: {err.message.splitlines()[0]}")
    _fill_defaults(schema, config)
    check_names(config)
    return config


def _matrices(config: dict):
    yield "training.experiments", config["training"]["experiments"]
    yield "evaluation.sweeps", config["evaluation"]["sweeps"]
    yield "analysis.grad_norms.experiments", config["analysis"]["grad_norms"]["experiments"]


def check_names(config: dict) -> None:
    """Every id a matrix uses is declared, and every declared component is registered."""
    from snnrobust.attacks import ATTACKS
    from snnrobust.data import DATASETS
    from snnrobust.methods import METHODS
    from snnrobust.models import MODELS

    declared = [
        ("data source", DATASETS, {k: v["source"] for k, v in config["datasets"].items()}),
        ("arch", MODELS, {k: v["arch"] for k, v in config["models"].items()}),
        ("method", METHODS, {k: v["name"] for k, v in config["methods"].items()}),
        ("attack", ATTACKS, {k: v["name"] for k, v in config["attacks"].items()}),
    ]
    for kind, registry, used in declared:
        for owner, name in used.items():
            if name not in registry:
                raise SnnRobustError(
                    f"config: {owner!r} uses unknown {kind} {name!r}; choose one of: {', '.join(registry.names())}"
                )
    check_options(config)
    for where, matrices in _matrices(config):
        for i, matrix in enumerate(matrices):
            for axis, section in AXES.items():
                for name in matrix.get(axis, []):
                    if name not in config[section]:
                        raise SnnRobustError(
                            f"config {where}[{i}].{axis}: {name!r} is not declared under {section} "
                            f"(declared: {', '.join(sorted(config[section]))})"
                        )


def check_options(config: dict) -> None:
    """Options given to each declared component are options it takes (fail at parse time, not in a job)."""
    from dataclasses import fields

    from snnrobust.attacks import ATTACKS
    from snnrobust.data import DATASETS
    from snnrobust.methods import METHODS
    from snnrobust.models import model_options

    def data_options(source: str) -> set[str]:
        src = DATASETS.get(source)
        return {f.name for f in fields(src.common)} | set(inspect.signature(src.build).parameters)

    checks = [
        ("datasets", "source", data_options),
        ("models", "arch", lambda arch: set(model_options(arch))),
        ("methods", "name", METHODS.option_names),
        ("attacks", "name", lambda name: (ATTACKS.option_names(name) or set()) - {"eps"}),
    ]
    for section, key, valid in checks:
        for owner, spec in config[section].items():
            unknown = sorted(set(spec.get("options", {})) - valid(spec[key]))
            if unknown:
                raise SnnRobustError(
                    f"config {section}.{owner}.options: {spec[key]!r} takes no option(s) {', '.join(unknown)}"
                )


def load_config(path: str | Path, schema_path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SnnRobustError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SnnRobustError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return validate_config(config or {}, schema_path)
