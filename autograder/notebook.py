"""Read the graded cells of an nbgrader notebook.

The course's assignments follow one convention (see solutions/README.md):

- the answer cell of a graded function ``fn`` has ``grade_id == fn``;
- its autograded test cell has ``grade_id == "test_" + fn``: visible asserts first, then the
  hidden ones between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``;
- written answers are manually graded markdown cells whose ``grade_id`` starts ``written_``;
- read-only set-up cells (imports, data) have a ``grade_id`` starting ``setup``. Set-up
  cells plus answer cells are all that a test cell needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

HIDDEN_RE = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS[ \t]*$",
                       re.S | re.M)


def read(path: str | Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def cells_by_grade_id(nb) -> dict[str, nbformat.NotebookNode]:
    """Every cell that carries an nbgrader ``grade_id``, keyed by it."""
    out = {}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid:
            if gid in out:
                raise ValueError(f"grade_id {gid!r} appears twice")
            out[gid] = cell
    return out


def graded_functions(nb) -> list[str]:
    """Names of the autograded functions: answer cells that have a ``test_`` cell."""
    cells = cells_by_grade_id(nb)
    return [gid for gid, cell in cells.items()
            if nbgrader_meta(cell).get("solution") and cell.cell_type == "code"
            and f"test_{gid}" in cells]


BEGIN_LINE_RE = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS[ \t]*")
END_LINE_RE = re.compile(r"[ \t]*### END HIDDEN TESTS[ \t]*")


def hidden_blocks(source: str) -> list[tuple[int, int]]:
    """The hidden-test blocks of a cell as 0-based line ranges ``(begin, end)``: ``begin`` is
    the line of a ``### BEGIN HIDDEN TESTS`` marker and ``end`` the line of the first
    ``### END HIDDEN TESTS`` after it, inclusive. A BEGIN marker inside a block is part of it.
    A BEGIN with no END hides the rest of the cell.

    One pass over the lines, so linear in the size of the cell. (Matching :data:`HIDDEN_RE`
    instead is quadratic: every unclosed BEGIN scans to the end of the cell, and a student's
    cell of thousands of them took minutes.) For well-formed sources both find the same blocks.
    """
    lines = source.split("\n")
    blocks, begin = [], None
    for i, line in enumerate(lines):
        if begin is None:
            if BEGIN_LINE_RE.fullmatch(line):
                begin = i
        elif END_LINE_RE.fullmatch(line):
            blocks.append((begin, i))
            begin = None
    if begin is not None:
        blocks.append((begin, len(lines) - 1))
    return blocks


def split_hidden(source: str, replacement: str | None = "") -> tuple[str, str]:
    """``(visible, hidden)``: the source with each hidden block replaced by one line
    ``replacement`` (or removed if None), and the code inside the blocks (see
    :func:`hidden_tests`). Linear in the size of the source."""
    lines = source.split("\n")
    visible, hidden, start = [], [], 0
    for begin, end in hidden_blocks(source):
        visible.extend(lines[start:begin])
        if replacement is not None:
            visible.append(replacement)
        inner = lines[begin + 1:end] if END_LINE_RE.fullmatch(lines[end]) and end > begin else lines[begin + 1:end + 1]
        hidden.append("\n".join(inner) + "\n" if inner else "")
        start = end + 1
    visible.extend(lines[start:])
    return "\n".join(visible), "\n".join(hidden)


def hidden_tests(source: str) -> str:
    """The code between the hidden-test markers of a test cell ('' if none)."""
    return split_hidden(source)[1]


def visible_tests(source: str) -> str:
    """A test cell's source without its hidden block (each block leaves an empty line)."""
    return split_hidden(source)[0]


def setup_sources(nb) -> list[str]:
    """The read-only set-up cells (``grade_id`` starting ``setup``), in notebook order."""
    return [c.source for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade_id", "").startswith("setup")]
