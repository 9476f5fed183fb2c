"""Config loading and validation, the plan of every study (snnrobust.plan), and per-job specs.

Planning stays lean: the checks that import torch and the registries run once per config and library
source (cached under .snakemake/snnrobust-checked); everything here is plain Python on the plan.
"""

import json
import os
import sys

from snakemake.utils import update_config

from snnrobust.config import check_not_empty, load_yaml, validate_config
from snnrobust.errors import SnnRobustError
from snnrobust.plan import Run
from snnrobust.provenance import CONFIG_HASH_ENV, config_hash

SCHEMA = "workflow/schemas/config.schema.yaml"
DEFAULT_CONFIG = "config/default.yaml"
CHECK_CACHE = ".snakemake/snnrobust-checked"
ENV = "../../envs/snnrobust.yaml"
#: Rule names a study id may not take (each study is a target rule of its own name).
RULES = ("all", "prepare_data", "train", "attack", "transfer", "analyze", "table", "figure", "page", "overview",
         "about", "study_overview", "study_about")


def _shown(path):
    """A config file as errors name it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith(os.pardir) else rel


def _load_plan():
    """Strict YAML of every config file (or the default config when none is given), --config on top,
    then all checks. Snakemake's own YAML reading is replaced: it allows duplicate keys and reads 1e-3
    as a string."""
    files = [_shown(f) for f in workflow.configfiles] or [DEFAULT_CONFIG]
    config.clear()
    for path in files:
        content = load_yaml(path)
        check_not_empty(content, path)
        update_config(config, content)
    update_config(config, dict(getattr(workflow.config_settings, "config", None) or {}))
    plan = validate_config(config, SCHEMA, cache_dir=CHECK_CACHE, where=", ".join(files))
    clash = sorted(set(config["studies"]) & set(RULES))
    if clash:
        raise SnnRobustError(f"config studies: study id {clash[0]!r} is a rule name; choose another id")
    return plan


try:
    PLAN = _load_plan()
except SnnRobustError as exc:
    sys.exit(f"snnrobust: error: {exc}")

# Every job records the hash of this run's whole config in its provenance: handed down in the environment
# (not a param, so it reruns nothing).
os.environ[CONFIG_HASH_ENV] = config_hash(config)

STUDIES = list(config["studies"])
STUDY_FILES = {study: PLAN.study_files(study) for study in STUDIES}


wildcard_constraints:
    dataset=PLAN.constraint(config["datasets"]),
    model=PLAN.constraint(config["models"]),
    method=PLAN.constraint(config["methods"]),
    src_model=PLAN.constraint(config["models"]),
    src_method=PLAN.constraint(config["methods"]),
    attack=PLAN.constraint(PLAN.attack_variants),
    analysis=PLAN.constraint(config["analyses"] or ["none"]),
    study=PLAN.constraint(STUDIES),
    seed=r"\d+",
    src_seed=r"\d+",
    eps=r"[0-9]+(\.[0-9]+)?(e-?[0-9]+)?",


def run_of(wc, prefix=""):
    """The trained model a job's wildcards address (``src_`` prefix: a transfer's source)."""
    return Run(dataset=wc.dataset, model=wc[f"{prefix}model"], method=wc[f"{prefix}method"],
               seed=int(wc[f"{prefix}seed"]))


def as_json(spec):
    return json.dumps(spec, sort_keys=True)


def train_spec(wc):
    """Everything a trained model depends on; a change here (and only here) retrains it."""
    return as_json(PLAN.train_spec(run_of(wc)))


def train_resource(name, default):
    """A train job's scheduler resource from its recipe (training.defaults/recipes ... resources)."""
    return lambda wc: PLAN.train_resources(run_of(wc)).get(name, default)


def attack_spec(wc):
    return as_json(PLAN.attack_spec((run_of(wc), wc.attack, wc.eps)))


def transfer_spec(wc):
    return as_json(PLAN.transfer_spec((run_of(wc), run_of(wc, "src_"), wc.attack, wc.eps)))


def analysis_spec(wc):
    return as_json(PLAN.analysis_spec((run_of(wc), wc.analysis)))


def data_spec(wc):
    """Data options, with {shared_data} / {raw} in strings filled from config `paths`."""
    opts = config["datasets"][wc.dataset].get("options", {})
    paths = config["paths"]
    return as_json({k: v.format(**paths) if isinstance(v, str) else v for k, v in opts.items()})


#: Attacks that count a sample broken if any member breaks it (the SR paper's tables 1-3 report those).
ENSEMBLE_ATTACKS = {"ensemble"}


def paper_keys(study):
    """Paper keys of config ids that result rows do not carry: a model's pooling, whether an attack is an
    ensemble, and what the study's report section adds per id (attack_variant, a method's lam). Pairing needs
    every key a paper row declares, so a row without them is never paired."""
    rep = config["studies"][study]["report"]
    derived = {
        "model_keys": {k: {"pooling": v["options"]["pooling"]} for k, v in config["models"].items()
                       if v.get("options", {}).get("pooling") is not None},
        "attack_keys": {k: {"ensemble": v["name"] in ENSEMBLE_ATTACKS} for k, v in config["attacks"].items()},
        "method_keys": {},
    }
    return {spec_key: {ident: {**ids.get(ident, {}), **(rep.get(spec_key) or {}).get(ident, {})}
                       for ident in {**ids, **(rep.get(spec_key) or {})}}
            for spec_key, ids in derived.items()}


def report_spec(study, table):
    """What a study's table is built from: its report section, the table's view and paired paper table."""
    rep = config["studies"][study]["report"]
    return as_json({
        **rep,
        "kind": TABLES[table][1],
        "study": study,
        "scale": config["scale"],
        # the first paper *table* the view fills (a figure slot of the same view pairs with no table)
        "paper_table": next((t for t, view in rep.get("slots", {}).items() if view == table and "_table" in t), None),
        "arch_map": {k: v["paper_name"] for k, v in config["models"].items() if "paper_name" in v},
        "stand_in_models": sorted(k for k, v in config["models"].items() if v.get("stand_in")),
        **paper_keys(study),
    })


def page_spec(study):
    rep = config["studies"][study]["report"]
    return as_json({
        **rep,
        "study": study,
        "scale": config["scale"],
        "arch_map": {k: v["paper_name"] for k, v in config["models"].items() if "paper_name" in v},
        "stand_in_models": sorted(k for k, v in config["models"].items() if v.get("stand_in")),
        **paper_keys(study),
    })


def study_title(study):
    return config["studies"][study].get("title", study)


#: Table → (the kind of study result files it is built from, the result view that tabulates them).
TABLES = {"attacks": ("attacks", "attacks"), "transfer": ("transfer", "attacks"),
          "grad_norms": ("analyses", "grad_norms"), "training": ("training", "training")}
#: Figure kind → (result files kind, or a table it is drawn from).
FIGURE_INPUTS = {"eps_sweep": "attacks", "attack_bars": "table:attacks", "grad_norms": "analyses",
                 "training_curves": "training"}


def study_tables(study):
    files = STUDY_FILES[study]
    return [t for t, (kind, _) in TABLES.items() if files[kind]]


def study_figures(study):
    """Figures whose inputs the study has; paper-vs-reproduced bars only where a slot pairs the attacks."""
    files = STUDY_FILES[study]
    paired = "attacks" in config["studies"][study]["report"].get("slots", {}).values()
    return [f for f, kind in FIGURE_INPUTS.items()
            if files[kind.removeprefix("table:")] and (paired or not kind.startswith("table:"))]


def table_inputs(wc):
    return STUDY_FILES[wc.study][TABLES[wc.table][0]]


def figure_inputs(wc):
    kind = FIGURE_INPUTS[wc.figure]
    if kind.startswith("table:"):
        return [f"results/tables/{wc.study}/{kind.removeprefix('table:')}.csv"]
    return STUDY_FILES[wc.study][kind]


#: The summaries of every study (the report's first pages): what `all` builds beside the studies' targets.
SUMMARIES = ["results/pages/overview.html", "results/pages/about.html"]


def study_summaries(study):
    """One study's own overview and about (provenance) pages: a one-study run summarises that study alone,
    in files of its own, so `snakemake <study>` never rewrites (or waits for) the all-studies summaries."""
    return [study_page(study, "overview"), study_page(study, "about")]


def study_targets(study):
    """Everything one study builds: its tables, figures, report page and its own summaries."""
    return [
        *(f"results/tables/{study}/{t}.{ext}" for t in study_tables(study) for ext in ("csv", "html")),
        *(f"results/figures/{study}/{f}.png" for f in study_figures(study)),
        f"results/pages/{study}.html",
        *study_summaries(study),
    ]


def study_page(study, name):
    """One of a study's own summary pages: ``overview`` or ``about``."""
    return f"results/pages/{study}/{name}.html"


def study_results(study):
    """Every result file of a study: what its about page records the provenance of."""
    return sorted({f for kind in ("training", "attacks", "transfer", "analyses") for f in STUDY_FILES[study][kind]})


def study_about_targets(study):
    """What a study's about page waits for (and times): every target of the study but the page itself."""
    return [t for t in study_targets(study) if t != study_page(study, "about")]


#: The all-studies about page (report.smk's `about`): it times the run, so it waits for every other target.
ABOUT = "results/pages/about.html"


def about_targets():
    """What the all-studies about page waits for and times, per requested study: every target of the study but its
    own about page, and the other summaries of all studies (listed by every study, so the timing counts them as
    cross-study). The page is written last: its timing covers every other job of the run."""
    others = [t for t in SUMMARIES if t != ABOUT]
    return {s: [*study_about_targets(s), *others] for s in requested_studies()}


def rule_patterns():
    """Each benchmarked rule's output and benchmark patterns, by name; the about job matches a recorded output to
    find the job's benchmark file. Wildcard constraints are left out: they list config ids (a change would rerun
    the about job) in an order that differs between processes (a second run would rerun it)."""
    from snakemake.io import strip_wildcard_constraints as bare

    return {r.name: {"outputs": [bare(str(f)) for f in r.output], "benchmark": bare(str(r.benchmark))}
            for r in workflow.rules if r.benchmark is not None}


def timing_spec():
    """Where the about job reads the run's timing (snnrobust.report.timing): the benchmark files, Snakemake's
    records of each job's inputs (the job graph), the rules' patterns and each requested study's targets."""
    return as_json({
        "benchmarks": "results/benchmarks",
        "metadata": ".snakemake/metadata",
        "rules": rule_patterns(),
        "studies": about_targets(),
    })


def study_timing_spec(study):
    """The about job's timing spec (report.smk's timing_spec) for this study alone (summaries.smk)."""
    spec = json.loads(timing_spec())
    spec["studies"] = {study: study_about_targets(study)}
    return as_json(spec)


def all_targets():
    """What `all` builds: every study's targets and the summaries of all studies together."""
    return [*(path for study in STUDIES for path in study_targets(study)), *SUMMARIES]


def requested_targets():
    """Targets given on the snakemake command line: at parse time Snakemake has not handed them to the
    workflow yet, so read them from the CLI's parsed arguments up the call stack (empty when not found)."""
    frame = sys._getframe()
    while frame is not None:
        args = frame.f_locals.get("args") if frame.f_globals.get("__name__") == "snakemake.cli" else None
        if args is not None and hasattr(args, "targets"):
            return list(args.targets or ())
        frame = frame.f_back
    return []


def requested_studies():
    """The studies this run builds: those named as targets, or every study (for `all` or no target). Only the
    all-studies summaries (overview.html, about.html) use it, and only `all` needs them: one study's own
    summaries (study_summaries) cover that study alone."""
    named = [t for t in requested_targets() if t in STUDIES]
    return named or list(STUDIES)


def check_targets(rule_names):
    """A target naming no rule, study or file (a file has a path separator or a dot) is a one-line error."""
    for target in requested_targets():
        if target not in rule_names and not set(target) & {os.sep, "."}:
            sys.exit(f"snnrobust: error: unknown study {target!r}; choose one of: all, {', '.join(STUDIES)}")
