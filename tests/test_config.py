"""Config checks at parse time (schema, references, plan, library) and the plan of studies, in process."""

import copy
import json

import pytest
import torch

from conftest import REPO
from snnrobust.config import library_fingerprint, load_yaml, validate_config
from snnrobust.errors import SnnRobustError
from snnrobust.plan import Plan, Run

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


@pytest.fixture(scope="module")
def default_config():
    return load_yaml(REPO / "config/default.yaml")


def validated(cfg):
    return validate_config(copy.deepcopy(cfg), SCHEMA)


def mutated(cfg, mutate):
    cfg = copy.deepcopy(cfg)
    mutate(cfg)
    return cfg


@pytest.mark.parametrize("scale", ["default", "cpu", "paper"])
def test_every_scale_validates_and_plans_three_studies(scale):
    plan = validate_config(load_yaml(REPO / f"config/{scale}.yaml"), SCHEMA)
    assert set(plan.studies) == {"sr", "sparsity_trail", "spiking_pgd"}
    for study, jobs in plan.studies.items():
        assert jobs.runs, study


def _sweep(cfg, study="sr", i=0):
    return cfg["studies"][study]["sweeps"][i]


BAD = [
    ("empty", lambda c: c.clear(), "is empty"),
    ("top-level key", lambda c: c.update(epochz=3), "'epochz' was unexpected"),
    ("eps as string", lambda c: _sweep(c).update(eps_255=["8/255"]), "'8/255' is not of type 'number'"),
    ("eps above 255", lambda c: _sweep(c).update(eps_255=[300]), "300 is greater than the maximum of 255"),
    ("negative eps", lambda c: _sweep(c).update(eps_255=[-1]), "-1 is less than the minimum of 0"),
    ("epochs 0", lambda c: c["training"]["defaults"].update(epochs=0), "0 is less than the minimum of 1"),
    ("lr 0", lambda c: c["training"]["recipes"]["graph"].update(lr=0), "graph/lr: 0 is less than or equal to the minimum of 0"),
    ("unknown arch", lambda c: c["models"]["snn_vgg_tiny"].update(arch="vgg99"), "unknown arch 'vgg99'"),
    ("unknown method", lambda c: c["methods"].update(magic={"name": "magic"}), "unknown training method 'magic'"),
    ("unknown source", lambda c: c["datasets"]["digits"].update(source="mnist9"), "unknown data source 'mnist9'"),
    ("undeclared model", lambda c: c["studies"]["sr"]["train"][0].update(model=["nope"]), "'nope' is not declared under models"),
    ("undeclared attack", lambda c: _sweep(c).update(attack=["cw"]), "'cw' is not declared under attacks"),
    ("attack option", lambda c: c["attacks"]["pgd10"]["options"].update(stepz=3), "config attacks.pgd10.options"),
    ("attack option value", lambda c: c["attacks"]["pgd10"]["options"].update(steps=0), "config attacks.pgd10.options"),
    ("grid option", lambda c: c["studies"]["spiking_pgd"]["sweeps"][0].update(grid={"stepz": [1, 2]}),
     "config attack variant pgd10-stepz1.options"),
    ("grid value", lambda c: c["studies"]["spiking_pgd"]["sweeps"][0].update(grid={"steps": [0]}),
     "config attack variant pgd10-steps0.options"),
    ("model option", lambda c: c["models"]["snn_vgg_tiny"]["options"].update(TT=3), "TT"),
    ("analysis option", lambda c: c["analyses"]["grad_norms"]["options"].update(fy="both"), "config analyses.grad_norms.options"),
    ("undeclared recipe", lambda c: c["studies"]["sr"].update(recipe="nope"), "training recipe 'nope'"),
    ("untrained source", lambda c: next(s for s in c["studies"]["sr"]["sweeps"] if s.get("threat") == "black-box")
     ["source"].update(seed=[7]),
     "model digits/snn_vgg_tiny/vanilla/s7 is not trained by any study"),
    ("untrained target", lambda c: _sweep(c).update(seed=[3]), "is not trained by any study"),
    ("source without threat", lambda c: _sweep(c, "sr", 3).pop("threat"), "config studies/sr/sweeps/3"),
    ("slot of no table", lambda c: c["studies"]["sr"]["report"]["slots"].update(sr_table99="attacks"), "sr_table99"),
    ("claim of no method", lambda c: c["studies"]["sr"]["report"].update(claims=[{
        "id": "x", "text": "magic wins", "left": {"method": "Magic", "attack": "PGD", "metric": "accuracy"}, "op": ">",
        "right": {"method": "AT", "attack": "PGD", "metric": "accuracy"}}]), "Magic"),
    ("claim of no metric", lambda c: c["studies"]["sr"]["report"].update(claims=[{
        "id": "x", "text": "t", "left": {"method": "AT", "metric": "speediness"}, "op": ">",
        "right": {"method": "RAT", "metric": "accuracy"}}]), "speediness"),
    ("unknown paper", lambda c: c["studies"]["sr"]["report"].update(paper="nature"), "'nature' is not one of"),
    ("shared job differs", lambda c: c["studies"]["spiking_pgd"]["train"][0].update(recipe="graph"),
     "also planned by study"),
    # the SR paper's components: a bad value of SR, SR*, the inner attack or the ensemble stops before any job
    ("SR lambda < 0", lambda c: c["methods"]["sr"]["options"].update(lam=-0.1), "config methods.sr.options"),
    ("SR h <= 0", lambda c: c["methods"]["sr"]["options"].update(h=0), "config methods.sr.options"),
    ("SR unknown form", lambda c: c["methods"]["sr"]["options"].update(form="cubic"), "cubic"),
    ("SR* unknown inner attack", lambda c: c["methods"]["sr_star"]["options"].update(attack={"name": "cw"}),
     "unknown attack 'cw'"),
    ("AT inner attack option", lambda c: c["methods"]["at"]["options"]["attack"]["options"].update(steps=0),
     "steps"),
    ("ensemble member rule", lambda c: c["attacks"]["ens_pgd10"]["options"].update(members=[{"rule": "magic"}]),
     "magic"),
    ("ensemble base attack", lambda c: c["attacks"]["ens_pgd10"]["options"].update(attack={"name": "cw"}),
     "'cw'"),
    ("ensemble gamma sweep", lambda c: c["attacks"]["gamma_pgd10"]["options"]["members"].update(
        gamma={"start": 0.5, "stop": 0.1, "step": 0.1}), "gamma"),
]


@pytest.mark.parametrize("name,mutate,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_error(default_config, name, mutate, needle):
    with pytest.raises(SnnRobustError) as info:
        validated(mutated(default_config, mutate))
    message = str(info.value)
    assert "\n" not in message and needle in message, message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where no GPU is present")
def test_cuda_without_gpu_is_an_error(default_config):
    with pytest.raises(SnnRobustError, match="config device: .*no CUDA GPU"):
        validated(mutated(default_config, lambda c: c.update(device="cuda")))


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text((REPO / "config/default.yaml").read_text() + "\nscale: cpu\n")
    with pytest.raises(SnnRobustError, match="duplicate key 'scale'"):
        load_yaml(path)


# -- the plan ---------------------------------------------------------------------------------------
def test_a_job_two_studies_need_is_planned_once(default_config):
    plan = validated(default_config)
    snn = Run("digits", "snn_vgg_tiny", "vanilla", 0)
    owners = [s for s, jobs in plan.studies.items() if snn in jobs.runs]
    assert owners == ["sr", "spiking_pgd"]
    assert list(plan.runs).count(snn) == 1
    shared = (snn, "pgd10", "8")  # PGD-10 of the SR tables is Spiking-PGD's Fig. 5 PGD at T0 = 10
    assert shared in plan.studies["sr"].attacks and shared in plan.studies["spiking_pgd"].attacks
    n_study_attacks = sum(len(set(j.attacks)) for j in plan.studies.values())
    assert len(plan.attacks) < n_study_attacks


def test_option_grid_expands_to_derived_ids(default_config):
    plan = validated(default_config)
    variants = {k: v for k, v in plan.attack_variants.items() if k.startswith("pgd10-")}
    assert set(variants) == {"pgd10-steps1", "pgd10-steps2", "pgd10-steps5"}
    base = default_config["attacks"]["pgd10"]["options"]
    for vid, variant in variants.items():
        assert variant["name"] == "pgd" and variant["options"] == {**base, "steps": int(vid.removeprefix("pgd10-steps"))}
    spgd = {k[1] for k in plan.studies["spiking_pgd"].attacks}
    assert set(variants) <= spgd
    assert {"ifgsm-steps10", "mifgsm-steps1", "spiking_pgd-rho0.14"} <= spgd
    assert plan.attack_variants["spiking_pgd-rho0.14"]["options"]["rho"] == 0.14
    assert plan.attack_variants["mifgsm-steps5"] == {"name": "mifgsm", "options": {"steps": 5, "decay": 1.0}}


def test_dotted_grid_option_sets_a_nested_option(default_config):
    def gamma_grid(c):
        c["attacks"]["pgd10"]["options"]["gradient"] = {"rule": "surrogate", "name": "atan", "gamma": 1.0}
        c["studies"]["spiking_pgd"]["sweeps"][0].update(grid={"gradient.gamma": [0.5, 2]})

    cfg = mutated(default_config, gamma_grid)
    plan = Plan(validate_config(cfg, SCHEMA).config)
    assert plan.attack_variants["pgd10-gradient.gamma0.5"]["options"]["gradient"] == {
        "rule": "surrogate", "name": "atan", "gamma": 0.5}
    assert plan.attack_variants["pgd10-gradient.gamma2"]["options"]["steps"] == 10


def test_recipes_merge_over_defaults_and_resources_leave_the_spec(default_config):
    plan = validated(default_config)
    gcn = Run("karate", "gcn", "vanilla", 0)
    spec = plan.train_spec(gcn)
    defaults = default_config["training"]["defaults"]
    graph = default_config["training"]["recipes"]["graph"]
    assert spec["train"] == {**{k: v for k, v in defaults.items() if k != "resources"}, **graph, "seed": 0}
    assert "resources" not in spec["train"] and plan.train_resources(gcn) == defaults["resources"]
    assert spec["device"] == "auto" and spec["model"] == {"arch": "gcn", "options": {"hidden": 16, "dropout": 0.5}}


def test_transfer_jobs_are_addressed_by_source_and_target(default_config):
    plan = validated(default_config)
    target, source = Run("digits", "snn_vgg_tiny", "vanilla", 0), Run("digits", "snn_vgg_tiny", "vanilla", 1)
    key = (target, source, "pgd10", "8")
    assert key in plan.transfers
    assert plan.transfer_path(key) == ("results/transfer/digits/snn_vgg_tiny/vanilla/s0/from/snn_vgg_tiny/vanilla/s1/"
                                       "pgd10_eps8.json")
    spec = plan.transfer_spec(key)
    assert spec["labels"]["threat"] == "black-box" and spec["source_labels"] == {
        "model": "snn_vgg_tiny", "method": "vanilla", "seed": 1}
    assert spec["eps"] == pytest.approx(8 / 255)


def test_budget_sweeps_pass_the_number_as_is(default_config):
    def edge_budget(c):
        _sweep(c, "spiking_pgd").pop("eps_255")
        _sweep(c, "spiking_pgd").update(budget=[0.05])

    plan = validated(mutated(default_config, edge_budget))
    steps1 = [k for k in plan.studies["spiking_pgd"].attacks if k[1] == "pgd10-steps1"]
    (key,) = [k for k in steps1 if k[2] == "0.05"]  # the edited (first) sweep's; the other keeps its eps
    assert plan.attack_spec(key)["eps"] == 0.05 and len(steps1) == 2


def _all_specs(plan):
    """Every job's spec by output path: what Snakemake's params trigger compares."""
    specs = {plan.metrics_path(r): plan.train_spec(r) for r in plan.runs}
    specs.update({plan.attack_path(k): plan.attack_spec(k) for k in plan.attacks})
    specs.update({plan.transfer_path(k): plan.transfer_spec(k) for k in plan.transfers})
    specs.update({plan.analysis_path(k): plan.analysis_spec(k) for k in plan.analyses})
    return {path: json.dumps(spec, sort_keys=True) for path, spec in specs.items()}


def test_changing_one_attack_option_changes_only_that_attacks_specs(default_config):
    before = _all_specs(validated(default_config))
    after = _all_specs(validated(mutated(default_config, lambda c: c["attacks"]["pgd30"]["options"].update(steps=3))))
    assert set(before) == set(after)
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"results/attacks/digits/snn_vgg_tiny/vanilla/s0/pgd30_eps8.json"}


def test_library_checks_are_cached_by_config_and_source(default_config, tmp_path):
    cfg = validated(default_config).config
    validate_config(copy.deepcopy(default_config), SCHEMA, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{library_fingerprint(cfg)}.ok"]
    other = validated(mutated(default_config, lambda c: c["attacks"]["pgd30"]["options"].update(steps=3))).config
    assert library_fingerprint(other) != library_fingerprint(cfg)
