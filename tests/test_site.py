"""The published site as its readers use it: launch and download buttons, the bilingual
glossary, the links from each chapter to its assignment, and the guides.

Static checks over the built HTML of the ``built_book`` fixture. While developing, point them
at another build with ``DLCOURSE_SITE_BUILD=/tmp/x/_build`` (a ``--path-output /tmp/x`` build),
so that the shared ``_build`` is left alone.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "book" / "_ext"))
import course_site  # noqa: E402  (the glossary generator, to compare the page with the syllabus)

CONFIG = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
SYLLABUS = yaml.safe_load((REPO / "book" / "syllabus.yml").read_text(encoding="utf-8"))
REPO_URL = "https://github.com/dl-course/deep-learning-keras"  # the project's canonical URL
BRANCH = CONFIG["repository"]["branch"]
PAGES_BRANCH = CONFIG["sphinx"]["config"]["course_pages_branch"]
HUB = CONFIG["launch_buttons"]["jupyterhub_url"].rstrip("/")
COLAB = "https://colab.research.google.com/github/dl-course/deep-learning-keras/blob"
BINDER = "https://mybinder.org/v2/gh/dl-course/deep-learning-keras"

# Chapter <-> assignment (problem set) of each chapter.
ASSIGNMENTS = {
    "01-basics": "ps1-basics",
    "02-overfitting": "ps2-overfitting",
    "03-cnns": "ps3-cnns",
    "04-transfer-learning": "ps4-transfer-learning",
    "05-advanced-practices": "ps5-advanced",
}
GUIDES = ["students", "instructors", "gpu"]


def chapters() -> list[str]:
    return sorted(p.stem for p in (REPO / "book").glob("[0-9][0-9]-*.md"))


def exercises() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "exercises").glob("*/*.ipynb"))


def hrefs(page: Path) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page.read_text(encoding="utf-8"))]


def article(page: Path) -> str:
    """The page's own content (no sidebars, header or footer)."""
    text = page.read_text(encoding="utf-8")
    match = re.search(r'<article class="bd-article">(.*?)</article>', text, re.S)
    assert match, f"{page}: no article"
    return match.group(1)


def test_repository_url_is_written_once_in_the_config():
    text = (REPO / "_config.yml").read_text(encoding="utf-8")
    assert CONFIG["repository"]["url"] == REPO_URL
    assert text.count("github.com/") == 1, "the repository URL must be set once (repository.url)"
    launch = CONFIG["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["notebook_interface"] == "jupyterlab"
    assert HUB.startswith("https://")


@pytest.mark.parametrize("source", [f"book/{c}.md" for c in chapters()] + exercises())
def test_launch_and_download_buttons(html_dir, source):
    """Colab, Binder, JupyterHub (nbgitpuller) and the .ipynb download, with exact links."""
    stem = source.rsplit(".", 1)[0]
    page = html_dir / f"{stem}.html"
    links = hrefs(page)

    binder = f"{BINDER}/{BRANCH}?urlpath=lab/tree/{source}"
    assert binder in links, f"{page.name}: no Binder button {binder}"

    hub = [h for h in links if h.startswith(f"{HUB}/hub/user-redirect/git-pull?")]
    assert len(hub) == 1, f"{page.name}: expected one JupyterHub button, got {hub}"
    query = parse_qs(urlsplit(hub[0]).query)
    assert query == {"repo": [REPO_URL], "branch": [BRANCH],
                     "urlpath": [f"lab/tree/deep-learning-keras/{source}"]}, hub[0]

    colab = [h for h in links if h.startswith("https://colab.research.google.com/")]
    if source.endswith(".ipynb"):
        want = f"{COLAB}/{BRANCH}/{source}"
        assert (REPO / source).exists()
    else:
        # Colab cannot open a .md: the button opens the executed notebook the site publishes.
        want = f"{COLAB}/{PAGES_BRANCH}/_sources/{stem}.ipynb"
        assert (html_dir / "_sources" / f"{stem}.ipynb").exists()
    assert want in colab, f"{page.name}: the Colab button should be {want}, got {colab}"
    assert not [h for h in colab if h.endswith(".md")], f"{page.name}: Colab link to a .md"

    depth = "../" * (stem.count("/"))
    download = f"{depth}_sources/{stem}.ipynb"
    assert download in links, f"{page.name}: no .ipynb download button {download}"
    assert (html_dir / "_sources" / f"{stem}.ipynb").exists()


def glossary_html(html_dir: Path) -> str:
    page = html_dir / "book" / "glossary.html"
    assert page.exists(), "no glossary page"
    return page.read_text(encoding="utf-8")


def test_glossary_has_every_topic_in_both_languages(html_dir):
    text = glossary_html(html_dir)
    # Glossary terms are <dt id="term-..."> entries.
    terms = {html.unescape(t).strip() for t in
             re.findall(r'<dt id="term-[^"]*">(.*?)<a class="headerlink"', text, re.S)}
    chapter_file = {c[3:]: c for c in chapters()}
    missing = []
    for chapter in SYLLABUS["chapters"]:
        doc = chapter_file.get(chapter["id"])
        if doc is None:
            continue
        for topic in chapter["topics"]:
            if topic["zh"].strip() not in terms:
                missing.append(f"{topic['id']}: zh term {topic['zh']!r}")
            if course_site.glossary_term(topic) not in terms:
                missing.append(f"{topic['id']}: English term {course_site.glossary_term(topic)!r}")
            link = f'href="{doc}.html#topic-{topic["id"]}"'
            if link not in text:
                missing.append(f"{topic['id']}: no link {link}")
    assert not missing, "glossary entries missing:\n" + "\n".join(missing)
    assert len(terms) == len(set(t.lower() for t in terms)), "duplicate glossary terms"


def test_glossary_source_is_generated_from_the_syllabus(html_dir):
    """book/glossary.md is what the build generated from the current syllabus (no hand edits)."""
    generated = course_site.render_glossary(SYLLABUS, course_site.chapter_docs(REPO))
    path = REPO / "book" / "glossary.md"
    assert path.read_text(encoding="utf-8") == generated, \
        "book/glossary.md is stale or edited by hand: it is generated at build time"


def test_glossary_terms_are_unique_and_short():
    terms = [course_site.glossary_term(t) for c in SYLLABUS["chapters"] for t in c["topics"]]
    dupes = {t for t in terms if [x.lower() for x in terms].count(t.lower()) > 1}
    assert not dupes, f"two topics give the same glossary term: {dupes}"
    long = [t for t in terms if len(t) > 70]
    assert not long, f"glossary terms should be short: {long}"
    # Spot checks of the derivation on titles that are lists or carry qualifiers.
    by_id = {t["id"]: t for c in SYLLABUS["chapters"] for t in c["topics"]}
    assert course_site.glossary_term(by_id["softmax"]) == "Softmax"
    assert course_site.glossary_term(by_id["dropout"]) == "Dropout"
    assert course_site.glossary_term(by_id["early-stopping"]) == "Early stopping"
    assert course_site.glossary_term(by_id["fine-tuning"]) == "Fine-tuning"


def test_chapters_link_terms_to_the_glossary(html_dir):
    linked = {}
    for chapter in chapters():
        body = article(html_dir / "book" / f"{chapter}.html")
        linked[chapter] = re.findall(r'href="glossary\.html#term-([^"]+)"', body)
    everywhere = {t for terms in linked.values() for t in terms}
    for term in ("Softmax", "Dropout", "Data-augmentation", "Transfer-learning"):
        assert term in everywhere, f"no chapter links the glossary term {term}"
    text = glossary_html(html_dir)
    for term in everywhere:
        assert f'id="term-{term}"' in text, f"a chapter links a missing glossary entry {term}"


@pytest.mark.parametrize("chapter", chapters())
def test_chapter_ends_with_its_assignment(html_dir, chapter):
    """The last thing in a chapter is a box linking its assignment's page and its Colab notebook."""
    ps = ASSIGNMENTS[chapter]
    body = article(html_dir / "book" / f"{chapter}.html")
    boxes = [m.start() for m in re.finditer(r'<div class="[^"]*\badmonition\b', body)]
    assert boxes, f"{chapter}: no admonition box"
    last = body[boxes[-1]:]
    assert not re.search(r"<h[1-6]|<div class=\"cell", last), \
        f"{chapter}: the assignment box is not the end of the chapter"
    links = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', last)]
    assert f"../exercises/{ps}/{ps}.html" in links, f"{chapter}: no link to the {ps} page"
    assert f"{COLAB}/{BRANCH}/exercises/{ps}/{ps}.ipynb" in links, f"{chapter}: no Colab link"
    assert (html_dir / "exercises" / ps / f"{ps}.html").exists()
    assert (REPO / "exercises" / ps / f"{ps}.ipynb").exists()


@pytest.mark.parametrize("guide", GUIDES)
def test_guides_exist_and_are_in_the_navigation(html_dir, guide):
    page = html_dir / "book" / "guides" / f"{guide}.html"
    assert page.exists(), f"no guide {guide}"
    assert len(article(page)) > 2000, f"the {guide} guide is nearly empty"
    landing = (html_dir / "book" / "index.html").read_text(encoding="utf-8")
    nav = re.search(r'<nav class="[^"]*\bbd-docs-nav\b[^"]*"[^>]*>(.*?)</nav>', landing, re.S)
    assert nav and f'href="guides/{guide}.html"' in nav.group(1), f"{guide} is not in the navigation"
    assert f'href="guides/{guide}.html"' in article(html_dir / "book" / "index.html"), \
        f"the landing page's text does not link the {guide} guide"
    assert 'href="glossary.html"' in nav.group(1), "the glossary is not in the navigation"


def test_guides_give_the_commands_users_run(html_dir):
    """The guides name the real commands (a renamed command should fail here, not confuse users)."""
    wanted = {
        "students": ["git clone", "make env", ".venv/bin/jupyter lab", "Deep Learning (TensorFlow)",
                     "dlcourse.kernel install", "%pip install", 'check("softmax")', "Validate"],
        "instructors": ["python -m autograder release ps1-basics", "python -m autograder grade",
                        "--out DIR", "--jobs N", "grades.csv", "--no-sandbox", "Formgrader",
                        "nbgrader generate_feedback", "postgresql://", "CourseDirectory.db_url"],
        "gpu": ["make gpu-env", "requirements-gpu.lock", "make kernel", "mixed_float16",
                "DLCOURSE_PROFILE=full", "autograder.readiness --profile full"],
    }
    for guide, phrases in wanted.items():
        text = html.unescape(re.sub(r"<[^>]+>", "", article(html_dir / "book" / "guides" / f"{guide}.html")))
        missing = [p for p in phrases if p not in text]
        assert not missing, f"the {guide} guide does not mention {missing}"
