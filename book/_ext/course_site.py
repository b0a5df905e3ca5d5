"""Site features built from the course's own data, so nothing is written twice.

- ``book/glossary.md``: the bilingual glossary, generated from ``book/syllabus.yml`` when the
  builder starts (rewritten only when its text changes, so Sphinx does not re-read it for
  nothing). Each syllabus topic is a Sphinx glossary term in English and in Chinese, linked to
  the ``topic-<id>`` section that teaches it, so chapters can write {term}`Dropout`.
- ``{colab}`path/in/repo.ipynb``` role: an "open in Colab" link built from
  ``repository.url``/``branch`` in ``_config.yml`` (the chapters' links to their assignments).
- Colab launch buttons on MyST text-notebook pages. sphinx-book-theme points them at the
  ``.md`` source, which Colab cannot open; we point them at the executed ``.ipynb`` that the
  site publishes in ``_sources/`` on the GitHub Pages branch (``course_pages_branch``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml
from docutils import nodes, utils
from sphinx.errors import ExtensionError
from sphinx.util.nodes import split_explicit_title

SYLLABUS = Path("book") / "syllabus.yml"
GLOSSARY = Path("book") / "glossary.md"

# The head of a title is what comes before its first ":", ";" or "(".
_HEAD_END = re.compile(r"[:;(]")
# Qualifiers that follow the term itself ("Early stopping on a validation metric ...").
_QUALIFIER = re.compile(r" (?:when|with|on|from|in|built|as the|and their) ")


def glossary_term(topic: dict) -> str:
    """A short English term for a syllabus topic, taken from its (long) title.

    The head of the title, without a leading "The" and without trailing qualifiers; when the
    head is a long list ("Sigmoid for one class, softmax and one-hot labels for many") and the
    topic id names one item of it, that item ("Softmax").
    """
    title = topic["title"]
    head = _HEAD_END.split(title, 1)[0].strip()
    head = re.sub(r"^The ", "", head)
    if "," in head and len(head.split()) > 4:
        id_words = r"[ -]".join(map(re.escape, topic["id"].split("-")))
        named = re.search(rf"\b{id_words}\b", title, re.I)
        if named:
            head = named.group(0)
    if not head.startswith("Why "):  # a question is the term as a whole
        head = _QUALIFIER.split(head, 1)[0]
    return head[0].upper() + head[1:]


def chapter_docs(srcdir: Path) -> dict[str, str]:
    """Chapter id -> docname relative to book/ ("01-basics"), from the files book/NN-<id>.md."""
    found = {}
    for path in sorted((srcdir / "book").glob("[0-9][0-9]-*.md")):
        found[path.stem[3:]] = path.stem
    return found


def render_glossary(syllabus: dict, chapters: dict[str, str]) -> str:
    """The MyST text of book/glossary.md. Raises ExtensionError on a duplicate term."""
    seen: dict[str, str] = {}

    def unique(term: str, owner: str) -> str:
        key = term.lower()  # Sphinx matches glossary terms case-insensitively
        if key in seen:
            raise ExtensionError(f"glossary: {owner} and {seen[key]} both give the term {term!r}; "
                                 "reword one of their titles or zh terms in book/syllabus.yml")
        seen[key] = owner
        return term

    out = [
        "# Glossary (术语表)",
        "",
        "Every topic of the course with its English and Chinese (中文) term, linked to the section",
        "that teaches it. Chapters link here: a term in the text such as {term}`dropout` leads to",
        "its entry.",
        "",
        "<!-- Generated from book/syllabus.yml by book/_ext/course_site.py at every build:",
        "     edit the syllabus, not this file. -->",
        "",
    ]
    for number, chapter in enumerate(syllabus["chapters"], start=1):
        doc = chapters.get(chapter["id"])
        if doc is None:
            continue  # a chapter not written yet has no sections to link to
        out += [f"## {number}. {chapter['title']} ({chapter['zh']})", "",
                ":::{glossary}",
                unique(chapter["title"], f"chapter {chapter['id']}"),
                unique(chapter["zh"], f"chapter {chapter['id']} (zh)"),
                f"  Chapter {number}: {{doc}}`{doc}`.", ""]
        for topic in chapter["topics"]:
            tid = topic["id"]
            out += [unique(glossary_term(topic), f"topic {tid}"),
                    unique(topic["zh"].strip(), f"topic {tid} (zh)"),
                    f"  {topic['title']}. Taught in {{ref}}`topic-{tid}`.", ""]
        out += [":::", ""]
    return "\n".join(out).rstrip() + "\n"


def write_glossary(app) -> None:
    srcdir = Path(app.srcdir)
    syllabus = yaml.safe_load((srcdir / SYLLABUS).read_text(encoding="utf-8"))
    text = render_glossary(syllabus, chapter_docs(srcdir))
    target = srcdir / GLOSSARY
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return  # unchanged: keep its mtime, so Sphinx does not re-read the page
    # Atomic: two builds of the same tree (say the tests' and a reader's) never see half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".glossary-", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the page is an ordinary source file
    os.replace(tmp, target)


def _github_parts(app) -> tuple[str, str, str]:
    """(org, repo, branch) of ``repository:`` in _config.yml."""
    opts = app.config.html_theme_options
    url = opts.get("repository_url", "").rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    if not match:
        raise ExtensionError(f"Colab links need a GitHub repository.url, got {url!r}")
    return match.group(1), match.group(2), opts.get("repository_branch") or "main"


def _colab_base(app) -> str:
    launch = app.config.html_theme_options.get("launch_buttons", {})
    return (launch.get("colab_url") or "https://colab.research.google.com").rstrip("/")


def colab_url(app, path: str, branch: str | None = None) -> str:
    org, repo, default_branch = _github_parts(app)
    return f"{_colab_base(app)}/github/{org}/{repo}/blob/{branch or default_branch}/{path.lstrip('/')}"


def colab_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """{colab}`exercises/ps1-basics/ps1-basics.ipynb` or {colab}`title <path>`."""
    has_title, title, path = split_explicit_title(utils.unescape(text))
    app = inliner.document.settings.env.app
    node = nodes.reference(rawtext, title if has_title else "Open in Colab",
                           refuri=colab_url(app, path), classes=["colab-link"])
    return [node], []


def colab_for_text_notebooks(app, pagename, templatename, context, doctree):
    """Point the Colab launch button of a .md notebook at its executed .ipynb on the Pages branch."""
    if not context.get("sourcename", "").endswith((".md", ".md.txt")):
        return
    branch = app.config.course_pages_branch
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = group["buttons"]
        colab = [b for b in buttons if b.get("text") == "Colab"]
        for button in colab:
            if branch:
                button["url"] = colab_url(app, f"_sources/{pagename}.ipynb", branch)
            else:
                buttons.remove(button)  # no published .ipynb: a link to the .md would not open


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """Sphinx 7.4 lists inline scripts added after the builder starts twice, so every page
    threw "Identifier 'THEBE_JS_URL' has already been declared" in the browser."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts)
    app.add_config_value("course_pages_branch", "gh-pages", "html")
    app.connect("builder-inited", write_glossary)
    app.add_role("colab", colab_role)
    # After sphinx-book-theme adds its launch buttons (priority 501).
    app.connect("html-page-context", colab_for_text_notebooks, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
