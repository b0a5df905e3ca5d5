"""The published book: built offline with -W, every cell executed, math and figures local."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO


def chapter_sources() -> list[Path]:
    return sorted((REPO / "book").glob("[0-9][0-9]-*.md"))


def test_chapter_sources_are_myst_notebooks_without_outputs():
    """Chapters are MyST Markdown notebooks (jupytext front matter); outputs are never committed."""
    chapters = chapter_sources()
    assert chapters, "no chapter files book/NN-<chapter>.md"
    for path in chapters:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("---\njupytext:"), f"{path.name}: missing jupytext front matter"
        assert "format_name: myst" in text.split("---", 2)[1], f"{path.name}: not a MyST notebook"
        assert "```{code-cell}" in text, f"{path.name}: no code cells"
    stray = [p for p in (REPO / "book").rglob("*.ipynb") if "_build" not in p.parts]
    assert not stray, f"book sources must be MyST Markdown, not .ipynb with outputs: {stray}"


def test_every_chapter_is_in_the_toc():
    toc = (REPO / "_toc.yml").read_text()
    for path in chapter_sources():
        assert f"book/{path.stem}" in toc, f"{path.name} is not in _toc.yml"


def _executed(build: Path) -> list[Path]:
    return sorted((build / "jupyter_execute" / "book").glob("*.ipynb"))


def test_every_chapter_executed_without_errors(built_book):
    executed = {p.stem: p for p in _executed(built_book)}
    for src in chapter_sources():
        assert src.stem in executed, f"{src.name} was not executed by the build"
        nb = json.loads(executed[src.stem].read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), \
            f"{src.name}: some code cells did not run"
        errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{src.name}: cell errors {errors[:1]}"


def test_built_pages_render_math_and_figures_offline(built_book):
    html_dir = built_book / "html"
    index = html_dir / "index.html"
    assert index.exists()
    assert (html_dir / "mathjax" / "tex-chtml.js").exists(), "vendored MathJax not copied"
    for src in chapter_sources():
        page = html_dir / "book" / f"{src.stem}.html"
        html = page.read_text(encoding="utf-8")
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page.name} loads scripts from the network: {remote}"
        assert any(s.split("?")[0].endswith("/mathjax/tex-chtml.js") for s in scripts), \
            "the vendored MathJax is not loaded"
        assert re.search(r'class="math', html), f"{page.name}: no math on the page"
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
        assert images, f"{page.name}: no figures"
        for img in images:
            assert (page.parent / img).resolve().exists(), f"{page.name}: missing image {img}"
        assert "Traceback (most recent call last)" not in html
        # The notebook download button points at the executed notebook.
        assert f'href="../_sources/book/{src.stem}.ipynb"' in html, "no .ipynb download button"
        assert (html_dir / "_sources" / "book" / f"{src.stem}.ipynb").exists()
        assert "github.com" in html, "no repository button"


def test_index_links_chapters_and_exercises(built_book):
    html_dir = built_book / "html"
    assert "book/index.html" in (html_dir / "index.html").read_text(), "no redirect to the book"
    landing = html_dir / "book" / "index.html"
    links = {(landing.parent / href).resolve()
             for href in re.findall(r'href="([^"#?]+\.html)', landing.read_text(encoding="utf-8"))}
    for src in chapter_sources():
        assert (html_dir / "book" / f"{src.stem}.html").resolve() in links, \
            f"the landing page does not link {src.stem}"
    for nb in sorted((REPO / "exercises").glob("*/*.ipynb")):
        page = (html_dir / nb.relative_to(REPO).with_suffix(".html")).resolve()
        assert page in links, f"the landing page does not link the exercise {page.name}"
        assert page.exists()


def test_solutions_are_not_published(built_book):
    html_dir = built_book / "html"
    assert not (html_dir / "solutions").exists()
    leaked = [p for p in html_dir.rglob("*") if p.is_file() and p.suffix in (".html", ".ipynb")
              and "BEGIN HIDDEN TESTS" in p.read_text(errors="ignore")]
    assert not leaked, f"hidden tests published: {leaked}"


# What TensorFlow and Python print when something is off. None of it belongs on a page.
NOISE = re.compile(r"triggered tf\.function retracing|WARNING:tensorflow|"
                   r"\w+Warning: |Traceback \(most recent call last\)")


def test_no_library_warnings_on_the_pages(built_book):
    """Retracing warnings and other library noise reached readers before; the pages show
    only what the lesson prints."""
    noisy = {}
    for src in chapter_sources():
        html = (built_book / "html" / "book" / f"{src.stem}.html").read_text(encoding="utf-8")
        hits = NOISE.findall(re.sub(r"<[^>]+>", "", html))
        if hits:
            noisy[src.stem] = sorted(set(hits))
    assert not noisy, f"library warnings on the published pages: {noisy}"


def test_noise_detector_fires_on_a_synthetic_page():
    page = ("<pre>WARNING:tensorflow:5 out of the last 5 calls to <function f> triggered "
            "tf.function retracing.</pre><p>UserWarning: Do not pass an input_shape</p>")
    assert len(NOISE.findall(re.sub(r"<[^>]+>", "", page))) == 3
