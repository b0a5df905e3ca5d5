"""Feedback for students that does not give the hidden tests away, and cannot stall the class.

nbgrader's ``generate_feedback`` renders the autograded notebook, hidden tests and their
assert messages included. :class:`RedactHiddenTests` is an nbgrader preprocessor that runs
after ``GetGrades`` and rewrites every test cell that has hidden tests: its visible part
stays, the hidden part becomes one comment line, and its outputs become one line with the
cell's name, points and pass or fail. A failure of a visible assert keeps its message (the
student can see that assert anyway); anything from the hidden part is dropped. Finding the
hidden blocks is one pass over the lines (:func:`autograder.notebook.hidden_blocks`), so linear
in the size of the notebook whatever a student puts in it.

The grading command writes ``grades.csv`` first, then the feedback, one student at a time per
worker process (:mod:`autograder.feedback_worker`, target :func:`generate_one`) with a time limit:
a notebook whose rendering hangs costs only its own feedback (a short page says why), never
the grades or the feedback of others. Before a page is written, :func:`leaked_lines` scans it
for every hidden-test line of the instructor's source (:func:`secret_lines`); a page that
shows one is replaced by a page that withholds the feedback.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.notebook import hidden_blocks, nbgrader_meta, split_hidden

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CELL_LINE_RE = re.compile(r"Cell In\[\d+\], line (\d+)")
TAG_RE = re.compile(r"<[^>]*>")
MIN_SECRET_CHARS = 13  # shorter hidden lines (`x = 3`) are too likely to be written by anyone


def _failing_line(output) -> int | None:
    """The line of the test cell that raised, from an IPython traceback (None if unknown)."""
    for entry in output.get("traceback", []):
        m = CELL_LINE_RE.search(ANSI_RE.sub("", str(entry)))
        if m:
            return int(m.group(1))
    return None


def redact_test_cell(cell) -> None:
    """Rewrite one autograded test cell in place (see the module's docstring)."""
    source = cell.source
    blocks = hidden_blocks(source)
    if not blocks:
        return
    hidden_starts_at = blocks[0][0] + 1  # 1-based line of the first BEGIN marker
    visible = split_hidden(source, "# (hidden tests: not shown)")[0].rstrip() + "\n"
    meta = nbgrader_meta(cell)
    score, points = cell.metadata.get("nbgrader", {}).get("score"), meta.get("points", 0)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    passed = not errors
    try:
        lines = [f"{meta.get('grade_id', 'test')}: {'passed' if passed else 'failed'}"
                 + (f", {float(score):g} of {float(points):g} points" if score is not None
                    else f" ({float(points):g} points)")]
    except (TypeError, ValueError):
        lines = [f"{meta.get('grade_id', 'test')}: {'passed' if passed else 'failed'}"]
    for err in errors:
        line = _failing_line(err)
        if line is not None and line < hidden_starts_at:
            lines.append(f"A visible test failed: {err.get('ename')}: {err.get('evalue')}")
        else:
            lines.append("A hidden test failed (or the cell could not run to the end).")
    cell.source = visible
    cell.outputs = [new_output("stream", name="stdout", text="\n".join(lines) + "\n")]


class RedactHiddenTests(NbGraderPreprocessor):
    """Hide the hidden tests (code, messages, output) of every autograded test cell."""

    def preprocess_cell(self, cell, resources, index):
        # Any code cell with a hidden-test block: a test cell, or a copy of one that lost its
        # nbgrader metadata (a duplicated cell).
        if cell.cell_type == "code" and hidden_blocks(cell.source):
            redact_test_cell(cell)
        return cell, resources


# ---------------------------------------------------------------------------------------------
# The last check: no hidden-test line in a page


def secret_lines(source_nb) -> set[str]:
    """The hidden-test lines of an instructor's notebook that a student cannot know: every
    line inside a hidden block (stripped, at least :data:`MIN_SECRET_CHARS` long) that appears
    nowhere else in the source (visible tests, solutions, set-up and text)."""
    hidden, elsewhere = set(), set()
    for cell in source_nb.cells:
        visible, inside = split_hidden(cell.source, None)
        hidden |= {ln.strip() for ln in inside.splitlines() if len(ln.strip()) >= MIN_SECRET_CHARS}
        elsewhere |= {ln.strip() for ln in visible.splitlines()}
    return hidden - elsewhere


def page_text(page: str) -> str:
    """What a reader of an HTML page sees: tags removed (code is split into highlighting
    spans), entities decoded."""
    return html.unescape(TAG_RE.sub("", page))


def leaked_lines(page: str, secrets: set[str]) -> list[str]:
    """The secret lines that ``page`` (HTML) shows, in any form (highlighted code, output)."""
    flat = " ".join(page_text(page).split())
    return sorted(s for s in secrets if " ".join(s.split()) in flat)


def not_shown_page(assignment: str, title: str, reason: str) -> str:
    a = html.escape(assignment)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{a}</title></head><body>"
            f"<h1>{a}: {html.escape(title)}</h1><p>{html.escape(reason)}</p></body></html>\n")


# ---------------------------------------------------------------------------------------------
# One student's feedback, in a worker process with a time limit


def generate_one(config: dict, student: str) -> None:
    """nbgrader generate_feedback for one student (in the worker process): the course's
    config, hidden tests redacted."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    from autograder.grading import course_config

    cfg = course_config(Path(config["course_root"]), config["db_url"])
    cfg.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTests, CSSHTMLHeaderPreprocessor]
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = config["assignment"], student
    converter = GenerateFeedback(coursedir=coursedir, config=cfg, log=logging.getLogger("autograder.grade"))
    converter.force = True
    converter.start()
