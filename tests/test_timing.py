"""Where the time goes (snnrobust.report.timing): seconds per rule and per study, the slowest jobs and the critical
path, from benchmark TSVs and Snakemake's records of each job's inputs; on synthetic folders with known seconds,
on a real Snakemake run of a small workflow, and on the pipeline's own rules (dry run)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from snnrobust.report.timing import CROSS_STUDY, _job_of, compute, critical_path, fill, pattern_regex, read_benchmark
from conftest import REPO, run_cli

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path: Path, seconds: float, cpu: float | str = 1.0) -> None:
    """A benchmark TSV as Snakemake writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t100.5\t200\t90\t95\t0.1\t0.2\t0.9\t{cpu}\n")


def record(meta: Path, output: str, rule: str, inputs: list[str]) -> None:
    """A Snakemake metadata record of one output, at the path Snakemake gives it (urlsafe base64 of the output,
    split into '@'-prefixed folders past 254 characters)."""
    b64 = base64.urlsafe_b64encode(output.encode()).decode()
    parts = [b64[i:i + 254] for i in range(0, len(b64), 254)]
    path = meta.joinpath(*["@" + p for p in parts[:-1]], parts[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rule": rule, "input": inputs, "log": [], "incomplete": False,
                                "record_format_version": 6}))


#: A small pipeline as the workflow declares it: rule → output patterns, benchmark pattern.
RULES = {
    "prepare": (["data/{dataset}.npz"], "bench/prepare/{dataset}.tsv"),
    "train": (["models/{dataset}/{model}/s{seed,\\d+}/model.pt", "models/{dataset}/{model}/s{seed,\\d+}/run.json"],
              "bench/train/{dataset}/{model}/s{seed}.tsv"),
    "attack": (["attacks/{dataset}/{model}/s{seed}/{attack}.json"],
               "bench/attack/{dataset}/{model}/s{seed}/{attack}.tsv"),
    "page": (["pages/{study}.html"], "bench/page/{study}.tsv"),
    "overview": (["pages/overview.html"], "bench/page/overview.tsv"),
}


def rule_spec() -> dict:
    return {r: {"outputs": outs, "benchmark": b} for r, (outs, b) in RULES.items()}


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A synthetic finished run of two studies (seconds in brackets). Data (2) and the snn model (30) serve both;
    sr: attacks pgd (5), fgsm (no benchmark file) on snn, and the ann model (10) with its pgd attack (20), page
    (1); trail: one attack on snn with a long name (3), page (2); the overview (0.5) reads both pages. Plus the
    benchmark of a job an older config had."""
    monkeypatch.chdir(tmp_path)
    meta = Path("meta")
    long_attack = "pgd-" + "x" * 220  # its record's name is longer than a file name may be
    jobs = {  # output → (rule, inputs, benchmark, seconds)
        "data/digits.npz": ("prepare", [], "bench/prepare/digits.tsv", 2.0),
        "models/digits/snn/s0/model.pt": ("train", ["data/digits.npz"], "bench/train/digits/snn/s0.tsv", 30.0),
        "models/digits/ann/s0/model.pt": ("train", ["data/digits.npz"], "bench/train/digits/ann/s0.tsv", 10.0),
        "attacks/digits/snn/s0/pgd.json": ("attack", ["data/digits.npz", "models/digits/snn/s0/model.pt"],
                                           "bench/attack/digits/snn/s0/pgd.tsv", 5.0),
        "attacks/digits/snn/s0/fgsm.json": ("attack", ["data/digits.npz", "models/digits/snn/s0/model.pt"],
                                            "bench/attack/digits/snn/s0/fgsm.tsv", None),  # no benchmark file
        f"attacks/digits/snn/s0/{long_attack}.json": ("attack", ["models/digits/snn/s0/model.pt"],
                                                      f"bench/attack/digits/snn/s0/{long_attack}.tsv", 3.0),
        "attacks/digits/ann/s0/pgd.json": ("attack", ["data/digits.npz", "models/digits/ann/s0/model.pt"],
                                           "bench/attack/digits/ann/s0/pgd.tsv", 20.0),
        "pages/sr.html": ("page", ["attacks/digits/snn/s0/pgd.json", "attacks/digits/snn/s0/fgsm.json",
                                   "attacks/digits/ann/s0/pgd.json", "models/digits/snn/s0/run.json"],
                          "bench/page/sr.tsv", 1.0),
        "pages/trail.html": ("page", [f"attacks/digits/snn/s0/{long_attack}.json"], "bench/page/trail.tsv", 2.0),
        "pages/overview.html": ("overview", ["pages/sr.html", "pages/trail.html"], "bench/page/overview.tsv", 0.5),
    }
    for output, (rule, inputs, bench_path, seconds) in jobs.items():
        record(meta, output, rule, inputs)
        if seconds is not None:
            bench(Path(bench_path), seconds, cpu=seconds * 0.9)
    record(meta, "models/digits/snn/s0/run.json", "train", ["data/digits.npz"])  # the train job's second output
    bench(Path("bench/train/digits/old_model/s0.tsv"), 999.0)  # an older config's job: not this run's
    spec = {"benchmarks": "bench", "metadata": "meta", "rules": rule_spec(),
            "studies": {"sr": ["pages/sr.html"], "trail": ["pages/trail.html"]}, "summaries": ["pages/overview.html"]}
    return spec, long_attack


def test_critical_path_is_the_longest_chain_of_a_known_dag():
    seconds = {"data": 1.0, "a": 10.0, "b": 30.0, "x": 5.0, "y": 2.0, "t": 4.0, "table": 1.0, "nan": math.nan}
    deps = {"a": {"data"}, "b": {"data"}, "x": {"a", "data"}, "y": {"b"}, "t": {"a", "b"}, "table": {"x", "y", "t"},
            "nan": {"table"}}
    chain, total = critical_path(seconds, deps)
    assert chain == ["data", "b", "t", "table", "nan"] and total == 36.0  # not data→b→y→table (34)
    # the longest chain need not hold the slowest single job
    chain, total = critical_path({"big": 50.0, "s1": 20.0, "s2": 20.0, "s3": 20.0}, {"s2": {"s1"}, "s3": {"s2"}})
    assert chain == ["s1", "s2", "s3"] and total == 60.0
    assert critical_path({}, {}) == ([], 0.0)


def test_benchmark_reads_seconds_cpu_and_memory_and_averages_repeats(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text(HEADER + "10\t0:00:10\t100\t1\t1\t1\t0\t0\t0.5\t4\n20\t0:00:20\tNA\t1\t1\t1\t0\t0\tNA\tNA\n")
    got = read_benchmark(path)
    assert got == {"seconds": 15.0, "cpu_s": 4.0, "max_rss_mb": 100.0}


def test_fill_drops_inline_constraints():
    assert fill("bench/{a}/s{seed,\\d+}/{b,x{2}}.tsv", {"a": "A", "seed": "3", "b": "xx"}) == "bench/A/s3/xx.tsv"


def test_patterns_match_as_snakemake_reads_them():
    from snakemake.io import regex_from_filepattern

    for pattern, path, wildcards in [
        ("results/a/{d}/s{seed,\\d+}/{attack}_eps{eps}.json", "results/a/digits/s0/pgd10-steps5_eps0.03.json",
         {"d": "digits", "seed": "0", "attack": "pgd10-steps5", "eps": "0.03"}),
        ("t/{x}/{x}.txt", "t/a/a.txt", {"x": "a"}),
        ("pages/overview.html", "pages/overview.html", {}),
    ]:
        assert pattern_regex(pattern).match(path).groupdict() == wildcards
        assert re.match(regex_from_filepattern(pattern), path).groupdict() == wildcards  # as Snakemake does
    assert pattern_regex("t/{x}/{x}.txt").match("t/a/b.txt") is None
    assert pattern_regex("s{seed,\\d+}.tsv").match("sx.tsv") is None
    assert pattern_regex("pages/overview.html").match("pages/overviewXhtml") is None  # literals are escaped


def test_per_rule_per_study_slowest_and_critical_path(run):
    spec, long_attack = run
    t = compute(spec)
    jobs = t.jobs.set_index("job")
    assert len(jobs) == 10  # two outputs of one train job are one job; the old config's benchmark is not one
    assert t.other_benchmarks == 1 and t.missing_benchmarks == 1 and not t.unrecorded_targets
    assert math.isnan(jobs.loc["attack/digits/snn/s0/fgsm", "seconds"])
    assert set(jobs.loc["train/digits/snn/s0", "outputs"].split(";")) == {"models/digits/snn/s0/model.pt",
                                                                          "models/digits/snn/s0/run.json"}
    assert t.total_s == pytest.approx(2 + 30 + 10 + 5 + 3 + 20 + 1 + 2 + 0.5)
    assert list(t.jobs["job"][:3]) == ["train/digits/snn/s0", "attack/digits/ann/s0/pgd", "train/digits/ann/s0"]
    assert list(t.jobs["rank"]) == list(range(1, 11))

    rules = t.rules.set_index("rule")
    assert rules.loc["attack", "jobs"] == 4 and rules.loc["attack", "seconds"] == pytest.approx(28.0)
    assert rules.loc["attack", "no_benchmark"] == 1 and rules.loc["attack", "slowest_job"] == "attack/digits/ann/s0/pgd"
    assert rules.loc["train", "share_pct"] == pytest.approx(100 * 40 / t.total_s)
    assert t.rules["rule"].iloc[0] == "train"  # the rule taking the most first

    # shared jobs (prepare, train snn) are split in two; the overview belongs to no study
    studies = t.studies.set_index("study")
    assert studies.loc["sr", "attributed_s"] == pytest.approx(2 / 2 + 30 / 2 + 10 + 5 + 20 + 1)
    assert studies.loc["trail", "attributed_s"] == pytest.approx(2 / 2 + 30 / 2 + 3 + 2)
    assert studies.loc["sr", "alone_s"] == pytest.approx(2 + 30 + 10 + 5 + 20 + 1)
    assert studies.loc["trail", "own_s"] == pytest.approx(3 + 2)
    assert studies.loc[CROSS_STUDY, "attributed_s"] == pytest.approx(0.5)
    assert studies["attributed_s"].sum() == pytest.approx(t.total_s)
    shared = jobs.loc["train/digits/snn/s0"]
    assert shared["studies"] == "sr;trail" and shared["study_share"] == 0.5

    # critical path: prepare → train snn → attack snn pgd → page sr → overview (38.5 s), not through ann
    # (33.5 s) nor through trail (37.5 s)
    assert list(t.critical_path["job"]) == ["prepare/digits", "train/digits/snn/s0", "attack/digits/snn/s0/pgd",
                                            "page/sr", "page/overview"]
    assert t.critical_s == pytest.approx(38.5) and t.critical_path["cumulative_s"].iloc[-1] == pytest.approx(38.5)
    assert jobs.loc["page/sr", "critical_path_step"] == 4
    assert pd.isna(jobs.loc["train/digits/ann/s0", "critical_path_step"])


def test_one_study_run_counts_only_its_jobs(run):
    spec, _ = run
    t = compute({**spec, "studies": {"trail": ["pages/trail.html"]}, "summaries": []})
    assert set(t.jobs["job"]) == {"prepare/digits", "train/digits/snn/s0", f"attack/digits/snn/s0/{run[1]}",
                                  "page/trail"}
    assert t.studies.set_index("study").loc["trail", "attributed_s"] == pytest.approx(t.total_s)
    assert t.other_benchmarks == 6  # the other study's and the overview's benchmarks, and the old config's


def test_targets_without_records_are_named_and_an_empty_run_renders(run):
    spec, _ = run
    from snnrobust.report.timing import render

    t = compute({**spec, "studies": {"sr": ["pages/sr.html", "pages/never-made.html"]}, "summaries": []})
    assert t.unrecorded_targets == ["pages/never-made.html"] and "never-made" in render(t)
    empty = compute({**spec, "metadata": "no-such-folder"})
    assert empty.jobs.empty and "nothing to time" in render(empty)


def test_records_that_contradict_each_other_give_no_critical_path(tmp_path, monkeypatch):
    """Two records, each naming the other's output as its input (left by runs of different workflows)."""
    from snnrobust.report.timing import render

    monkeypatch.chdir(tmp_path)
    record(Path("meta"), "pages/a.html", "page", ["pages/b.html"])
    record(Path("meta"), "pages/b.html", "page", ["pages/a.html"])
    bench(Path("bench/page/a.tsv"), 3.0)
    t = compute({"benchmarks": "bench", "metadata": "meta", "rules": rule_spec(),
                 "studies": {"a": ["pages/a.html"]}})
    assert t.cycle and t.critical_path.empty and t.total_s == 3.0
    assert "critical path cannot be given" in render(t)


def test_cli_writes_the_timing_section_and_tidy_csvs(run, tmp_path):
    spec, _ = run
    result = tmp_path / "attack.json"
    result.write_text(json.dumps({"rows": [{"seed": 0}], "kind": "attack",
                                  "provenance": {"seed": 0, "device": "cpu", "lock_sha256": "ab" * 32}}))
    prefix = tmp_path / "pages" / "about_timing_"
    run_cli("provenance", str(result), "--out-html", str(tmp_path / "about.html"), "--timing", json.dumps(spec),
            "--out-timing", str(prefix), cwd=tmp_path)
    page = (tmp_path / "about.html").read_text()
    for needle in ("Where the time goes", "Per rule", "Per study", "slowest jobs", "Critical path",
                   "train/digits/snn/s0", CROSS_STUDY):
        assert needle in page, needle
    jobs = pd.read_csv(f"{prefix}jobs.csv")
    assert list(jobs.columns[:4]) == ["rank", "job", "rule", "seconds"] and len(jobs) == 10
    assert pd.read_csv(f"{prefix}rules.csv")["seconds"].sum() == pytest.approx(73.5)
    assert pd.read_csv(f"{prefix}studies.csv")["attributed_s"].sum() == pytest.approx(73.5)
    assert pd.read_csv(f"{prefix}critical_path.csv")["job"].iloc[-1] == "page/overview"


def test_cli_timing_needs_a_json_spec_and_writes_nothing_without_it(tmp_path):
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"rows": [], "provenance": {}}))
    out = tmp_path / "about.html"
    for args, needle in ((["--timing", "{not json"], "--timing is not valid JSON"),
                         (["--out-timing", str(tmp_path / "t_")], "--out-timing needs --timing")):
        proc = run_cli("provenance", str(result), "--out-html", str(out), *args, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr
        assert not out.exists()


#: rule_patterns() of the pipeline (workflow/rules/common.smk), copied into a small Snakefile by the test below.
def _rule_patterns_source() -> str:
    text = (REPO / "workflow/rules/common.smk").read_text()
    match = re.search(r"^def rule_patterns\(\):\n(?:(?:    .*)?\n)+", text, re.M)
    assert match, "common.smk defines rule_patterns()"
    return match.group(0)


MINI = """
wildcard_constraints:
    seed=r"\\d+",

{rule_patterns}

rule prepare:
    output: "data/{{name}}.txt"
    benchmark: "results/benchmarks/prepare/{{name}}.tsv"
    shell: "echo {{wildcards.name}} > {{output}}"

rule train:
    input: "data/{{name}}.txt"
    output: "models/{{name}}/s{{seed}}/model.txt", "models/{{name}}/s{{seed}}/run.json"
    benchmark: "results/benchmarks/train/{{name}}/s{{seed}}.tsv"
    shell: "cat {{input}} > {{output[0]}}; echo ok > {{output[1]}}"

rule attack:
    input: model="models/{{name}}/s{{seed}}/model.txt", data="data/{{name}}.txt"
    output: "attacks/{{name}}/s{{seed}}/{{attack}}_eps{{eps}}.json"
    benchmark: "results/benchmarks/attack/{{name}}/s{{seed}}/{{attack}}_eps{{eps}}.tsv"
    shell: "cat {{input.model}} > {{output}}"

rule page:
    input: lambda wc: ["attacks/a/s0/pgd_eps0.03.json", "attacks/b/s1/fgsm_eps0.1.json"]
    output: "pages/sr.html"
    benchmark: "results/benchmarks/page/sr.tsv"
    params:
        spec=lambda wc: json.dumps({{"benchmarks": "results/benchmarks", "metadata": ".snakemake/metadata",
                                    "rules": rule_patterns(), "studies": {{"sr": ["pages/sr.html"]}}}}),
    shell: "echo {{params.spec:q}} > spec.json; touch {{output}}"
"""


def test_a_real_snakemake_run_gives_the_job_graph(tmp_path):
    """Snakemake's own records and benchmark files, and the workflow's rule_patterns(), join into the graph."""
    (tmp_path / "Snakefile").write_text("import json\n" + MINI.format(rule_patterns=_rule_patterns_source()))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-c1", "pages/sr.html"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spec = json.loads((tmp_path / "spec.json").read_text())
    seconds = {"prepare/a": 1, "prepare/b": 2, "train/a/s0": 10, "train/b/s1": 3, "attack/a/s0/pgd_eps0.03": 4,
               "attack/b/s1/fgsm_eps0.1": 20, "page/sr": 1}
    for name, s in seconds.items():  # known seconds in place of the measured ones (a few ms each)
        path = tmp_path / "results/benchmarks" / f"{name}.tsv"
        assert path.is_file(), name
        frame = pd.read_csv(path, sep="\t")
        frame["s"] = s
        frame.to_csv(path, sep="\t", index=False)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        t = compute(spec)
    finally:
        os.chdir(cwd)
    assert dict(zip(t.jobs["job"], t.jobs["seconds"])) == seconds
    assert list(t.critical_path["job"]) == ["prepare/b", "train/b/s1", "attack/b/s1/fgsm_eps0.1", "page/sr"]
    assert t.critical_s == 26 and t.other_benchmarks == 0 and t.missing_benchmarks == 0


def _dry_run(seed: str) -> tuple[str, dict]:
    """Dry run of the default config (Python's hash seed fixed): its printout and the about job's timing spec."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1",
                           "--configfile", "config/default.yaml"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": seed})
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    about = [line for line in text.splitlines() if "snnrobust provenance" in line and "--out-html results/pages/about"
             in line and "--timing" in line]
    assert about, "the all-studies about job gets a timing spec"
    words = shlex.split(about[0])
    return text, json.loads(words[words.index("--timing") + 1])


def test_the_pipelines_rule_patterns_find_every_jobs_benchmark():
    """Dry run of the default config: every planned job's printed output leads to its printed benchmark file,
    through the patterns the about job receives; and the spec is the same in another process (a param that
    changed between runs would rerun the about job every time)."""
    text, spec = _dry_run("1")
    assert _dry_run("2")[1] == spec
    blocks = re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", text, re.M)
    checked = set()
    for rule, body in blocks:
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.M))
        if "benchmark" not in fields:
            continue
        output = re.sub(r" \(.*\)$", "", fields["output"].split(", ")[0])  # drop flags: "(update)"
        _, found = _job_of(output, {"rule": rule}, spec["rules"], Path(spec["benchmarks"]))
        assert found == fields["benchmark"], (rule, output)
        checked.add(rule)
    assert {"prepare_data", "train", "attack", "analyze", "table", "figure", "page", "about"} <= checked, checked
    assert spec["studies"] and all(spec["studies"].values())
