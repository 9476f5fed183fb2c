"""Studies → jobs: expand each study's matrices into train, attack, transfer and analysis jobs, each planned once.

Pure Python on the validated config (no torch): the Snakefile builds one ``Plan`` at parse time and
asks it for output paths, per-job specs and resources. A job two studies need is one entry; two
studies asking for the same output with different parameters is a one-line error.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from snnrobust.errors import SnnRobustError

RUN_AXES = ("dataset", "model", "method", "seed")

MODEL = "results/models/{dataset}/{model}/{method}/s{seed}/model.pt"
METRICS = "results/models/{dataset}/{model}/{method}/s{seed}/metrics.csv"
ATTACK = "results/attacks/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.json"
TRANSFER = ("results/transfer/{dataset}/{model}/{method}/s{seed}/from/{src_model}/{src_method}/s{src_seed}/"
            "{attack}_eps{eps}.json")
ANALYSIS = "results/analysis/{dataset}/{model}/{method}/s{seed}/{analysis}.json"

#: Budget units of a sweep: config key → factor turning the written number into the attack's ``eps``.
BUDGET_UNITS = {"eps_255": 1 / 255, "budget": 1.0}


@dataclass(frozen=True)
class Run:
    """One trained model: the key every downstream job is addressed by."""

    dataset: str
    model: str
    method: str
    seed: int

    def fields(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}{k}": getattr(self, k) for k in RUN_AXES}


@dataclass
class StudyJobs:
    """Which planned jobs one study needs (keys into the plan's job tables)."""

    runs: list[Run] = field(default_factory=list)
    attacks: list[tuple] = field(default_factory=list)
    transfers: list[tuple] = field(default_factory=list)
    analyses: list[tuple] = field(default_factory=list)


def fmt_number(value: float) -> str:
    """A budget as written in paths: 8 → '8', 0.5 → '0.5'."""
    return f"{float(value):g}"


def matrix(entry: dict, axes: tuple[str, ...]) -> list[dict]:
    """Every combination of the entry's lists over ``axes``, in config order."""
    return [dict(zip(axes, combo)) for combo in itertools.product(*(entry[a] for a in axes))]


def merge(base: dict, over: dict) -> dict:
    """Recursive dict merge: ``over`` wins, nested dicts are merged, not replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def set_dotted(options: dict, dotted: str, value: Any) -> dict:
    """``options`` with ``a.b`` set to ``value`` (nested option of a grid, e.g. gradient.gamma)."""
    head, _, rest = dotted.partition(".")
    inner = options.get(head, {}) if rest else None
    if rest and not isinstance(inner, dict):
        inner = {}
    return {**options, head: set_dotted(inner, rest, value) if rest else value}


def describe(key) -> str:
    """A job key for messages: runs as dataset/model/method/s<seed>, other parts as they are."""
    if isinstance(key, Run):
        return f"{key.dataset}/{key.model}/{key.method}/s{key.seed}"
    return " ".join(describe(k) for k in key) if isinstance(key, tuple) else str(key)


def _grid_label(name: str, value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else (fmt_number(value) if isinstance(value, (int, float)) else str(value))
    return f"{name}{text}"


class Plan:
    """The planned jobs of every study of one config, with their specs, paths and resources."""

    def __init__(self, config: dict):
        self.config = config
        self.runs: dict[Run, dict] = {}  # run → {"train": merged recipe, "resources": ..., "study": first owner}
        self.attack_variants: dict[str, dict] = {
            k: {"name": v["name"], "options": v.get("options", {})} for k, v in config["attacks"].items()}
        self.attacks: dict[tuple, dict] = {}
        self.transfers: dict[tuple, dict] = {}
        self.analyses: dict[tuple, dict] = {}
        #: attack / transfer job key → where in the config it was first planned ("studies.trail.sweeps[2]")
        self.origin: dict[tuple, str] = {}
        self.studies: dict[str, StudyJobs] = {}
        self._owner: dict[tuple, str] = {}
        for study, body in config["studies"].items():
            self.studies[study] = jobs = StudyJobs()
            self._plan_training(study, body, jobs)
        for study, body in config["studies"].items():
            self._plan_sweeps(study, body, self.studies[study])
            self._plan_analyses(study, body, self.studies[study])

    # -- planning -------------------------------------------------------------------------------
    def _claim(self, table: dict, key: tuple, value: dict, study: str, what: str) -> None:
        """Add a job once; the same output asked for with other parameters is an error."""
        if key in table and table[key] != value:
            raise SnnRobustError(
                f"config studies.{study}: {what} {describe(key)} is also planned by study "
                f"{self._owner[(what, key)]!r} with different parameters; give one of them its own id")
        if key not in table:
            table[key] = value
            self._owner[(what, key)] = study

    def recipe(self, study: str, method: str, entry_recipe: str | None) -> dict:
        """training.defaults ← the study's recipe ← the method's recipe ← the train entry's recipe."""
        training = self.config["training"]
        names = [self.config["studies"][study].get("recipe"), self.config["methods"][method].get("recipe"),
                 entry_recipe]
        merged = dict(training["defaults"])
        for name in filter(None, names):
            if name not in training.get("recipes", {}):
                raise SnnRobustError(
                    f"config: training recipe {name!r} (study {study!r}, method {method!r}) is not declared under "
                    f"training.recipes (declared: {', '.join(sorted(training.get('recipes', {}))) or 'none'})")
            merged = merge(merged, training["recipes"][name])
        return merged

    def _plan_training(self, study: str, body: dict, jobs: StudyJobs) -> None:
        for i, entry in enumerate(body["train"]):
            for combo in matrix(entry, RUN_AXES):
                run = Run(**combo)
                recipe = self.recipe(study, run.method, entry.get("recipe"))
                resources = recipe.pop("resources", {})
                self._claim(self.runs, run, {"train": recipe, "resources": resources}, study, "trained model")
                jobs.runs.append(run)

    def _trained(self, run: Run, study: str, where: str) -> Run:
        if run not in self.runs:
            raise SnnRobustError(
                f"config studies.{study}.{where}: model {describe(run)} is not "
                f"trained by any study (add it to a study's train matrix)")
        return run

    def _variants(self, study: str, i: int, entry: dict) -> list[str]:
        """The entry's attack ids, one derived id per combination of its option grid (e.g. pgd10-steps5)."""
        grid = entry.get("grid")
        if not grid:
            return list(entry["attack"])
        names = list(grid)
        out = []
        for attack in entry["attack"]:
            base = self.attack_variants[attack]
            for values in itertools.product(*(grid[n] for n in names)):
                vid = "-".join([attack, *(_grid_label(n, v) for n, v in zip(names, values))])
                options = base["options"]
                for n, v in zip(names, values):
                    options = set_dotted(options, n, v)
                variant = {"name": base["name"], "options": options}
                if vid in self.attack_variants and self.attack_variants[vid] != variant:
                    raise SnnRobustError(f"config studies.{study}.sweeps[{i}]: derived attack id {vid!r} clashes "
                                         f"with another attack of the same id")
                self.attack_variants[vid] = variant
                out.append(vid)
        return out

    def _plan_sweeps(self, study: str, body: dict, jobs: StudyJobs) -> None:
        evaluation = self.config.get("evaluation", {})
        for i, entry in enumerate(body.get("sweeps", [])):
            where = f"sweeps[{i}]"
            unit = "eps_255" if "eps_255" in entry else "budget"
            size = {"n_eval": entry.get("n_eval", evaluation.get("n_eval", 500)),
                    "batch_size": entry.get("batch_size", evaluation.get("batch_size", 128))}
            sources = matrix(entry["source"], RUN_AXES[1:]) if entry.get("threat") == "black-box" else [None]
            for combo in matrix(entry, RUN_AXES):
                run = self._trained(Run(**combo), study, where)
                for src, attack, value in itertools.product(sources, self._variants(study, i, entry), entry[unit]):
                    job = {**size, "unit": unit, "eps": float(value) * BUDGET_UNITS[unit]}
                    if src is None:
                        key = (run, attack, fmt_number(value))
                        self._claim(self.attacks, key, job, study, "attack")
                        self.origin.setdefault(key, f"studies.{study}.{where}")
                        jobs.attacks.append(key)
                    else:
                        source = self._trained(Run(dataset=run.dataset, **src), study, f"{where}.source")
                        self._check_source(run, source, bool(entry.get("cross_architecture")), study, where)
                        key = (run, source, attack, fmt_number(value))
                        self._claim(self.transfers, key, job, study, "transfer")
                        self.origin.setdefault(key, f"studies.{study}.{where}")
                        jobs.transfers.append(key)

    def _check_source(self, run: Run, source: Run, cross: bool, study: str, where: str) -> None:
        """A black-box source is another trained model (not the target itself) and, unless the sweep sets
        ``cross_architecture``, the target's architecture (the same declared arch and options), as the SR
        code's ``--bbmodel`` was: an independently trained copy of the target's network."""
        if source == run:
            raise SnnRobustError(f"config studies.{study}.{where}.source: the source {describe(source)} is the "
                                 f"target itself (a black-box source is another trained model)")
        if not cross and self._model(source.model) != self._model(run.model):
            raise SnnRobustError(
                f"config studies.{study}.{where}.source: model {source.model!r} is not the architecture of the "
                f"target {run.model!r}; use a source of the same architecture (another seed), or set "
                f"cross_architecture: true on the sweep")

    def _plan_analyses(self, study: str, body: dict, jobs: StudyJobs) -> None:
        evaluation = self.config.get("evaluation", {})
        for i, entry in enumerate(body.get("analyses", [])):
            size = {"n_eval": entry.get("n_eval", evaluation.get("n_eval", 500)),
                    "batch_size": entry.get("batch_size", evaluation.get("batch_size", 128))}
            for combo in matrix(entry, RUN_AXES):
                run = self._trained(Run(**combo), study, f"analyses[{i}]")
                for analysis in entry["analysis"]:
                    key = (run, analysis)
                    self._claim(self.analyses, key, size, study, "analysis")
                    jobs.analyses.append(key)

    # -- paths ----------------------------------------------------------------------------------
    @staticmethod
    def metrics_path(run: Run) -> str:
        return METRICS.format(**run.fields())

    @staticmethod
    def attack_path(key: tuple) -> str:
        run, attack, eps = key
        return ATTACK.format(**run.fields(), attack=attack, eps=eps)

    @staticmethod
    def transfer_path(key: tuple) -> str:
        run, src, attack, eps = key
        return TRANSFER.format(**run.fields(), **{k: v for k, v in src.fields("src_").items() if k != "src_dataset"},
                               attack=attack, eps=eps)

    @staticmethod
    def analysis_path(key: tuple) -> str:
        run, analysis = key
        return ANALYSIS.format(**run.fields(), analysis=analysis)

    def study_files(self, study: str) -> dict[str, list[str]]:
        """The result files of one study by kind, deduplicated, in plan order."""
        jobs = self.studies[study]
        files = {"training": [self.metrics_path(r) for r in jobs.runs],
                 "attacks": [self.attack_path(k) for k in jobs.attacks],
                 "transfer": [self.transfer_path(k) for k in jobs.transfers],
                 "analyses": [self.analysis_path(k) for k in jobs.analyses]}
        return {kind: list(dict.fromkeys(paths)) for kind, paths in files.items()}

    # -- specs (everything a result depends on, nothing else) -------------------------------------
    def _model(self, model: str) -> dict:
        m = self.config["models"][model]
        return {"arch": m["arch"], "options": m.get("options", {})}

    def train_spec(self, run: Run) -> dict:
        """The train verb's spec; a recipe's ``robust_eval`` (per-epoch robust accuracy) leaves ``train`` for
        its own key, present only when set (specs without it, and their hashes, are as before)."""
        method = self.config["methods"][run.method]
        train = dict(self.runs[run]["train"])
        robust_eval = train.pop("robust_eval", None)
        spec = {
            "model": self._model(run.model),
            "method": {"name": method["name"], "options": method.get("options", {})},
            "train": {**train, "seed": run.seed},
            "labels": run.fields(),
            "device": self.config.get("device", "auto"),
        }
        if robust_eval is not None:
            spec["robust_eval"] = robust_eval
        return spec

    def train_resources(self, run: Run) -> dict:
        return self.runs[run]["resources"]

    def _attack_common(self, run: Run, attack: str, job: dict, threat: str) -> dict:
        return {
            "attack": self.attack_variants[attack],
            "eps": job["eps"],
            "n_eval": job["n_eval"],
            "batch_size": job["batch_size"],
            "seed": run.seed,
            "labels": {**run.fields(), "attack": attack, "threat": threat},
            "device": self.config.get("device", "auto"),
            "model": self._model(run.model),
        }

    def attack_spec(self, key: tuple) -> dict:
        run, attack, _ = key
        return self._attack_common(run, attack, self.attacks[key], "white-box")

    def transfer_spec(self, key: tuple) -> dict:
        run, src, attack, _ = key
        spec = self._attack_common(run, attack, self.transfers[key], "black-box")
        spec["source_labels"] = {"model": src.model, "method": src.method, "seed": src.seed}
        return spec

    def analysis_spec(self, key: tuple) -> dict:
        run, analysis = key
        a = self.config["analyses"][analysis]
        job = self.analyses[key]
        return {
            "analysis": {"name": a["name"], "options": a.get("options", {})},
            "n_eval": job["n_eval"],
            "batch_size": job["batch_size"],
            "labels": {**run.fields(), "analysis": analysis},
            "device": self.config.get("device", "auto"),
        }

    # -- wildcard constraints ---------------------------------------------------------------------
    @staticmethod
    def constraint(ids) -> str:
        """A regex alternation of exact ids (longest first, so no id matches a prefix of another)."""
        return "|".join(re.escape(i) for i in sorted(set(ids), key=len, reverse=True))
