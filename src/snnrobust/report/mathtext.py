"""Text with ``$...$`` TeX → HTML with MathML, for the report's captions, claim texts and notes.

Browsers draw MathML Core natively (Chromium since 109, Firefox, Safari), so a page needs no JavaScript, no
network and no vendored math bundle: latex2mathml turns each formula into a ``<math>`` element when the page is
written. ``\\$`` is a literal dollar sign; a formula latex2mathml cannot convert stays as its TeX in a ``<code>``
element, so a bad caption never stops a page from being written.
"""

from __future__ import annotations

import html
import re

#: A literal dollar (``\\$``), or an inline formula: ``$`` + escaped characters or anything but ``$`` + ``$``.
_TOKEN = re.compile(r"\\\$|\$((?:\\.|[^$\\])+)\$", re.S)


def formula(tex: str) -> str:
    """One TeX formula as inline MathML; its escaped TeX in ``<code class="tex">`` when it does not convert."""
    try:
        from latex2mathml.converter import convert

        return convert(tex.strip(), display="inline")
    except Exception:  # latex2mathml raises many exception types (and IndexError etc.) on malformed input
        return f'<code class="tex">{html.escape(tex)}</code>'


def to_html(text: object) -> str:
    """``text`` escaped for HTML, each ``$...$`` turned into MathML and each ``\\$`` into a dollar sign."""
    text = str(text)
    out, end = [], 0
    for match in _TOKEN.finditer(text):
        out.append(html.escape(text[end:match.start()]))
        out.append("$" if match.group(1) is None else formula(match.group(1)))
        end = match.end()
    out.append(html.escape(text[end:]))
    return "".join(out)


__all__ = ["formula", "to_html"]
