"""The assignments' links to the book work wherever a notebook is opened.

JupyterLab, Colab and nbgrader's feedback pages do not know the book: a MyST reference such as
``#topic-softmax`` goes nowhere there, and ``../../book/01-basics.md`` opens raw MyST. So the
"Read first" and chapter links of every notebook in solutions/ and exercises/ are absolute
URLs of the published book, whose address comes from ``repository.url`` in ``_config.yml``
(book/_ext/course_links.py; ``python book/_ext/course_links.py`` rewrites them).

Checked here: every such link is exactly what that rewrite writes from the current config
(so the links cannot drift from the one setting), and, against the built site, names a page
that was built and an anchor that page has. The exercise pages of the site itself link the
built pages, relatively. Synthetic wrong links (a bad anchor, a missing page, a stale site
address) must be rejected.

Development only: DLCOURSE_SITE=/path/to/html checks an existing site instead of building
the book (as in test_browser.py).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "book" / "_ext"))
import course_links  # noqa: E402

BASE = course_links.site_url(REPO)
TOPICS = course_links.topic_pages(REPO)
NOTEBOOKS = course_links.notebooks(REPO)
CHAPTER_OF = {"ps1-basics": "01-basics", "ps2-overfitting": "02-overfitting", "ps3-cnns": "03-cnns",
              "ps4-transfer-learning": "04-transfer-learning", "ps5-advanced": "05-advanced-practices"}
# Any link (Markdown or HTML) whose target starts with the published site's address.
SITE_LINK = re.compile(r"(?:\]\(|href=[\"'])(" + re.escape(BASE) + r"[^)\"'\s]*)")


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# --- The address, from the one repository setting ---------------------------------------------

def test_site_address_is_derived_from_the_repository_url():
    assert BASE == "https://dl-course.github.io/deep-learning-keras/"
    assert course_links.published_url("https://github.com/Some-Org/a.repo.git") == \
        "https://some-org.github.io/a.repo/"
    assert course_links.published_url("https://github.com/dl-course/dl-course.github.io") == \
        "https://dl-course.github.io/"
    with pytest.raises(ValueError):
        course_links.published_url("https://gitlab.com/dl-course/deep-learning-keras")


def test_site_address_follows_the_config(tmp_path):
    """Another repository.url gives other links: nothing else names the site."""
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/fork/course\n")
    base = course_links.site_url(tmp_path)
    assert base == "https://fork.github.io/course/"
    text = markdown(REPO / "solutions" / "ps1-basics" / "ps1-basics.ipynb")
    moved = course_links.rewrite_markdown(text, base, TOPICS)
    assert BASE not in moved and f"]({base}book/01-basics.html#topic-softmax)" in moved


# --- The notebooks' links ----------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_notebook_links_are_the_published_books(path):
    problems = course_links.problems(path, BASE, TOPICS, REPO)
    assert not problems, (f"{rel(path)}: book links that do not match _config.yml's site "
                          f"{BASE}:\n  " + "\n  ".join(problems)
                          + "\nFix: python book/_ext/course_links.py && python -m autograder release")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_read_first_and_chapter_links_are_absolute(path):
    """The intro links the chapter and every part its sections, all as published URLs."""
    nb = nbformat.read(path, as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    chapter = CHAPTER_OF[path.parent.name]
    assert f"]({BASE}book/{chapter}.html)" in md[0], f"{rel(path)}: the intro does not link the chapter"
    parts = [s for s in md if s.startswith("## Part ")]
    read_first = re.compile(r"\*Read first:\*.*\]\(" + re.escape(f"{BASE}book/{chapter}.html#topic-"))
    assert parts and all(read_first.search(s) for s in parts), \
        f"{rel(path)}: every part's 'Read first' links its chapter's sections on the published site"
    text = "\n".join(md)
    assert not re.search(r"\]\((?:#|\.\./|\./)", text), f"{rel(path)}: a relative link is left"
    assert not re.search(r"\]\([^)]*\.md(?:#[^)]*)?\)", text), f"{rel(path)}: a link to a .md source"


# --- Against the built site --------------------------------------------------------------------

_ids_cache: dict[Path, set[str]] = {}


def page_ids(page: Path) -> set[str]:
    if page not in _ids_cache:
        text = page.read_text(encoding="utf-8")
        _ids_cache[page] = {html.unescape(i) for i in re.findall(r'\bid="([^"]+)"', text)}
    return _ids_cache[page]


def dead_links(text: str, html_dir: Path) -> list[str]:
    """Links to the published site in `text` whose page or anchor the built site lacks."""
    dead = []
    for url in SITE_LINK.findall(text):
        path, _, anchor = url[len(BASE):].partition("#")
        page = html_dir / (path or "index.html")
        if path.endswith("/"):
            page = page / "index.html"
        if not page.is_file():
            dead.append(f"{url}: no page {path} in the built site")
        elif anchor and anchor not in page_ids(page):
            dead.append(f"{url}: {path} has no id=\"{anchor}\"")
    return dead


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_notebook_links_resolve_in_the_built_site(html_dir, path):
    text = markdown(path)
    links = SITE_LINK.findall(text)
    assert len(links) >= 5, f"{rel(path)}: expected its links to the book, found {links}"
    dead = dead_links(text, html_dir)
    assert not dead, f"{rel(path)}: links to nowhere:\n  " + "\n  ".join(dead)


def test_wrong_links_are_rejected(html_dir, tmp_path):
    good = f"[Softmax]({BASE}book/01-basics.html#topic-softmax)"
    assert dead_links(good, html_dir) == []
    bad_anchor = f"[Softmax]({BASE}book/01-basics.html#topic-no-such-topic)"
    bad_page = f"[Basics]({BASE}book/01-basic.html)"
    wrong_chapter = f"[Dropout]({BASE}book/01-basics.html#topic-dropout)"
    assert len(dead_links(bad_anchor + bad_page + wrong_chapter, html_dir)) == 3

    # The source check rejects them too, and the old relative forms and a stale address.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) for s in [
        bad_anchor, bad_page, wrong_chapter, "[Softmax](#topic-softmax)",
        "[Basics](../../book/01-basics.md)", "[Softmax](#topic-no-such-topic)",
        "[Softmax](https://old-org.github.io/old-repo/book/01-basics.html#topic-softmax)", good]])
    path = tmp_path / "wrong.ipynb"
    nbformat.write(nb, path)
    problems = course_links.problems(path, BASE, TOPICS, REPO)
    assert len(problems) == 7, problems


def test_exercise_pages_of_the_site_link_the_built_pages(html_dir):
    """In the site itself the links stay inside the site (offline, and on a fork's site)."""
    for path in (REPO / "exercises").glob("*/*.ipynb"):
        page = html_dir / "exercises" / path.parent.name / f"{path.stem}.html"
        text = page.read_text(encoding="utf-8")
        body = re.search(r'<article class="bd-article">(.*?)</article>', text, re.S).group(1)
        hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', body)]
        assert not [h for h in hrefs if h.startswith(BASE)], f"{page}: links the published site"
        chapter = CHAPTER_OF[path.parent.name]
        local = [h for h in hrefs if h.startswith(f"../../book/{chapter}.html")]
        assert f"../../book/{chapter}.html" in local, f"{page}: no link to its chapter"
        for href in local:
            target, _, anchor = href.partition("#")
            assert not anchor or anchor in page_ids((page.parent / target).resolve()), \
                f"{page}: {href} leads nowhere"
