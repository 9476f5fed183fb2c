"""The report renders in a real browser: headless Chromium opens a Snakemake report holding one page per paper,
the overview, the about page and a figure, runs its JavaScript, and the dumped DOM and screenshots show each page,
a paper-vs-reproduced table and a figure; every page fits a 1400 px window, its images decode and its TeX is
MathML. The report comes from ``results/report.html`` when the default pipeline has made one, else from a small
Snakemake run (result files → ``page``, ``overview``, ``provenance`` and ``figure`` verbs → ``snakemake --report``)
in a temp dir. Screenshots of every page are kept in ``$SNNROBUST_TEST_ARTIFACTS/screenshots`` (default:
``test-artifacts/screenshots`` in the repository).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from snnrobust.report.paper_values import list_papers, paper_document

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--run-all-compositor-stages-before-draw"]
#: The window width every page must fit (no horizontal scrolling).
WIDTH = 1400
#: Where the screenshots of every page go (a CI job may collect the folder).
ARTIFACTS = Path(os.environ.get("SNNROBUST_TEST_ARTIFACTS") or REPO / "test-artifacts")
STUDY_SPECS = {
    "sr": {"paper": "sr", "slots": {"sr_table3": "attacks", "sr_figure4": "grad_norms"},
           "method_map": {"vanilla": "Vanilla"}, "attack_map": {"fgsm": "FGSM", "pgd": "PGD"},
           "attack_keys": {"fgsm": {"ensemble": False}, "pgd": {"ensemble": True}}},
    "sparsity_trail": {"paper": "sparsity_trail", "slots": {"sparsity_trail_table2": "attacks",
                                                            "sparsity_trail_figure3": "grad_norms"},
                       "method_map": {"vanilla": "Vanilla"}, "attack_map": {"fgsm": "FGSM", "pgd": "PGD"},
                       "attack_keys": {"fgsm": {"ensemble": False}, "pgd": {"ensemble": False}}},
    "spiking_pgd": {"paper": "spiking_pgd", "slots": {"spiking_pgd_figure5": "attacks"},
                    "attack_map": {"fgsm": "I-FGSM", "pgd": "PGD"}},
}
SNAKEFILE = '''
import glob, json
SPECS = json.loads(open("specs.json").read())
SUMMARIES = ["pages/overview.html", "figures/grad_norms.png"]
BUILT = [*expand("pages/{study}.html", study=SPECS), "tables/sr_table3.html", *SUMMARIES]
TIMING = {"benchmarks": "benchmarks", "metadata": ".snakemake/metadata",
          "rules": {"page": {"outputs": ["pages/{study}.html", "pages/{study}_claims.csv", "pages/{study}_coverage.csv"],
                             "benchmark": "benchmarks/page/{study}.tsv"},
                    "overview": {"outputs": ["pages/overview.html", "pages/overview_claims.csv"],
                                 "benchmark": "benchmarks/overview.tsv"},
                    "figure": {"outputs": ["figures/grad_norms.png"], "benchmark": "benchmarks/figure.tsv"},
                    "table": {"outputs": ["tables/sr_table3.csv", "tables/sr_table3.html"],
                              "benchmark": "benchmarks/table/sr_table3.tsv"}},
          "studies": {s: [f"pages/{s}.html", *(["tables/sr_table3.html"] if s == "sr" else [])] for s in SPECS},
          "summaries": SUMMARIES}
rule all:
    input: BUILT, "pages/about.html"
rule page:
    input: attacks=["results/fgsm.json", "results/pgd.json"], analyses=["results/grads.json"]
    output:
        html=report("pages/{study}.html", category="Papers", labels={"paper": "{study}"}),
        csv="pages/{study}_claims.csv",
        coverage="pages/{study}_coverage.csv"
    params: spec=lambda wc: json.dumps(SPECS[wc.study])
    benchmark: "benchmarks/page/{study}.tsv"
    shell: "python -m snnrobust page --study {wildcards.study} --attacks {input.attacks} --analyses {input.analyses}"
           " --spec {params.spec:q} --out {output.html} --out-csv {output.csv} --out-coverage {output.coverage}"
rule overview:
    input: coverage=expand("pages/{study}_coverage.csv", study=SPECS), claims=expand("pages/{study}_claims.csv", study=SPECS)
    output:
        html=report("pages/overview.html", category="0. Overview", labels={"page": "overview"}),
        csv="pages/overview_claims.csv"
    benchmark: "benchmarks/overview.tsv"
    shell: "python -m snnrobust overview --coverage {input.coverage} --claims {input.claims} --scale test"
           " --out {output.html} --out-csv {output.csv}"
rule figure:
    input: "results/grads.json"
    output: report("figures/grad_norms.png", category="Figures", labels={"figure": "grad_norms"})
    benchmark: "benchmarks/figure.tsv"
    shell: "python -m snnrobust figure --inputs {input} --spec '{{\\"kind\\": \\"grad_norms\\"}}' --out {output}"
rule table:
    input: ["results/fgsm.json", "results/pgd.json"]
    output:
        csv="tables/sr_table3.csv",
        html=report("tables/sr_table3.html", category="Tables", labels={"table": "sr_table3"})
    params: spec=lambda wc: json.dumps({**SPECS["sr"], "kind": "attacks", "paper_table": "sr_table3"})
    benchmark: "benchmarks/table/sr_table3.tsv"
    shell: "python -m snnrobust table --inputs {input} --spec {params.spec:q} --out {output.csv} --out-html {output.html}"
rule about:
    input: results=sorted(glob.glob("results/**/*.json", recursive=True)), targets=BUILT
    output:
        html=report("pages/about.html", category="0. About this run", labels={"page": "provenance"}),
        csv="pages/about_provenance.csv",
        timing=multiext("pages/about_timing_", "jobs.csv", "rules.csv", "studies.csv", "critical_path.csv")
    params: timing=lambda wc: json.dumps(TIMING)
    shell: "python -m snnrobust provenance {input.results} --out-html {output.html} --out-csv {output.csv}"
           " --timing {params.timing:q} --out-timing pages/about_timing_"
'''


def _spec(study: str) -> dict:
    common = {"study": study, "scale": "test", "dataset_names": {"digits": "CIFAR-10"},
              "stand_ins": {"digits": "CIFAR-10"}, "stand_in_models": ["tiny"], "model_keys": {"tiny": {"pooling": "max"}}}
    arch = {"sr": "WRN-16", "sparsity_trail": "SEW-ResNet18", "spiking_pgd": "ResNet-18"}[study]
    return {**common, **STUDY_SPECS[study], "arch_map": {"tiny": arch}}


def _provenance(name: str) -> dict:
    """What the pipeline records in a result file (this checkout's commit, packages, lock hash, host)."""
    from snnrobust.provenance import config_hash, provenance

    record = provenance({"seed": 0, "device": "cpu", "attack": name})
    return {**record, "config_hash": record["config_hash"] or config_hash({"scale": "test"})}


def _write_results(folder: Path) -> None:
    """Attack and gradient results for the pages, each with its provenance, and a transfer result at a path as
    long as the pipeline's (the about page lists every file)."""
    folder.mkdir(parents=True)
    for attack, steps, robust in (("fgsm", 1, 40.0), ("pgd", 7, 20.0)):
        for eps in (2, 8):
            row = dict(dataset="digits", model="tiny", method="vanilla", seed=0, attack=attack, eps=eps / 255,
                       eps_255=eps, steps=steps, threat="white-box", clean_acc=95.0, robust_acc=robust + 8 - eps,
                       n=64, wall_s=1.0, forward_passes=steps, backward_passes=steps)
            path = folder / f"{attack}.json"
            rows = json.loads(path.read_text())["rows"] if path.exists() else []
            path.write_text(json.dumps({"kind": "attack", "rows": rows + [row], "provenance": _provenance(attack)}))
    (folder / "grads.json").write_text(json.dumps({"rows": [
        dict(dataset="digits", model="tiny", method="vanilla", seed=0, statistic=s, mean=v, std=0.1, n=64, zero_tol=0)
        for s, v in (("l0_fraction", 0.6), ("l1", 30.0), ("l2", 2.0))], "provenance": _provenance("grads")}))
    transfer = folder / "transfer/digits/sew_resnet18_maxpool/vanilla/s0/from/spiking_resnet18_avgpool/vanilla/s1"
    transfer.mkdir(parents=True)
    (transfer / "ens_apgd10_released_eps8.json").write_text(json.dumps({"kind": "attack", "rows": [
        {**row, "attack": "ens_apgd10_released", "threat": "black-box"}], "provenance": _provenance("transfer")}))


def _snakemake_report(tmp: Path) -> Path:
    """A report holding one page per paper, the overview, the about page, a table page and a figure, made by
    Snakemake from small result files."""
    work = tmp / "wf"
    _write_results(work / "results")
    (work / "specs.json").write_text(json.dumps({s: _spec(s) for s in STUDY_SPECS}))
    (work / "Snakefile").write_text(SNAKEFILE)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet", "all"]
    for extra in ([], ["--report", "report.html"]):
        proc = subprocess.run(snakemake + extra, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "report.html"


def _chromium(*args: str, timeout: int = 180) -> str:
    assert CHROMIUM, "headless Chromium is needed: apt-get install chromium (.ci/run installs it)"
    budget = [] if any(a.startswith("--virtual-time-budget") for a in args) else ["--virtual-time-budget=15000"]
    proc = subprocess.run([CHROMIUM, *FLAGS, *budget, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _probe(page: Path, *flags: str, tries: int = 3) -> str:
    """The text a probe page's script writes into ``<pre id="out">``; the browser is asked again (with more
    virtual time) while the script has not finished, as image decoding runs outside virtual time."""
    for attempt in range(tries):
        dom = _chromium(*flags, f"--virtual-time-budget={15000 * (attempt + 1)}", "--dump-dom", page.as_uri())
        shown = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)
        if shown != "waiting":
            return shown
    raise AssertionError(f"the probe script in {page} never finished")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    made = REPO / "results" / "report.html"
    if made.is_file() and (REPO / "results" / "pages").is_dir():
        return made
    return _snakemake_report(tmp_path_factory.mktemp("report"))


#: Opens the report in a frame, follows each click path through its navigation (category, subcategory) and
#: prints what the app then shows, one block per path.
PROBE = """<html><body><pre id="out">waiting</pre><iframe id="r" src="{report}" width="1400" height="900"></iframe>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
const click = (doc, text) => {{
  const el = Array.from(doc.querySelectorAll("a, li, span, div, p, button")).reverse()
    .find(e => e.textContent.trim() === text);
  if (el) el.click();
  return !!el;
}};
window.onload = async () => {{
  const doc = document.getElementById("r").contentDocument;
  await sleep(2000);
  const out = [];
  for (const path of {paths}) {{
    click(doc, "Results"); await sleep(500);
    for (const step of path) {{ click(doc, step); await sleep(1000); }}
    out.push(doc.body.innerText.replace(/\\s+/g, " "));
  }}
  document.getElementById("out").textContent = out.join(" || ");
}};
</script></body></html>"""


def _layout(report: Path) -> dict[str, dict[str, list[str]]]:
    """Category → subcategory → result paths, as the report declares them to its app."""
    text = report.read_text(encoding="utf-8", errors="replace")
    return json.loads(re.search(r"var categories = (\{.*?\});\s*</script>", text, re.S).group(1))


def _click_paths(report: Path) -> list[tuple[list[str], list[str]]]:
    """(clicks, names expected on screen): where each paper page and overview sits (the report names them by
    their file; the about page goes by its label, provenance), and where the first figure sits."""
    paths, figure_seen = [], False
    for category, subs in _layout(report).items():
        for sub, items in subs.items():
            clicks = [category] + ([sub] if sub != "Other" else [])
            named = [m.group(1) for item in items if (m := re.search(r"pages/(\w+)\.html$", item))]
            pages = [name for name in named if name in (*list_papers(), "overview")]
            if pages:
                paths.append((clicks, pages))
            figures = [Path(item).stem for item in items if item.endswith(".png")]
            if figures and not figure_seen:
                paths.append((clicks, figures[:1]))
                figure_seen = True
    return paths


def test_report_app_lists_every_paper_page_and_a_figure(report, tmp_path):
    paths = _click_paths(report)
    listed = {name for _, names in paths for name in names}
    assert set(list_papers()) <= listed and any(not n in list_papers() for n in listed), paths
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE.format(report=report.as_uri(), paths=json.dumps([clicks for clicks, _ in paths])))
    shown = _probe(probe, "--allow-file-access-from-files").split(" || ")
    assert len(shown) == len(paths), shown
    for (clicks, names), screen in zip(paths, shown):
        for name in names:
            assert re.search(rf"\b{re.escape(name)}\b", screen), f"after {clicks}, {name} is not shown: {screen[:300]}"
    shot = tmp_path / "report.png"
    _chromium("--allow-file-access-from-files", f"--screenshot={shot}", "--window-size=1500,1000", probe.as_uri())
    assert shot.stat().st_size > 10_000


def _embedded(report: Path) -> list[str]:
    """Every HTML page the report embeds (as data URIs in its JavaScript), decoded, once each, in its order."""
    text = report.read_text(encoding="utf-8", errors="replace")
    found = re.finditer(r"data:text/html;(?:[a-z]+=[^;,\"]*;)*base64,([A-Za-z0-9+/=]+)", text)
    return list(dict.fromkeys(base64.b64decode(m.group(1)).decode("utf-8", errors="replace") for m in found))


def _title(page: str) -> str:
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    return html.unescape(title.group(1)).strip() if title else "untitled"


def _pages(report: Path) -> dict[str, str]:
    """The per-paper pages and the overview the report embeds, by title."""
    return {_title(page): page for page in _embedded(report) if 'class="coverage"' in page}


def _paper_pages(report: Path) -> dict[str, str]:
    return {title: page for title, page in _pages(report).items() if title != "Overview"}


def test_first_page_lists_every_table_figure_and_claim_of_the_three_papers(report, tmp_path):
    """The overview (the report's first category) shows each paper's slots and claims with their status."""
    from snnrobust.report.claims import load_claims
    from snnrobust.report.paper_values import list_slots

    overview = _pages(report).get("Overview")
    assert overview is not None, "the report has no overview page"
    path = tmp_path / "overview.html"
    path.write_text(overview, encoding="utf-8")
    dom = _chromium("--dump-dom", path.as_uri())
    for paper in list_papers():
        assert all(f"<td>{slot['id']}</td>" in dom for slot in list_slots(paper)), paper
        assert all(f"<td>{claim.id}</td>" in dom for claim in load_claims(paper)), paper
    # every claim's row carries one of our verdicts (the page also counts them and shows the paper's own)
    claim_ids = {claim.id for p in list_papers() for claim in load_claims(p)}
    rows = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", dom, flags=re.S) if any(f"<td>{c}</td>" in r for c in claim_ids)]
    assert {c for c in claim_ids if any(f"<td>{c}</td>" in r for r in rows)} == claim_ids
    assert all(re.search(r"<td>(holds|fails|within noise|not yet run)</td>", r) for r in rows)
    shot = tmp_path / "overview.png"
    _chromium(f"--screenshot={shot}", "--window-size=1400,2000", path.as_uri())
    assert shot.stat().st_size > 10_000


def test_each_paper_page_renders_its_table_and_figure(report, tmp_path):
    pages = _paper_pages(report)
    assert len(pages) == len(list_papers()), f"pages found in the report: {sorted(pages)}"
    for i, page in enumerate(pages.values()):
        path = tmp_path / f"page{i}.html"
        path.write_text(page, encoding="utf-8")
        dom = _chromium("--dump-dom", path.as_uri())
        assert re.search(r"\d+ of \d+ tables/figures reproduced", dom)
        assert 'class="claims-table"' in dom and re.search(r"<td>(holds|fails|not yet run)</td>", dom)
        assert 'class="coverage-table"' in dom
        shot = tmp_path / f"page{i}.png"
        _chromium(f"--screenshot={shot}", "--window-size=1400,2000", path.as_uri())
        assert shot.stat().st_size > 10_000
    assert any('class="paper-vs-reproduced"' in p for p in pages.values())


def test_figures_decode_in_the_browser(report, tmp_path):
    """Every figure of the report (inline in the pages or registered by the report) is a PNG the browser loads
    to a real size (checked by a script once the window's load event has fired)."""
    pages = _pages(report)
    images = [m for p in pages.values() for m in re.findall(r'src="(data:image/png;base64,[^"]+)"', p)]
    # the seaborn figures the report registers itself (data URIs inside its app)
    text = report.read_text(encoding="utf-8", errors="replace")
    images += [f"data:image/png;base64,{m}" for m in
               re.findall(r"data:image/png;(?:[a-z]+=[^;,\"']*;)*base64,([A-Za-z0-9+/=]+)", text)]
    assert images, "the report holds no figure"
    probe = tmp_path / "probe.html"
    tags = "".join(f'<img src="{src}">' for src in images)
    probe.write_text(f"<html><body>{tags}<pre id=out>waiting</pre><script>"
                     "window.addEventListener('load', () => {"
                     "document.getElementById('out').textContent = Array.from(document.images)"
                     ".map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' ');});</script></body></html>")
    sizes = _probe(probe).split()
    assert len(sizes) == len(images) and all(int(s.split("x")[0]) > 100 for s in sizes), sizes


#: Injected before a page's ``</body>``: once the page has loaded (its images with it), it measures the page
#: in the window and writes what it found (JSON) into ``<pre id="out">``.
FIT_PROBE = """<pre id="out">waiting</pre><script>
window.addEventListener("load", () => {
  const root = document.documentElement, width = window.innerWidth;
  const name = e => e.tagName.toLowerCase() + (e.getAttribute("class") ? "." + e.getAttribute("class") : "");
  const wide = Array.from(document.body.querySelectorAll("*"))
    .filter(e => e.getBoundingClientRect().right > width + 0.5).slice(0, 4)
    .map(e => name(e) + " " + Math.round(e.getBoundingClientRect().width) + "px");
  const found = {scrollWidth: root.scrollWidth, innerWidth: width, height: root.scrollHeight, wide: wide,
    images: Array.from(document.images, i => i.complete && i.naturalWidth > 0),
    math: Array.from(document.querySelectorAll("math"), m => m.getBoundingClientRect().width),
    tex: (document.body.innerText.match(/\\$[^$\\n]+\\$/g) || []).slice(0, 3)};
  document.getElementById("out").textContent = JSON.stringify(found);
});
</script>"""


def _slug(page: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _title(page).lower()).strip("-")[:60]


def _report_pages(report: Path) -> list[tuple[str, str]]:
    """(name, page) of every HTML page in the report; the name (``03-about-this-run``) numbers it in the report's
    order, as pages may share a title (each study's own overview)."""
    return [(f"{i:02d}-{_slug(page)}", page) for i, page in enumerate(_embedded(report))]


def _with_probe(page: str) -> str:
    head, body, tail = page.rpartition("</body>")
    return f"{head}{FIT_PROBE}{body}{tail}" if body else page + FIT_PROBE


def _fit_problems(name: str, found: dict) -> list[str]:
    """What is wrong with one page in the window: wider than it, an image not decoded, TeX left as text."""
    problems = []
    if found["scrollWidth"] > found["innerWidth"]:
        problems.append(f"{name}: {found['scrollWidth']} px wide in a {found['innerWidth']} px window "
                        f"(too wide: {'; '.join(found['wide'])})")
    if not all(found["images"]):
        problems.append(f"{name}: {found['images'].count(False)} of {len(found['images'])} images did not decode")
    if found["tex"] or not all(w > 0 for w in found["math"]):
        problems.append(f"{name}: TeX left as text {found['tex']} or MathML drawn empty {found['math']}")
    return problems


def test_every_page_fits_a_1400px_window_with_its_images_and_math(report, tmp_path):
    """Each page of the report (paper pages, overview, about pages: whatever it holds), opened on its own in a
    1400 px window: no horizontal scrolling, every image decoded, no ``$...$`` left as text (it is MathML, which
    the browser draws). A screenshot of each page is kept in ARTIFACTS/screenshots."""
    pages = _report_pages(report)
    titles = {_title(page) for _, page in pages}
    expected = {paper_document(p)["paper"]["title"] for p in list_papers()} | {"Overview", "About this run"}
    assert expected <= titles, f"pages missing from the report: {sorted(expected - titles)}"
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems, math = [], 0
    for name, page in pages:
        path, probe = tmp_path / f"{name}.html", tmp_path / f"{name}.probe.html"
        path.write_text(page, encoding="utf-8")
        probe.write_text(_with_probe(page), encoding="utf-8")
        found = json.loads(html.unescape(_probe(probe, f"--window-size={WIDTH},900")))
        problems += _fit_problems(name, found)
        math += len(found["math"])
        height = min(max(int(found["height"]), 900), 8000)
        _chromium(f"--screenshot={shots / name}.png", f"--window-size={WIDTH},{height}", path.as_uri())
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
    assert not problems, "\n".join(problems)
    assert math, "no page shows MathML (the Spiking-PGD captions carry TeX)"
