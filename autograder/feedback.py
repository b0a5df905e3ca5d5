"""Feedback for students that does not give the hidden tests away.

nbgrader's ``generate_feedback`` renders the autograded notebook, hidden tests and their
assert messages included. :class:`RedactHiddenTests` is an nbgrader preprocessor that runs
after ``GetGrades`` and rewrites every test cell that has hidden tests: its visible part
stays, the hidden part becomes one comment line, and its outputs become one line with the
cell's name, points and pass or fail. A failure of a visible assert keeps its message (the
student can see that assert anyway); anything from the hidden part is dropped.
"""

from __future__ import annotations

import re

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.notebook import HIDDEN_RE, nbgrader_meta

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CELL_LINE_RE = re.compile(r"Cell In\[\d+\], line (\d+)")


def _failing_line(output) -> int | None:
    """The line of the test cell that raised, from an IPython traceback (None if unknown)."""
    for entry in output.get("traceback", []):
        m = CELL_LINE_RE.search(ANSI_RE.sub("", entry))
        if m:
            return int(m.group(1))
    return None


def redact_test_cell(cell) -> None:
    """Rewrite one autograded test cell in place (see the module's docstring)."""
    source = cell.source
    m = HIDDEN_RE.search(source)
    if m is None:
        return
    hidden_starts_at = source[:m.start()].count("\n") + 1  # 1-based line of the BEGIN marker
    visible = HIDDEN_RE.sub("# (hidden tests: not shown)\n", source).rstrip() + "\n"
    meta = nbgrader_meta(cell)
    score, points = cell.metadata.get("nbgrader", {}).get("score"), meta.get("points", 0)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    passed = not errors
    lines = [f"{meta.get('grade_id', 'test')}: {'passed' if passed else 'failed'}"
             + (f", {score:g} of {points:g} points" if score is not None else f" ({points:g} points)")]
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
        if cell.cell_type == "code" and HIDDEN_RE.search(cell.source):
            redact_test_cell(cell)
        return cell, resources
