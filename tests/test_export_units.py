"""grades.csv from the gradebook alone (autograder.grading.export_rows), without kernels.

A small gradebook made with nbgrader's own API: one autograded cell, one written answer.
The rows must give each cell's score, leave a written answer that waits for the formgrader
empty (not 0, which would read as a grade), count a missing student with zero, and keep the
instructor's column order.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.grading import course_id, export_rows

A = "ps0"


@pytest.fixture
def gradebook(tmp_path, monkeypatch):
    # nbgrader runs its environment's `alembic` by name when it creates a gradebook (as in grade()).
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    source = tmp_path / f"{A}.ipynb"
    cells = [nbformat.v4.new_code_cell("assert f(1) == 1"), nbformat.v4.new_markdown_cell("answer")]
    cells[0].metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_f", "points": 2}
    cells[1].metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "written_why", "points": 3}
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(source))
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, course_id()) as gb:
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        gb.add_grade_cell("test_f", A, A, max_score=2, cell_type="code")
        gb.add_grade_cell("written_why", A, A, max_score=3, cell_type="markdown")
        gb.add_solution_cell("written_why", A, A)
        for student in ("ann", "ben", "cat"):
            gb.add_student(student)
            gb.add_submission(A, student)

        def grade(student, cell, auto=None, manual=None, pending=False):
            g = gb.find_grade(cell, A, A, student)
            g.auto_score, g.manual_score, g.needs_manual_grade = auto, manual, pending
        grade("ann", "test_f", auto=2)
        grade("ann", "written_why", manual=2.5)              # graded in the formgrader
        grade("ben", "test_f", auto=0)
        grade("ben", "written_why", pending=True)            # still waiting for a person
        grade("cat", "test_f", auto=1)
        grade("cat", "written_why", auto=0)                  # left blank: nbgrader scores 0
        gb.db.commit()
    return url, source


def test_rows_give_each_cell_and_leave_pending_written_answers_empty(gradebook):
    url, source = gradebook
    header, rows = export_rows(A, url, source, {"ann": "ok", "ben": "ok", "cat": "timeout", "dan": "missing notebook"})
    assert header == ["student_id", "status", "score", "max_score", "test_f", "written_why"]
    assert rows == [
        ["ann", "ok", "4.5", "5", "2", "2.5"],
        ["ben", "ok", "0", "5", "0", ""],
        ["cat", "timeout", "1", "5", "1", "0"],
        ["dan", "missing notebook", "0", "0", "", ""],
    ]
