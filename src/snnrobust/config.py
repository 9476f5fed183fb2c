"""Load a pipeline config, validate it, and plan its studies; every problem is one line before any job runs.

Used by the Snakefile at parse time. Three layers of checks:
1. the JSON schema (types, ranges, unknown keys, budgets as numbers), then cross-references between ids;
2. the plan (``snnrobust.plan``): a model a sweep needs is trained somewhere, shared jobs agree;
3. the library (registries, option values, training recipes, report slots). Layer 3 imports torch and
   the component registries (~3 s); its verdict is cached under ``cache_dir`` keyed by the config and
   the library's source, so a repeated dry run plans in about a second.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

from snnrobust.errors import SnnRobustError
from snnrobust.plan import RUN_AXES, Plan

#: Matrix axis → the config section whose ids it names.
AXES = {"dataset": "datasets", "model": "models", "method": "methods", "attack": "attacks",
        "analysis": "analyses"}
PACKAGE = Path(__file__).resolve().parent


def load_yaml(path: str | Path):
    """YAML from ``path``; duplicate keys are an error where the strict loader is available."""
    path = Path(path)
    if not path.is_file():
        raise SnnRobustError(f"config file not found: {path}")
    try:
        from snnrobust.yamlio import load_yaml_strict
    except ImportError:  # the strict loader lands separately; plain YAML until then
        load_yaml_strict = None
    if load_yaml_strict is not None:
        return load_yaml_strict(path)
    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SnnRobustError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def check_not_empty(config, where: str) -> None:
    """An empty file or ``{}`` is a mistake, never a silent run of some other config."""
    if not config:
        raise SnnRobustError(f"config {where} is empty")
    if not isinstance(config, dict):
        raise SnnRobustError(f"config {where} must be a mapping of sections, not {type(config).__name__}")


def check_names_scale(config: dict, where: str) -> None:
    """A pipeline config says which scale it describes; a YAML file without ``scale`` is some other file
    (a profile, a paper-values file), named here before the schema lists what else it lacks."""
    if "scale" not in config:
        raise SnnRobustError(f"config {where} names no scale (`scale: default`, `cpu` or `paper`): "
                             f"is it a snnrobust pipeline config?")


def _fill_defaults(schema: dict, instance) -> None:
    """Fill schema ``default`` values into the instance (draft-2020 validators do not)."""
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = json.loads(json.dumps(sub["default"]))
            if key in instance:
                _fill_defaults(sub, instance[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(instance) - set(schema.get("properties", {})):
                _fill_defaults(extra, instance[key])


def _where(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "<top>"


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Schema validation with a one-line message naming the offending key."""
    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise SnnRobustError(f"config {_where(err)}: {err.message.splitlines()[0]}")
    _fill_defaults(schema, config)


def _study_matrices(config: dict):
    """(where, matrix entry) for every matrix of every study, sources of transfers included."""
    for study, body in config["studies"].items():
        for part in ("train", "sweeps", "analyses"):
            for i, entry in enumerate(body.get(part, [])):
                yield f"studies.{study}.{part}[{i}]", entry
                if "source" in entry:
                    yield f"studies.{study}.{part}[{i}].source", entry["source"]


def check_references(config: dict) -> None:
    """Every id a matrix names is declared in its section."""
    for where, entry in _study_matrices(config):
        for axis, section in AXES.items():
            for name in entry.get(axis, []):
                if name not in config.get(section, {}):
                    raise SnnRobustError(
                        f"config {where}.{axis}: {name!r} is not declared under {section} "
                        f"(declared: {', '.join(sorted(config.get(section, {}))) or 'none'})")


def check_stand_ins(config: dict) -> None:
    """A model that scales its architecture's width (``width`` ≠ 1) is not the paper's network: if it names one
    (``paper_name``) it must say it only stands in for it (``stand_in: true``), so no table shows it as the paper's."""
    for model, spec in config.get("models", {}).items():
        width = (spec.get("options") or {}).get("width", 1)
        if ("paper_name" in spec and not spec.get("stand_in") and isinstance(width, (int, float))
                and not isinstance(width, bool) and width != 1):
            raise SnnRobustError(f"config models.{model}: width {width:g} is not the architecture of "
                                 f"{spec['paper_name']!r}: set stand_in: true (a labelled stand-in) or width: 1")


# -- library checks (registries, option values; cached) --------------------------------------------
def _data_paths(config: dict, options: dict) -> dict:
    """Data options with ``{shared_data}`` / ``{raw}`` in strings filled from ``paths`` (as the jobs get them)."""
    paths = config.get("paths", {})
    return {k: v.format(**paths) if isinstance(v, str) else v for k, v in options.items()}


def _check_dataset(config: dict, name: str, options: dict) -> None:
    from snnrobust.data.sources import check_source_options

    check_source_options(name, _data_paths(config, options))


def _check_model(config: dict, name: str, options: dict) -> None:
    from snnrobust.models import MODELS, model_options

    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:
        raise SnnRobustError(f"arch {name!r} takes no option(s) {', '.join(unknown)}")
    MODELS.check_options(name, options, supplied=("num_classes", "in_shape"))


def _check_method(config: dict, name: str, options: dict) -> None:
    from snnrobust.methods import METHODS

    METHODS.check_options(name, options)
    METHODS.create(name, **options)  # builds the method once: nested inner-attack options are checked too


def _check_analysis(config: dict, name: str, options: dict) -> None:
    from snnrobust.analysis import ANALYSES

    ANALYSES.check_options(name, options)
    ANALYSES.create(name, **options)  # builds the analysis once: nested options (an attack's) are checked too


def _check_attack(config: dict, name: str, options: dict) -> None:
    import snnrobust.attacks as attacks

    attacks.ATTACKS.check_options(name, options, supplied=("eps",))
    nested = getattr(attacks, "check_attack_options", None)  # lands with the attack contracts
    if nested is not None:
        nested(name, options)


def _registry(section: str):
    """The registry a config section names components of (imported only when checking)."""
    import importlib

    module, attr = {"datasets": ("snnrobust.data", "DATASETS"), "models": ("snnrobust.models", "MODELS"),
                    "methods": ("snnrobust.methods", "METHODS"), "analyses": ("snnrobust.analysis", "ANALYSES"),
                    "attacks": ("snnrobust.attacks", "ATTACKS")}[section]
    return getattr(importlib.import_module(module), attr)


#: Config section → (the key naming the registered component, its option checker).
COMPONENTS = {
    "datasets": ("source", _check_dataset),
    "models": ("arch", _check_model),
    "methods": ("name", _check_method),
    "analyses": ("name", _check_analysis),
    "attacks": ("name", _check_attack),
}


def _check_components(config: dict, section: str, components: dict) -> None:
    """Each component is registered and its options are ones it takes, with values in range."""
    key, check = COMPONENTS[section]
    registry = _registry(section)
    for owner, spec in components.items():
        name, options = spec[key], spec.get("options", {})
        where = f"config {section}.{owner}" if owner in config.get(section, {}) else f"config attack variant {owner}"
        if name not in registry:
            raise SnnRobustError(f"{where}: unknown {registry.kind} {name!r}; choose one of: {', '.join(registry.names())}")
        try:
            check(config, name, options)
        except SnnRobustError as exc:
            raise SnnRobustError(f"{where}.options: {exc}") from None


def _check_attack_spaces(plan: Plan) -> None:
    """An attack whose space needs a spiking model (``space: spike`` perturbs the encoded input sequence) swept on
    a model that is not one (an ANN, a GCN) is an error naming the sweep, attack and model, not a failed job.
    A transfer needs it of the target and of the source (the attack runs on the source, its point feeds both)."""
    from snnrobust.attacks import make_attack
    from snnrobust.attacks.spaces import SPACES
    from snnrobust.models import MODELS

    config, spaces = plan.config, {}
    jobs = [(key, job, [("model", key[0].model)]) for key, job in plan.attacks.items()]
    jobs += [(key, job, [("target model", key[0].model), ("source model", key[1].model)])
             for key, job in plan.transfers.items()]
    for key, job, models in jobs:
        attack = key[-2]
        if attack not in spaces:
            variant = plan.attack_variants[attack]
            spaces[attack] = make_attack(variant["name"], eps=job["eps"], **variant["options"]).space
        if not getattr(SPACES.get(spaces[attack]), "needs_spiking", False):
            continue
        for role, model in models:
            arch = config["models"][model]["arch"]
            if not getattr(MODELS.get(arch), "spiking", False):
                raise SnnRobustError(
                    f"config {plan.origin.get(key, 'sweeps')}: attack {attack!r} perturbs in space "
                    f"{spaces[attack]!r} (the encoded spike input), which needs a spiking model; {role} {model!r} "
                    f"(arch {arch!r}) is not spiking (use space: pixel for it)")


def _check_recipes(plan: Plan) -> None:
    """Each run's merged recipe and its ``robust_eval`` (attack name and options included) build now."""
    from snnrobust.training import robust_eval_from, train_config_from

    for run in plan.runs:
        spec = plan.train_spec(run)
        try:
            train_config_from(spec["train"])
            robust_eval_from(spec.get("robust_eval"))
        except SnnRobustError as exc:
            raise SnnRobustError(f"config training recipe of {run.dataset}/{run.model}/{run.method}: {exc}") from None


def _check_reports(config: dict) -> None:
    import snnrobust.report as report

    validate_section = getattr(report, "validate_report_section", None)  # lands with the report pages
    validate_claims = getattr(report, "validate_claims", None)
    for study, body in config["studies"].items():
        try:
            if validate_section is not None:
                validate_section(study, body["report"])
            if validate_claims is not None:
                validate_claims(body["report"]["paper"])
        except SnnRobustError as exc:
            raise SnnRobustError(f"config studies.{study}.report: {exc}") from None


def _check_eval_sizes(plan: Plan) -> None:
    """An ``n_eval`` larger than its dataset's test split is an error now, not a short evaluation in a job."""
    from snnrobust.data.sources import test_split_size

    config, sizes = plan.config, {}
    jobs = [("sweep", key[0], job) for table in (plan.attacks, plan.transfers) for key, job in table.items()]
    jobs += [("analysis", key[0], job) for key, job in plan.analyses.items()]
    jobs += [("robust_eval", run, robust) for run in plan.runs
             if (robust := plan.train_spec(run).get("robust_eval")) and robust.get("n_eval") is not None]
    for what, run, job in jobs:
        if run.dataset not in sizes:
            ds = config["datasets"][run.dataset]
            sizes[run.dataset] = test_split_size(ds["source"], _data_paths(config, ds.get("options", {})))
        size = sizes[run.dataset]
        if size is not None and job["n_eval"] > size:
            raise SnnRobustError(f"config: n_eval {job['n_eval']} of a {what} on {run.dataset!r} is larger than its "
                                 f"test split ({size} samples)")


def _check_edge_budgets(plan: Plan) -> None:
    """A topology sweep whose edge budget (a share of the graph's edges) flips more node pairs than the graph has is
    an error now, not a failed job: the graph is built from its source and the attack's own budget rule applied."""
    from snnrobust.attacks import make_attack
    from snnrobust.data.sources import graph_adjacency

    config, graphs = plan.config, {}
    for key, job in plan.attacks.items():
        variant = plan.attack_variants[key[-2]]
        if variant["name"] != "topology":
            continue
        dataset = key[0].dataset
        try:
            if dataset not in graphs:
                ds = config["datasets"][dataset]
                graphs[dataset] = graph_adjacency(ds["source"], _data_paths(config, ds.get("options", {})))
            if graphs[dataset] is not None:
                make_attack("topology", eps=job["eps"], **variant["options"]).budget_for(graphs[dataset])
        except SnnRobustError as exc:
            raise SnnRobustError(f"config {plan.origin.get(key, 'sweeps')}: {dataset!r}: {exc}") from None


def check_library(plan: Plan) -> None:
    """Names and option values of every declared component (grid-derived attack variants included),
    training recipes and report slots (imports torch and the registries)."""
    config = plan.config
    for section in COMPONENTS:
        components = plan.attack_variants if section == "attacks" else config.get(section, {})
        _check_components(config, section, components)
    _check_attack_spaces(plan)
    _check_recipes(plan)
    _check_reports(config)
    _check_eval_sizes(plan)
    _check_edge_budgets(plan)


def library_fingerprint(config: dict) -> str:
    """Hash of the config and of the library's source: the library checks' verdict depends on nothing else."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def check_library_cached(plan: Plan, cache_dir: str | Path | None) -> None:
    """``check_library`` unless this exact config passed it with this exact library source before."""
    if cache_dir is None:
        return check_library(plan)
    stamp = Path(cache_dir) / f"{library_fingerprint(plan.config)}.ok"
    if stamp.is_file():
        return None
    check_library(plan)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    return None


def check_device(config: dict) -> None:
    """``device: cuda`` without a GPU fails here (only then is torch imported); auto and cpu always work."""
    if config.get("device", "auto") == "cuda":
        from snnrobust.device import resolve_device

        try:
            resolve_device("cuda")
        except SnnRobustError as exc:
            raise SnnRobustError(f"config device: {exc}") from None


def validate_config(config, schema_path: str | Path, cache_dir: str | Path | None = None,
                    where: str = "<given>") -> Plan:
    """All checks, in order of cost; returns the plan of every study."""
    check_not_empty(config, where)
    check_names_scale(config, where)
    check_schema(config, schema_path)
    check_references(config)
    check_stand_ins(config)
    plan = Plan(config)
    check_device(config)
    check_library_cached(plan, cache_dir)
    return plan


def load_config(path: str | Path, schema_path: str | Path, cache_dir: str | Path | None = None) -> Plan:
    """Read, validate and plan one config file."""
    return validate_config(load_yaml(path), schema_path, cache_dir, where=str(path))


__all__ = ["AXES", "RUN_AXES", "check_library", "check_references", "check_schema", "library_fingerprint",
           "load_config", "load_yaml", "validate_config"]
