"""Syllabus coverage: every topic of every chapter present is taught at its MyST target.

Reads the project's copy of the syllabus (book/syllabus.yml), so a new chapter file
book/NN-<chapter id>.md is checked the moment it appears.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SYLLABUS = REPO / "book" / "syllabus.yml"
SHARED = REPO.parent / "shared" / "course-topics.yml"
TARGET_RE = re.compile(r"^\(topic-([a-z0-9-]+)\)=\s*$", re.M)


def syllabus() -> list[dict]:
    return yaml.safe_load(SYLLABUS.read_text(encoding="utf-8"))["chapters"]


def chapter_file(chapter_id: str) -> Path | None:
    found = sorted((REPO / "book").glob(f"[0-9][0-9]-{chapter_id}.md"))
    return found[0] if found else None


PRESENT = [c for c in syllabus() if chapter_file(c["id"])]


def sections(text: str) -> dict[str, str]:
    """Topic id -> the text from its target to the next topic target."""
    marks = list(TARGET_RE.finditer(text))
    return {m.group(1): text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
            for i, m in enumerate(marks)}


def test_syllabus_copy_matches_shared():
    if not SHARED.exists():
        pytest.skip("no ../shared checkout (a plain clone); the copy in book/ is authoritative")
    assert SYLLABUS.read_text() == SHARED.read_text(), \
        "book/syllabus.yml differs from ../shared/course-topics.yml: copy the new syllabus"


def test_first_chapter_is_present():
    assert PRESENT and PRESENT[0]["id"] == "basics"


@pytest.mark.parametrize("chapter", PRESENT, ids=lambda c: c["id"])
def test_every_topic_has_its_target_in_its_chapter(chapter):
    text = chapter_file(chapter["id"]).read_text(encoding="utf-8")
    targets = TARGET_RE.findall(text)
    wanted = [t["id"] for t in chapter["topics"]]
    missing = [t for t in wanted if t not in targets]
    assert not missing, f"chapter {chapter['id']} does not teach: {missing}"
    dupes = {t for t in targets if targets.count(t) > 1}
    assert not dupes, f"targets defined twice: {dupes}"
    foreign = [t for t in targets if t not in wanted]
    assert not foreign, f"targets of topics from other chapters or unknown: {foreign}"


@pytest.mark.parametrize("chapter", PRESENT, ids=lambda c: c["id"])
def test_code_topics_have_code_in_their_section(chapter):
    secs = sections(chapter_file(chapter["id"]).read_text(encoding="utf-8"))
    no_code = [t["id"] for t in chapter["topics"]
               if t.get("code") and "```{code-cell}" not in secs.get(t["id"], "")]
    assert not no_code, f"code: true topics without a code cell: {no_code}"


@pytest.mark.parametrize("chapter", PRESENT, ids=lambda c: c["id"])
def test_code_topics_executed_in_the_build(chapter, built_book):
    """In the notebook the build executed, each code topic's section has a cell that ran."""
    src = chapter_file(chapter["id"])
    executed = json.loads((built_book / "jupyter_execute" / "book" / f"{src.stem}.ipynb").read_text())
    ran: dict[str, int] = {}
    current = None
    for cell in executed["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            found = TARGET_RE.findall(source)
            if found:
                current = found[-1]
        elif current and cell.get("execution_count"):
            ran[current] = ran.get(current, 0) + 1
    not_run = [t["id"] for t in chapter["topics"] if t.get("code") and not ran.get(t["id"])]
    assert not not_run, f"code topics with no executed cell: {not_run}"


@pytest.mark.parametrize("chapter", PRESENT, ids=lambda c: c["id"])
def test_chinese_terms_appear(chapter):
    """The Chinese term of each topic is given in its chapter."""
    text = chapter_file(chapter["id"]).read_text(encoding="utf-8")
    # A zh entry may list several terms ("AdaGrad、RMSProp、Adam"); the chapter must use
    # at least the first Chinese word of each.
    missing = []
    for topic in chapter["topics"]:
        words = re.findall(r"[\u4e00-\u9fff]+", topic["zh"])
        if words and words[0] not in text:
            missing.append(f"{topic['id']} ({words[0]})")
    assert not missing, f"Chinese terms not used: {missing}"
