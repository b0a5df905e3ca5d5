"""TeX math as MathML, written into a page when it is generated (issue #15).

nbgrader's feedback page typesets ``$…$`` with MathJax from a CDN. Offline nothing renders, and
JupyterLab's HTML viewer, where students usually open the page, runs no script anyway (its
iframe is sandboxed until the reader clicks "Trust HTML"). So the feedback exporter's markdown
renderer writes the math as MathML, which Chromium, Firefox and Safari lay out without any
script: :func:`markdown_html` renders a cell's markdown as nbconvert does (its
``MarkdownWithMath`` parser, so ``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]`` and LaTeX
environments are found exactly where nbconvert finds them, never inside code), cleans the
HTML with the caller's cleaner, and only then puts the MathML in.

The MathML never goes through the cleaner and a student's own ``<math>`` never gets past it.
The renderer leaves placeholder elements whose names hold a random token (the student cannot
write them), the cleaner is told to keep those elements, and the placeholders are replaced by
MathML that :func:`tex_to_mathml` serialises itself from latex2mathml's element tree: only the
elements and attributes of :data:`MATHML_TAGS` and :data:`MATHML_ATTRIBUTES` (no ``href``, no
``style``, no ``annotation-xml``), all text and attribute values escaped. latex2mathml's own
string output is not used: it un-escapes its XML, so ``\\text{<script>}`` would come out as a tag.
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Callable

from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

# What latex2mathml 3.8x builds (its converter and command tables), minus nothing: none of these
# holds HTML content of its own (mtext's text is escaped like every other text).
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "mtext", "ms", "mspace", "msub", "msup", "msubsup", "mfrac",
    "msqrt", "mroot", "munder", "mover", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded",
    "mphantom", "menclose"})
# Presentation attributes; none takes a URL or CSS. (latex2mathml's \href and \style become
# href= and style=: dropped, the math is kept.)
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "mathsize", "mathcolor", "mathbackground", "stretchy", "fence",
    "separator", "form", "lspace", "rspace", "accent", "accentunder", "linethickness", "width",
    "height", "depth", "voffset", "displaystyle", "scriptlevel", "minsize", "maxsize",
    "movablelimits", "symmetric", "largeop", "notation", "columnalign", "columnspacing",
    "columnlines", "rowalign", "rowspacing", "rowlines", "frame", "framespacing", "linebreak"})
# Their values are keywords, lengths and colours ("true", "0em 2em", "#ff0000"): anything else
# (\color{red" onclick="...}) is dropped, though escaping alone would keep it an inert value.
ATTRIBUTE_VALUE_RE = re.compile(r"[\w#.%+\- ]{0,64}\Z")
MAX_TEX_CHARS = 5000  # a longer formula is shown as TeX source (latex2mathml is recursive)


def _escape_text(text: str | None) -> str:
    # latex2mathml stores symbols as character references ("&#x02202;") in element text, next
    # to the student's literal characters: decode both, then escape everything.
    return html.escape(html.unescape(text), quote=False) if text else ""


def _serialise(element, out: list[str]) -> None:
    tag = element.tag.rpartition("}")[2]
    if tag not in MATHML_TAGS:
        raise ValueError(f"unexpected MathML element {tag!r}")
    attrs = "".join(f' {name}="{html.escape(str(value), quote=True)}"'
                    for name, value in element.attrib.items()
                    if name in MATHML_ATTRIBUTES and ATTRIBUTE_VALUE_RE.match(str(value)))
    out.append(f"<{tag}{attrs}>{_escape_text(element.text)}")
    for child in element:
        _serialise(child, out)
        out.append(_escape_text(child.tail))
    out.append(f"</{tag}>")


def tex_to_mathml(tex: str, display: bool = False) -> str | None:
    """``tex`` (without delimiters) as a ``<math>`` element, or None if latex2mathml cannot
    convert it (the caller then shows the TeX source)."""
    from latex2mathml.converter import Converter

    if len(tex) > MAX_TEX_CHARS:
        return None
    try:
        root = Converter(display="block" if display else "inline").convert_to_element(tex)
        out: list[str] = []
        _serialise(root, out)
    except Exception:  # noqa: BLE001 - malformed TeX raises many kinds (and RecursionError)
        return None
    return "".join(out)


def tex_source_html(source: str) -> str:
    """Math that could not be converted: its TeX source, as code."""
    return f'<code class="dlc-tex">{html.escape(source, quote=False)}</code>'


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with math as placeholders for MathML (see the module's
    docstring); ``self.math`` holds the MathML of placeholder ``i``."""

    def __init__(self, placeholder: str, **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.math: list[str] = []

    def _math(self, tex: str, display: bool, source: str) -> str:
        mathml = tex_to_mathml(tex, display)
        if mathml is None:
            return tex_source_html(source)
        self.math.append(mathml)
        # Placeholder i is the element <placeholder-i>; its text, the TeX, is what an image's alt
        # text or a heading's anchor (which mistune makes from the text alone) show.
        tag = f"{self.placeholder}-{len(self.math) - 1}"
        return f"<{tag}>{html.escape(tex, quote=False)}</{tag}>"

    def inline_math(self, body: str) -> str:
        return self._math(body, False, f"${body}$")

    def block_math(self, body: str) -> str:
        return self._math(body, True, f"$${body}$$")

    def latex_environment(self, name: str, body: str) -> str:
        source = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        return self._math(source, True, source)


def markdown_html(source: str, clean: Callable[[str, set[str]], str], *, attachments: dict | None = None,
                  path: str = "", anchor_link_text: str = "¶") -> str:
    """``source`` (markdown) as HTML: rendered as nbconvert renders it, ``files/`` links
    stripped, cleaned by ``clean(html, extra_tags)`` (which must keep the extra tags it is
    given, without attributes: the placeholders), then math put in as MathML."""
    from nbconvert.filters.strings import strip_files_prefix

    placeholder = f"dlc-math-{secrets.token_hex(12)}"
    renderer = MathMLRenderer(placeholder, escape=False, attachments=attachments or {}, path=path,
                              anchor_link_text=anchor_link_text)
    rendered = strip_files_prefix(MarkdownWithMath(renderer=renderer).render(str(source)))
    cleaned = clean(rendered, {f"{placeholder}-{i}" for i in range(len(renderer.math))})
    # After cleaning, "<" only starts a real element (bleach escapes it in text and attribute
    # values), so this matches the renderer's placeholders and nothing a student wrote.
    return re.sub(rf"<({placeholder}-(\d+))>[^<]*</\1>", lambda m: renderer.math[int(m[2])], cleaned)


# One math expression as a whole output (IPython's display(Math(...)) gives text/latex).
LATEX_OUTPUT_RE = re.compile(r"\s*(?:\$\$(?P<b>.+?)\$\$|\$(?P<i>.+?)\$|\\\[(?P<b2>.+?)\\\]|\\\((?P<i2>.+?)\\\))\s*\Z",
                             re.S)


def latex_output_html(latex: str) -> str | None:
    """A ``text/latex`` output that is one formula, as MathML (display style); None otherwise."""
    m = LATEX_OUTPUT_RE.match(latex)
    tex = m and next(g for g in m.groups() if g is not None)
    return tex_to_mathml(tex, display=True) if tex else None
