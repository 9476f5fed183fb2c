"""``$...$`` TeX in the report's captions, claim texts and notes becomes MathML (snnrobust.report.mathtext): every
text of the paper-values files converts, ``\\$`` stays a dollar sign, and a malformed formula keeps its TeX in a
``<code>`` element instead of failing the page."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from snnrobust.report.mathtext import to_html
from snnrobust.report.paper_values import list_papers, paper_document


def _texts() -> list[tuple[str, str]]:
    """(where, text) of every caption, note and claim text of every paper-values file."""
    out = []
    for paper in list_papers():
        doc = paper_document(paper)
        for kind in ("tables", "figures"):
            for slot, meta in (doc.get(kind) or {}).items():
                out.append((f"{slot} caption", meta["caption"]))
                out += [(f"{slot} note {i}", str(n)) for i, n in enumerate(meta.get("notes") or [])]
        out += [(f"{paper} claim {c['id']}", c["text"]) for c in doc.get("claims") or []]
    return out


def test_every_paper_text_converts_without_leftover_tex():
    texts = _texts()
    assert sum("$" in t for _, t in texts) >= 2, "the Spiking-PGD captions carry TeX"
    for where, text in texts:
        out = to_html(text)
        assert "$" not in out and 'class="tex"' not in out, f"{where}: {out}"
        assert out.count("<math") == text.count("$") // 2, where


def test_formula_is_inline_mathml_and_well_formed():
    out = to_html(r"Table 1: change $\|\mathbf{a}_t - \mathbf{a}_{t-1}\|/\|\mathbf{a}_t\|$ for <ResNet-18> & co.")
    assert out.startswith("Table 1: change <math") and out.endswith(" for &lt;ResNet-18&gt; &amp; co.")
    math = re.search(r"<math.*</math>", out).group(0)
    element = ElementTree.fromstring(math)  # the MathML is well-formed XML
    assert element.get("display") == "inline" and "<msub>" in math


def test_escaped_dollar_stays_a_dollar_sign():
    assert to_html(r"costs \$5 and \$6") == "costs $5 and $6"
    out = to_html(r"price \$5 and $x^2$")
    assert out.startswith("price $5 and <math") and out.count("<math") == 1
    assert to_html("a single $ sign") == "a single $ sign"


@pytest.mark.parametrize("tex", [r"x^", r"\left( x", r"x_1_2", r"\frac", r"\begin{matrix} a < b"])
def test_malformed_formula_keeps_its_tex_in_code(tex):
    out = to_html(f"before ${tex}$ after <b>")
    assert out.startswith("before <code") and out.endswith(" after &lt;b&gt;")
    assert re.search(r'<code class="tex">(.*)</code>', out).group(1) == tex.replace("<", "&lt;")
    assert "<math" not in out
