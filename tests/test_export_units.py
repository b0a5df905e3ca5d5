"""grades.csv from the gradebook alone (autograder.gradebook), without kernels.

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


# ---------------------------------------------------------------------------------------------
# Shards, the grading state in the gradebook, and the class export (autograder.gradebook)


def test_shards_deal_the_class_evenly():
    from autograder.gradebook import parse_shard, shard_share

    students = [f"s{i:04d}" for i in range(1000)]
    shares = [shard_share(reversed(students), k, 25) for k in range(25)]
    assert sorted(sum(shares, [])) == students          # every student in exactly one shard
    assert {len(share) for share in shares} == {40}     # at most one apart in general
    assert [len(shard_share(students[:12], k, 5)) for k in range(5)] == [3, 3, 2, 2, 2]
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_a_shard_refuses_a_roster_other_shards_did_not_deal_from(gradebook):
    from autograder.gradebook import GradebookError, check_roster

    url, _ = gradebook
    check_roster(url, A, 2, ["ann", "ben", "cat"])          # the first shard records it
    check_roster(url, A, 2, ["cat", "ann", "ben"])          # the other shard, a rerun: the same
    with pytest.raises(GradebookError, match=r"differ from those .* \(3 students then, 4 now\)"):
        check_roster(url, A, 2, ["ann", "ben", "cat", "dan"])   # a late submission
    with pytest.raises(GradebookError, match="differ"):
        check_roster(url, A, 2, ["ann", "ben"])
    check_roster(url, A, 3, ["ann", "ben", "cat", "dan"])   # another split is another deal
    with pytest.raises(GradebookError, match="empty roster"):
        check_roster(url, A, 4, [])                          # a shard that found no submissions


def test_grading_state_is_shared_through_the_gradebook(gradebook):
    from autograder.gradebook import GradingState

    url, _ = gradebook
    one = GradingState(url, A)
    one.record({"student": "ann", "status": "ok", "sha256": "aa", "seconds": 3.5})
    one.record({"student": "ben", "status": "timeout", "detail": "cell 4", "sha256": "bb", "seconds": 9.0})
    one.record({"student": "ann", "status": "ok", "sha256": "a2", "seconds": 4.0})   # regraded: replaced
    other = GradingState(url, A)      # another grader (machine) on the same database
    assert other.data == {
        "ann": {"student": "ann", "status": "ok", "detail": "", "sha256": "a2", "seconds": 4.0},
        "ben": {"student": "ben", "status": "timeout", "detail": "cell 4", "sha256": "bb", "seconds": 9.0}}
    assert other.done("ann", "a2") and not other.done("ann", "aa") and not other.done("cat", "")
    assert GradingState(url, "another-assignment").data == {}
    one.close(), other.close()


def test_export_class_writes_the_recorded_students_and_gathers_feedback(gradebook, tmp_path):
    from autograder.gradebook import GradebookError, GradingState, check_roster, export_class

    url, source = gradebook
    course = tmp_path / "course"
    (course / "solutions" / A).mkdir(parents=True)
    source.rename(course / "solutions" / A / f"{A}.ipynb")
    # Graded by plain nbgrader (no state of the grade command): exported all the same.
    assert export_class(A, url, tmp_path / "plain", course_root=course)["students"] == 3
    assert [r.split(",")[:2] for r in (tmp_path / "plain" / "grades.csv").read_text().splitlines()[1:]] == [
        ["ann", "graded by nbgrader"], ["ben", "graded by nbgrader"], ["cat", "graded by nbgrader"]]
    state = GradingState(url, A)
    for student, status in (("ann", "ok"), ("ben", "ok"), ("cat", "timeout")):
        state.record({"student": student, "status": status})
    state.close()
    shards = [tmp_path / "shard-0", tmp_path / "shard-1"]
    for shard, students in zip(shards, (["ann"], ["ben", "cat"])):
        for student in students:
            page = shard / "feedback" / student / f"{A}.html"
            page.parent.mkdir(parents=True)
            page.write_text(f"<p>{student}</p>")
    done = export_class(A, url, tmp_path / "out", course_root=course, feedback_from=shards[:1])
    assert done == {"students": 3, "feedback": 1, "missing_feedback": ["ben", "cat"], "not_graded": []}
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert rows == ["student_id,status,score,max_score,test_f,written_why",
                    "ann,ok,4.5,5,2,2.5", "ben,ok,0,5,0,", "cat,timeout,1,5,1,0"]
    done = export_class(A, url, tmp_path / "out", course_root=course, feedback_from=shards)
    assert done["missing_feedback"] == []
    assert (tmp_path / "out" / "feedback" / "cat" / f"{A}.html").read_text() == "<p>cat</p>"
    # Two different pages for one student (two graders disagree): an error, not a silent pick.
    clash = tmp_path / "shard-2" / "feedback" / "ann" / f"{A}.html"
    clash.parent.mkdir(parents=True)
    clash.write_text("<p>other</p>")
    with pytest.raises(GradebookError, match="two different feedback pages for ann"):
        export_class(A, url, tmp_path / "out", course_root=course, feedback_from=[*shards, tmp_path / "shard-2"])
    with pytest.raises(GradebookError, match="no feedback/ folder"):
        export_class(A, url, tmp_path / "out", course_root=course, feedback_from=[tmp_path / "nowhere"])
    with pytest.raises(GradebookError, match="is one of the --feedback folders"):
        export_class(A, url, shards[0], course_root=course, feedback_from=shards)
    # A student on the shards' roster whom no shard has graded yet is a row, not a silent gap.
    check_roster(url, A, 2, ["ann", "ben", "cat", "dan"])
    done = export_class(A, url, tmp_path / "out", course_root=course, feedback_from=shards)
    assert done["not_graded"] == ["dan"] and done["missing_feedback"] == []
    assert (tmp_path / "out" / "grades.csv").read_text().splitlines()[-1] == "dan,not graded,0,0,,"
