"""The assignments' links to the book, as absolute URLs of the published site.

An assignment notebook is opened in JupyterLab, in Colab and (graded) as an nbgrader feedback
page: none of them knows the book, so a MyST cross-reference such as ``#topic-softmax`` goes
nowhere there and ``../../book/01-basics.md`` opens raw MyST. The notebooks therefore link
the published book itself::

    [Softmax ...](https://dl-course.github.io/deep-learning-keras/book/01-basics.html#topic-softmax)

The site's address is not written anywhere: it is the GitHub Pages address of
``repository.url`` in ``_config.yml`` (:func:`published_url`), the one repository setting.
The links are literal text in ``solutions/*/*.ipynb`` (and so in the released
``exercises/``); this module writes and checks them:

- ``python book/_ext/course_links.py`` rewrites the links of ``solutions/``: the MyST forms
  (``#topic-<id>``, ``../../book/<chapter>.md``) and absolute links of an older site address
  become links into the current one. Then ``python -m autograder release`` regenerates
  ``exercises/``.
- ``python book/_ext/course_links.py --check`` (and ``tests/test_accessibility.py``) fails if
  a notebook's link is not what the rewrite would write, or names a page or topic that does
  not exist.
- As a Sphinx extension, the exercise pages of the built site link the site's own pages
  instead (relative links, so the site works offline and on a fork), and the build warns
  (``-W``: fails) on a link to a page or a topic anchor the book does not have.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIRS = ("solutions", "exercises")
# A topic target in a chapter: "(topic-softmax)=" on a line of its own; MyST gives the section
# that follows it the id "topic-softmax".
TOPIC_TARGET = re.compile(r"^\((topic-[a-z0-9-]+)\)=\s*$", re.M)
# The forms a notebook's link to the book may take, old or current. In a Markdown link target:
#   #topic-<id>                              a MyST cross-reference (works only in the book)
#   ../../book/<page>.md[#anchor]            a relative path to the chapter's source
#   https://<org>.github.io/<repo>/book/<page>.html[#anchor]   a published site, any address
LINK = re.compile(r"\]\((?P<target>(?:"
                  r"(?:\.\./)+(?P<md>book/[\w./-]+?)\.md"
                  r"|https?://[\w.-]+\.github\.io/(?:[\w.-]+/)?(?P<html>book/[\w./-]+?)\.html"
                  r")?(?:#(?P<anchor>[\w-]+))?)\)")


def published_url(repository_url: str) -> str:
    """The GitHub Pages address of a GitHub repository, ending in "/".

    https://github.com/dl-course/deep-learning-keras -> https://dl-course.github.io/deep-learning-keras/
    (a repository named <org>.github.io is published at the host's root).
    """
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repository_url.strip())
    if not match:
        raise ValueError(f"repository.url is not a GitHub repository: {repository_url!r}")
    org, repo = match.groups()
    host = f"{org.lower()}.github.io"
    return f"https://{host}/" if repo.lower() == host else f"https://{host}/{repo}/"


def site_url(root: Path = ROOT) -> str:
    """The published book's address, from repository.url in root/_config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return published_url(config["repository"]["url"])


def topic_pages(root: Path = ROOT) -> dict[str, str]:
    """Topic anchor ("topic-softmax") -> the page that defines it ("book/01-basics")."""
    found: dict[str, str] = {}
    for path in sorted((root / "book").rglob("*.md")):
        page = path.relative_to(root).with_suffix("").as_posix()
        for anchor in TOPIC_TARGET.findall(path.read_text(encoding="utf-8")):
            if anchor in found:
                raise ValueError(f"{anchor} is a target in both {found[anchor]} and {page}")
            found[anchor] = page
    return found


def page_url(base: str, page: str, anchor: str | None = None) -> str:
    """The published address of a page ("book/01-basics") and an anchor in it."""
    return f"{base}{page}.html" + (f"#{anchor}" if anchor else "")


def _canonical(link: re.Match, base: str, topics: dict[str, str]) -> str:
    """What a link found by LINK should be. Raises ValueError for an unknown page or topic."""
    page, anchor = link.group("md") or link.group("html"), link.group("anchor")
    if page is None:  # a bare "#anchor": a MyST cross-reference to a topic target
        if anchor not in topics:
            raise ValueError(f"#{anchor} is no topic target of the book")
        page = topics[anchor]
    if anchor and anchor.startswith("topic-") and topics.get(anchor) != page:
        where = f"a topic of {topics[anchor]}" if anchor in topics else "no topic target of the book"
        raise ValueError(f"{link.group('target')}: #{anchor} is {where}, not of {page}")
    return page_url(base, page, anchor)


def rewrite_markdown(text: str, base: str, topics: dict[str, str]) -> str:
    """The text with every link to the book pointing into the published site at `base`."""
    return LINK.sub(lambda m: f"]({_canonical(m, base, topics)})" if _is_book_link(m) else m.group(0),
                    text)


def _is_book_link(link: re.Match) -> bool:
    """A bare "#anchor" is a link into the book only as a topic reference (#topic-...)."""
    return bool(link.group("md") or link.group("html")
                or (link.group("anchor") or "").startswith("topic-"))


def book_links(text: str) -> list[re.Match]:
    """Every link in a Markdown text that points into the book, in any of LINK's forms."""
    return [m for m in LINK.finditer(text) if _is_book_link(m)]


def notebooks(root: Path = ROOT, dirs=NOTEBOOK_DIRS) -> list[Path]:
    return sorted(p for d in dirs for p in (root / d).glob("*/*.ipynb"))


def _markdown_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown"]


def problems(path: Path, base: str, topics: dict[str, str], root: Path = ROOT) -> list[str]:
    """Why the book links of one notebook are not the canonical ones, or name a page that has
    no source in root/book; [] when all are fine."""
    import nbformat

    found = []
    nb = nbformat.read(path, as_version=4)
    for cell in _markdown_cells(nb):
        for link in book_links(cell.source):
            target = link.group("target")
            try:
                want = _canonical(link, base, topics)
            except ValueError as exc:
                found.append(f"cell {cell.get('id')}: {exc}")
                continue
            if target != want:
                found.append(f"cell {cell.get('id')}: {target} should be {want}")
            page = link.group("md") or link.group("html") or topics[link.group("anchor")]
            if not any((root / f"{page}{ext}").exists() for ext in (".md", ".ipynb")):
                found.append(f"cell {cell.get('id')}: {target}: the book has no page {page}")
    return found


def rewrite_notebook(path: Path, base: str, topics: dict[str, str]) -> bool:
    """Rewrite a notebook's links in place; True if it changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in _markdown_cells(nb):
        new = rewrite_markdown(cell.source, base, topics)
        if new != cell.source:
            cell.source, changed = new, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report links that differ from what the rewrite writes")
    args = parser.parse_args(argv)
    base, topics = site_url(), topic_pages()
    if args.check:
        bad = {p: problems(p, base, topics) for p in notebooks()}
        bad = {p: v for p, v in bad.items() if v}
        for path, found in bad.items():
            print(f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(found))
        if bad:
            print("Fix: python book/_ext/course_links.py && python -m autograder release")
        return 1 if bad else 0
    changed = [p for p in notebooks(dirs=("solutions",)) if rewrite_notebook(p, base, topics)]
    for path in changed:
        print(f"rewrote the book links of {path.relative_to(ROOT)}")
    if changed:
        print("Now regenerate the student copies: python -m autograder release")
    return 0


# --- Sphinx: the exercise pages of the site link the site itself ---------------------------------

def _local_links(app, doctree, docname):
    """Links into the published site become relative links to the built pages, checked."""
    from docutils import nodes
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    base = app.course_site_url
    labels = app.env.get_domain("std").anonlabels  # name -> (docname, id)
    for ref in doctree.findall(nodes.reference):
        uri = ref.get("refuri", "")
        if not uri.startswith(base):
            continue
        path, _, anchor = uri[len(base):].partition("#")
        page = path.removesuffix(".html")
        if not path.endswith(".html") or page not in app.env.all_docs:
            logger.warning(f"link to {uri}: the book has no page {path}",
                           location=ref, type="course", subtype="link")
            continue
        if anchor and labels.get(anchor, (None, None)) != (page, anchor):
            logger.warning(f"link to {uri}: {page} has no target ({anchor})=",
                           location=ref, type="course", subtype="link")
            continue
        ref["refuri"] = app.builder.get_relative_uri(docname, page) + (f"#{anchor}" if anchor else "")
        ref["internal"] = True


def _site_url(app):
    from sphinx.errors import ExtensionError

    # Jupyter Book passes _config.yml's repository.url to the theme as repository_url.
    try:
        app.course_site_url = published_url(app.config.html_theme_options.get("repository_url", ""))
    except ValueError as exc:
        raise ExtensionError(f"course_links: {exc}") from exc


def setup(app):
    app.connect("builder-inited", _site_url)
    app.connect("doctree-resolved", _local_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.exit(main())
