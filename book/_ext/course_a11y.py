"""Accessibility fixes of the built site (WCAG 2 A/AA, checked by tests/test_accessibility.py
with axe-core), made when the HTML is written, so no script has to run in the reader's browser.

- The navigation's expand/collapse toggles. pydata-sphinx-theme puts a page's sub-pages in a
  ``<details>`` whose ``<summary>`` holds only a chevron icon: screen readers announce it as
  an unnamed control (axe ``summary-name``, on every page). Each such summary gets an
  ``aria-label`` naming the page whose sub-pages it shows.
- The colours of coloured outputs. Keras's ``model.summary()`` is a table drawn by rich, whose
  Jupyter display is HTML with the terminal's colours inline (``<span style="color:
  #00d7ff">``), designed for a black terminal: on the light code background most fall far
  below the 4.5:1 contrast WCAG AA asks of text (axe ``color-contrast``; #00d7ff is 1.57:1).
  When a page is written, each such colour of a text/html output becomes the same hue,
  darkened just enough to reach the contrast on light mode's background; in a ``<pre>``,
  which dark mode draws dark, it also gets a dark-mode variant (see readable_html).
- Text outputs with ANSI escapes (myst-nb's ``-Color-*`` classes) get the same treatment from a
  generated stylesheet, ``_static/course-a11y.css``, per colour mode: darkened on light mode's
  code background, lightened on dark mode's.
- The root ``index.html`` (a redirect to the book) as a complete HTML document.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

CSS_FILE = "course-a11y.css"
# WCAG 2 AA for normal-size text is 4.5:1; the margin absorbs rounding in the browser.
TARGET_CONTRAST = 4.6
# The backgrounds an output's text can sit on, from pydata-sphinx-theme 0.17 and myst-nb 1.4.
# Code cells and text outputs (div.highlight): --pst-color-surface (light #f3f4f5, dark
# #29313d) or myst-nb's stream background (light #fcfcfc, dark #2d2d2d).
CODE_BACKGROUNDS = {"light": ["#f3f4f5", "#fcfcfc"], "dark": ["#29313d", "#2d2d2d"]}
# HTML outputs (.text_html). Text in a <pre> (rich's tables) is on the code background of
# each mode. Other text is on the page (light mode, white) or, in dark mode, on the light box
# (--pst-color-text-base, #ced6dd) pydata-sphinx-theme draws HTML outputs in.
HTML_BACKGROUNDS = {"pre": {"light": ["#f3f4f5"], "dark": ["#29313d"]},
                    "text": ["#ffffff", "#ced6dd"]}

# The 16 named colours of myst-nb's mystnb.css and the xterm 256-colour palette (C0-C255).
NAMED = {"Black": "#3E424D", "Red": "#E75C58", "Green": "#00A250", "Yellow": "#DDB62B",
         "Blue": "#208FFB", "Magenta": "#D160C4", "Cyan": "#60C6C8", "White": "#C5C1B4"}


def xterm_palette() -> dict[int, str]:
    """The xterm 256-colour palette, as myst-nb's mystnb.css spells it."""
    base16 = ["#000000", "#800000", "#008000", "#808000", "#000080", "#800080", "#008080",
              "#c0c0c0", "#808080", "#ff0000", "#00ff00", "#ffff00", "#0000ff", "#ff00ff",
              "#00ffff", "#ffffff"]
    colours = dict(enumerate(base16))
    levels = [0, 95, 135, 175, 215, 255]
    for i in range(216):
        r, g, b = levels[i // 36], levels[i // 6 % 6], levels[i % 6]
        colours[16 + i] = f"#{r:02x}{g:02x}{b:02x}"
    for i in range(24):
        v = 8 + 10 * i
        colours[232 + i] = f"#{v:02x}{v:02x}{v:02x}"
    return colours


# --- Contrast (WCAG 2 relative luminance) ------------------------------------------------------

def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def luminance(hex_colour: str) -> float:
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in _rgb(hex_colour)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable(colour: str, backgrounds: list[str], target: float = TARGET_CONTRAST) -> str:
    """`colour`, mixed with black (light backgrounds) or white (dark ones) as little as reaches
    `target` contrast on each of `backgrounds`; unchanged if it already does."""
    def enough(c: str) -> bool:
        return all(contrast(c, bg) >= target for bg in backgrounds)

    if enough(colour):
        return colour
    light = [luminance(bg) > 0.18 for bg in backgrounds]
    if len(set(light)) != 1:
        raise ValueError(f"backgrounds both light and dark: {backgrounds}")
    towards = (0.0, 0.0, 0.0) if light[0] else (1.0, 1.0, 1.0)
    rgb = _rgb(colour)
    lo, hi = 0.0, 1.0
    for _ in range(30):  # bisect the mixing weight
        mid = (lo + hi) / 2
        if enough(_hex([c + (t - c) * mid for c, t in zip(rgb, towards)])):
            hi = mid
        else:
            lo = mid
    return _hex([c + (t - c) * hi for c, t in zip(rgb, towards)])


def _selectors(mode: str, name: str) -> str:
    # Pygments gives a token Color.Bold.C45 the classes "-Color -Color-Bold -Color-Bold-C45"
    # (and "-Color-C45 -Color-C45-BGC17" with a background): the foreground's name ends the
    # class list or is followed by a space. mystnb.css matches [class*=-C4], which also
    # matches -C45; these selectors match the one colour.
    scope = f'html[data-theme="{mode}"] div.highlight .-Color'
    return f'{scope}[class$="-{name}"], {scope}[class*="-{name} "]'


def ansi_css() -> str:
    """The stylesheet: every ANSI foreground colour, readable in both colour modes."""
    colours = {**NAMED, **{f"C{i}": c for i, c in xterm_palette().items()}}
    out = ["/* Generated by book/_ext/course_a11y.py: ANSI output colours with a WCAG AA",
           f"   contrast (>= {TARGET_CONTRAST}:1) on the code background of each colour mode. */"]
    for mode, backgrounds in CODE_BACKGROUNDS.items():
        for name, colour in colours.items():
            out.append(f"{_selectors(mode, name)} {{ color: {readable(colour, backgrounds)}; }}")
    out += ["/* HTML outputs: the dark-mode colour readable_html() gives text in a <pre>. */",
            f'html[data-theme="dark"] div.cell_output .text_html [style*="{DARK_VAR}:"] {{',
            f"  color: var({DARK_VAR}) !important;",
            f"  text-decoration-color: var({DARK_VAR}) !important;", "}"]
    return "\n".join(out) + "\n"


# --- Inline colours of HTML outputs -----------------------------------------------------------

_FOREGROUND = re.compile(r"(?<![\w-])((?:text-decoration-)?color\s*:\s*)(#[0-9a-fA-F]{6})\b")
DARK_VAR = "--course-dark-fg"


def readable_html(markup: str) -> str:
    """An HTML output with its inline text colours made readable in both colour modes.

    Text in a <pre> (rich's tables) sits on the code background, per mode; other text on
    the page (light mode) or on the light box dark mode draws HTML outputs in. An element
    inside one that sets a background of its own is left alone (that is what its text is
    read against). In a <pre>, the light-mode colour is written inline and the dark-mode
    one as the custom property DARK_VAR, which course-a11y.css applies in dark mode.
    Markup without an inline colour is returned unchanged, byte for byte.
    """
    if not _FOREGROUND.search(markup):
        return markup
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    changed = False
    for tag in soup.find_all(style=_FOREGROUND):
        chain = [tag, *tag.parents]
        if any("background" in (t.get("style") or "") for t in chain if t.name):
            continue
        style = tag["style"]
        in_pre = any(t.name == "pre" for t in chain)
        light = HTML_BACKGROUNDS["pre"]["light"] if in_pre else HTML_BACKGROUNDS["text"]
        new = _FOREGROUND.sub(lambda m: m.group(1) + readable(m.group(2), light), style)
        if in_pre:
            colour = _FOREGROUND.search(style).group(2)
            dark = readable(colour, HTML_BACKGROUNDS["pre"]["dark"])
            new = new.rstrip("; ") + f"; {DARK_VAR}: {dark}"
        if new != style:
            tag["style"], changed = new, True
    return str(soup) if changed else markup


def readable_outputs(app, doctree, docname):
    """Rewrite the text/html outputs of notebook cells (myst-nb's raw nodes) as they are written."""
    from docutils import nodes

    for raw in list(doctree.findall(nodes.raw)):
        if "html" not in raw.get("format", "").split() or "text_html" not in raw["classes"]:
            continue
        text = raw.astext()
        new = readable_html(text)
        if new != text:
            raw.replace(raw[0], nodes.Text(new))


# --- Names for the navigation's <summary> toggles ----------------------------------------------

def name_summaries(soup) -> None:
    """Give every <summary> without text an aria-label, from the page link beside it."""
    for summary in soup.find_all("summary"):
        if summary.get_text(strip=True) or summary.get("aria-label") or summary.get("title"):
            continue
        details = summary.find_parent("details")
        item = details.find_parent("li") if details else None
        link = item.find("a", recursive=False) if item else None
        title = re.sub(r"\s+", " ", link.get_text()).strip() if link else ""
        summary["aria-label"] = f"Show or hide the pages under {title}" if title else \
            "Show or hide the pages under this one"


def label_toctree_toggles(app, pagename, templatename, context, doctree):
    """Wrap the theme's generate_toctree_html (runs after pydata-sphinx-theme's own hook)."""
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "_course_a11y", False):
        return

    @functools.cache
    def wrapped(kind, *args, **kwargs):
        result = generate(kind, *args, **kwargs)
        if hasattr(result, "find_all"):  # BeautifulSoup (both "sidebar" and "raw")
            name_summaries(result)
        return result

    wrapped._course_a11y = True
    context["generate_toctree_html"] = wrapped


def write_css(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        target = static / CSS_FILE
        text = ansi_css()
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def write_root_redirect(app, exception):
    """The site's root index.html, which only sends the reader to the book's first page, as a
    complete document (language, title, a link), not sphinx-external-toc's lone <meta> tag
    (axe: html-has-lang, document-title). Runs before sphinx-external-toc's build-finished
    handler, which then leaves the existing file alone."""
    if exception is not None or app.builder.name != "html" or app.config.master_doc == "index":
        return
    target = f"{app.config.master_doc}.html"
    title = html.escape(app.config.html_title or app.config.project)
    text = (f'<!DOCTYPE html>\n<html lang="{html.escape(app.config.language or "en")}">\n'
            f'<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'<meta http-equiv="Refresh" content="0; url={target}">\n'
            f'<link rel="canonical" href="{target}">\n</head>\n'
            f'<body>\n<main>\n<p><a href="{target}">{title}</a></p>\n</main>\n</body>\n</html>\n')
    index = Path(app.outdir) / "index.html"
    if not index.exists() or index.read_text(encoding="utf-8") != text:
        index.write_text(text, encoding="utf-8")


def setup(app):
    app.add_css_file(CSS_FILE, priority=800)  # after the theme's and myst-nb's stylesheets
    app.connect("html-page-context", label_toctree_toggles, priority=900)
    app.connect("build-finished", write_css)
    app.connect("build-finished", write_root_redirect, priority=400)  # before sphinx-external-toc
    app.connect("doctree-resolved", readable_outputs)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
