"""The chapters in a real JupyterLab, in headless Chromium (issue #15): a chapter (a MyST
Markdown notebook, ``book/*.md``) opens as a notebook with the course kernel, by double-click
and by Open With → Notebook, is not marked modified once its kernel is ready, and saving it
unchanged leaves its bytes as they are in the repository.

One JupyterLab server for the module (tests/lab_session.py), serving a temporary folder with a
copy of the chapters and of pyproject.toml (the repository's jupytext config), laid out as in
the repository, so that a failing test cannot change the repository's files. The server is this
environment's, with the settings ``make env`` installs (dlcourse.lab); the fast checks of the
same things without a browser are in test_lab_units.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO
from dlcourse.kernel import DISPLAY_NAME
from lab_session import lab_session
from test_validate import tiny_assignment

import nbformat

CHAPTERS = sorted((REPO / "book").glob("0*.md"))
SETTLE_MS = 1500  # after the kernel is idle: JupyterLab writes the kernel's language_info late


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    (root / "book").mkdir()
    for chapter in CHAPTERS:
        shutil.copy2(chapter, root / "book" / chapter.name)
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    nbformat.write(tiny_assignment(), root / "tiny-assignment.ipynb")  # for Validate
    with lab_session(root) as session:
        yield session


@pytest.fixture
def fresh(lab):
    """Each test starts with no open tab and no running kernel."""
    yield lab
    lab.close_all()
    lab.shutdown_kernels()


def _where(path: str) -> str:
    return f"book/{path}"


def test_double_click_opens_a_chapter_as_a_notebook_with_the_course_kernel(fresh):
    chapter = CHAPTERS[0].name
    panel = fresh.open_by_double_click(_where(chapter))
    assert fresh.is_notebook(panel), f"{chapter} opened in {panel.get_attribute('class')}, not as a notebook"
    assert fresh.kernel_name(panel) == DISPLAY_NAME


def test_open_with_notebook_opens_a_chapter_with_the_course_kernel(fresh):
    chapter = CHAPTERS[1].name
    panel = fresh.open_with(_where(chapter), "Notebook")
    assert fresh.is_notebook(panel)
    assert fresh.kernel_name(panel) == DISPLAY_NAME


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_an_unchanged_chapter_is_not_modified_and_saves_byte_identical(fresh, chapter):
    """Opened (double-click) with its kernel ready, the tab has no modified dot; Ctrl+S writes
    exactly the repository's bytes (the working tree's, which are git's once committed)."""
    panel = fresh.open_by_double_click(_where(chapter.name))
    assert fresh.is_notebook(panel), f"{chapter.name} did not open as a notebook"
    assert fresh.kernel_name(panel) == DISPLAY_NAME
    fresh.page.wait_for_timeout(SETTLE_MS)
    assert not fresh.is_dirty(panel), f"{chapter.name} is marked modified as soon as it opens"
    fresh.save(panel)
    saved = (fresh.root / "book" / chapter.name).read_bytes()
    original = chapter.read_bytes()
    if saved != original:
        import difflib

        diff = "".join(difflib.unified_diff(original.decode().splitlines(True), saved.decode().splitlines(True),
                                            "repository", "saved by JupyterLab", n=1))
        pytest.fail(f"saving {chapter.name} unchanged rewrote it:\n{diff[:2000]}")


# --- Validate (nbgrader's button, answered by dlcourse.validate) -------------------------------

VALIDATE_MS = 180_000  # a fresh kernel runs the whole notebook


def test_validate_on_a_chapter_says_there_is_nothing_to_validate(fresh):
    chapter = CHAPTERS[1]
    panel = fresh.open_by_double_click(_where(chapter.name))
    fresh.wait_kernel_idle(panel)
    fresh.click_toolbar_button(panel, "Validate")
    text = fresh.dialog_text(timeout=VALIDATE_MS)
    fresh.close_dialog()
    assert "is not an assignment" in " ".join(text.split()), text
    assert "Traceback" not in text and "NotJSONError" not in text, text
    # nbgrader's button saves first: the save must leave the chapter as it was
    assert (fresh.root / "book" / chapter.name).read_bytes() == chapter.read_bytes()


def test_validate_on_an_assignment_answers_per_question(fresh):
    panel = fresh.open_by_double_click("tiny-assignment.ipynb")
    fresh.wait_kernel_idle(panel)
    fresh.click_toolbar_button(panel, "Validate")
    text = fresh.dialog_text(timeout=VALIDATE_MS)
    fresh.close_dialog()
    for line in ("test_double (2 points): not answered", "test_half (1 point): not answered",
                 "written_why (2 points): not answered", "0 of 2 autograded questions pass"):
        assert line in text, text
    assert "Traceback" not in text and "raise NotImplementedError" not in text, text
    assert len(text) < 1500, f"{len(text)} characters:\n{text}"
