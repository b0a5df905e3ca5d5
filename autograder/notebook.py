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


def hidden_tests(source: str) -> str:
    """The code between the hidden-test markers of a test cell ('' if none)."""
    return "\n".join(m.group(1) for m in HIDDEN_RE.finditer(source))


def visible_tests(source: str) -> str:
    """A test cell's source without its hidden block."""
    return HIDDEN_RE.sub("", source)


def setup_sources(nb) -> list[str]:
    """The read-only set-up cells (``grade_id`` starting ``setup``), in notebook order."""
    return [c.source for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade_id", "").startswith("setup")]
