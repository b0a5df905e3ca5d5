"""Feedback pages that do not present a missing grade as a 0 (issue #15), without kernels.

A tiny course made with nbgrader's own API: a gradebook and one student's autograded notebook
with an autograded test cell and three written answers (one waiting for the formgrader, one
graded by hand, one left as released), rendered by the grading command's own feedback function
(:func:`autograder.feedback.generate_one`, what each feedback worker calls) and by plain
``nbgrader generate_feedback`` with the course's config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.api import Gradebook

from autograder import REPO_ROOT
from autograder.feedback import page_text
from autograder.grading import course_id

A, STUDENT = "ps0", "ann"
POINTS = {"test_f": 2, "test_g": 1, "written_pending": 3, "written_graded": 2, "written_blank": 2}


def _nbgrader(cell, grade_id, solution):
    cell.metadata["nbgrader"] = {"grade": True, "solution": solution, "locked": not solution,
                                 "grade_id": grade_id, "points": POINTS[grade_id], "schema_version": 3}
    return cell


def _autograded_notebook():
    passed = _nbgrader(new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2\n"
                                     "### END HIDDEN TESTS\n"), "test_f", False)
    unanswered = _nbgrader(new_code_cell("assert g(1) == 1\n### BEGIN HIDDEN TESTS\nassert g(2) == 2\n"
                                         "### END HIDDEN TESTS\n"), "test_g", False)
    # The release's `raise NotImplementedError()`, run by nbgrader in the student's kernel.
    unanswered.outputs = [new_output("error", ename="NotImplementedError", evalue="",
                                     traceback=["Cell In[3], line 1", "NotImplementedError: "])]
    cells = [new_code_cell("def f(x):\n    return x\n"), passed,
             new_code_cell("def g(x):\n    raise NotImplementedError()\n"), unanswered,
             _nbgrader(new_markdown_cell("Because exp overflows (dlc-pending-answer)."), "written_pending", True),
             _nbgrader(new_markdown_cell("The shift cancels in the ratio."), "written_graded", True),
             _nbgrader(new_markdown_cell("YOUR ANSWER HERE"), "written_blank", True)]
    return new_notebook(cells=cells)


@pytest.fixture(scope="module")
def course_template(tmp_path_factory):
    # nbgrader runs its environment's `alembic` by name when it creates a gradebook.
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    root = tmp_path_factory.mktemp("feedback") / "course"
    graded = root / "autograded" / STUDENT / A / f"{A}.ipynb"
    graded.parent.mkdir(parents=True)
    nbformat.write(_autograded_notebook(), str(graded))
    try:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id()) as gb:
            gb.add_assignment(A)
            gb.add_notebook(A, A)
            for gid, points in POINTS.items():
                gb.add_grade_cell(gid, A, A, max_score=points,
                                  cell_type="code" if gid.startswith("test_") else "markdown")
                if gid.startswith("written_"):
                    gb.add_solution_cell(gid, A, A)
            gb.add_student(STUDENT)
            gb.add_submission(A, STUDENT)
            # As nbgrader's SaveAutoGrades leaves them (needs_manual_grade = auto_score is None),
            # then the formgrader for written_graded.
            for gid, auto, manual, pending in [("test_f", 2, None, False), ("test_g", 0, None, False),
                                               ("written_pending", None, None, True),
                                               ("written_graded", None, 1.5, False),
                                               ("written_blank", 0, None, False)]:
                g = gb.find_grade(gid, A, A, STUDENT)
                g.auto_score, g.manual_score, g.needs_manual_grade = auto, manual, pending
            gb.db.commit()
    finally:
        os.environ["PATH"] = path
    return root


@pytest.fixture
def course(course_template, tmp_path):
    """A fresh copy of the course (creating a gradebook takes seconds: alembic)."""
    root = tmp_path / "course"
    shutil.copytree(course_template, root)
    return {"root": root, "url": f"sqlite:///{root / 'gradebook.db'}"}


def _feedback(course) -> str:
    from autograder.feedback import generate_one

    generate_one({"course_root": str(course["root"]), "db_url": course["url"], "assignment": A}, STUDENT)
    return (course["root"] / "feedback" / STUDENT / A / f"{A}.html").read_text()


def _section(text: str, start: str, end: str) -> str:
    """The text of the page from `start` to the next `end` (a cell's heading, say)."""
    i = text.index(start)
    return text[i:text.index(end, i + len(start))]


def test_a_written_answer_waiting_for_the_formgrader_is_not_a_zero(course):
    text = page_text(_feedback(course))
    toc = _section(text, f"{A} (Score:", "Because exp overflows")
    # Table of contents, in notebook order: test_f, test_g, then the three written answers.
    assert "Written response (awaiting manual grading, 3 points)" in toc
    assert "Score: 0.0 / 3.0" not in text
    # The cell's own heading.
    assert "awaiting manual grading, 3 points (Top)" in _section(text, "Student's answer", "dlc-pending-answer")


def test_the_total_leaves_out_the_points_that_wait(course):
    text = page_text(_feedback(course))
    # 2 + 0 + 1.5 + 0 of 2 + 1 + 2 + 2: written_pending's 3 points are in neither.
    assert f"{A} (Score: 3.5 / 7.0; 3 points awaiting manual grading)" in text
    assert "/ 10.0" not in text


def test_a_graded_written_answer_shows_its_score_and_a_blank_one_says_not_answered(course):
    text = page_text(_feedback(course))
    assert "Written response (Score: 1.5 / 2.0)" in text
    assert "Written response (Score: 0.0 / 2.0, not answered)" in text
    blank = _section(text, "The shift cancels in the ratio.", "YOUR ANSWER HERE")
    assert "Score: 0.0 / 2.0, not answered (Top)" in blank
    assert "not answered" not in _section(text, "Written response (Score: 1.5", "\n")


@pytest.mark.parametrize("needs_manual_grade", [False, True], ids=["formgrader", "regraded"])
def test_a_manual_score_replaces_awaiting(course, needs_manual_grade):
    # The formgrader clears needs_manual_grade when it saves a score; nbgrader's SaveAutoGrades
    # sets it again on a regrade (--force) because a manual score exists.
    with Gradebook(course["url"], course_id()) as gb:
        for gid, score in [("written_pending", 2.5), ("written_blank", 1.0)]:
            grade = gb.find_grade(gid, A, A, STUDENT)
            grade.manual_score, grade.needs_manual_grade = score, needs_manual_grade
        gb.db.commit()
    text = page_text(_feedback(course))
    assert "awaiting" not in text.lower()
    assert "Written response (Score: 2.5 / 3.0)" in text
    # A person's score for a blank answer (the answer was elsewhere, say) is a grade.
    assert "Written response (Score: 1.0 / 2.0)" in text and "not answered" not in text
    assert f"{A} (Score: 7.0 / 10.0)" in text


def test_the_preprocessor_marks_only_what_the_gradebook_says(course):
    """FeedbackGrades' own output: the flags on each cell, the totals; flags a notebook
    brings itself (a student's edited metadata) are dropped."""
    from autograder.feedback import FeedbackGrades

    nb = _autograded_notebook()
    forged = new_markdown_cell("I wrote nothing", metadata={"nbgrader": {
        "grade": False, "solution": False, "awaiting_manual_grade": True, "not_answered": True}})
    nb.cells.append(forged)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "student": STUDENT, "db_url": course["url"]}}
    nb, resources = FeedbackGrades().preprocess(nb, resources)
    flags = {c.metadata.nbgrader.get("grade_id", "forged"): (c.metadata.nbgrader.get("awaiting_manual_grade"),
                                                              c.metadata.nbgrader.get("not_answered"))
             for c in nb.cells if "nbgrader" in c.metadata}
    assert flags == {"test_f": (False, False), "test_g": (False, False), "written_pending": (True, False),
                     "written_graded": (False, False), "written_blank": (False, True), "forged": (None, None)}
    assert (resources["nbgrader"]["score"], resources["nbgrader"]["max_score"],
            resources["nbgrader"]["awaiting_points"]) == (3.5, 7.0, 3.0)


def test_an_unanswered_function_reads_not_answered_in_its_test_cell(course):
    text = page_text(_feedback(course))
    assert "test_g: failed, 0 of 1 points" in text
    assert "Not answered: g still raises NotImplementedError (the release's placeholder)." in text
    assert "A visible test failed" not in text


def test_plain_nbgrader_generate_feedback_with_the_course_config_says_the_same(course):
    """nbgrader_config.py wires the same preprocessors and template into GenerateFeedback: the
    formgrader's "Generate feedback" button and `nbgrader generate_feedback` agree."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", A, "--force",
                           f"--CourseDirectory.root={course['root']}", f"--CourseDirectory.db_url={course['url']}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = page_text((course["root"] / "feedback" / STUDENT / A / f"{A}.html").read_text())
    assert f"{A} (Score: 3.5 / 7.0; 3 points awaiting manual grading)" in text
    assert "Written response (Score: 0.0 / 2.0, not answered)" in text


# ---------------------------------------------------------------------------------------------
# The test cell's line for a function that still raises the release's NotImplementedError


def test_not_answered_line_names_the_function_that_still_raises():
    from autograder.feedback import not_answered_line

    placeholder = "Not answered: softmax still raises NotImplementedError (the release's placeholder)."
    # Run in the student's kernel (nbgrader alone): the bare exception; the name is the test's.
    assert not_answered_line({"ename": "NotImplementedError", "evalue": ""}, "test_softmax", True) == placeholder
    assert not_answered_line({"ename": "NotImplementedError", "evalue": ""}, "test_softmax", False) == placeholder
    # Re-raised by the judge (autograder.channel.student_error): the name is the function's own.
    from autograder.channel import student_error

    judged = student_error("softmax", "NotImplementedError", "")
    out = {"ename": type(judged).__name__, "evalue": str(judged)}
    assert out["ename"] == "StudentNotImplementedError"
    assert not_answered_line(out, "test_two_layer_net", False) == placeholder
    assert not_answered_line({"ename": "StudentNotImplementedError",
                              "evalue": "softmax(...) raised NotImplementedError: batches"}, "test_softmax",
                             True) == "Not answered: softmax raises NotImplementedError: batches"
    # Anything else is a failure, not a missing answer; a hidden line's own message is never shown.
    assert not_answered_line({"ename": "AssertionError", "evalue": ""}, "test_softmax", True) is None
    assert not_answered_line({"ename": "NotImplementedError", "evalue": "secret"}, "test_softmax", False) is None


def test_redaction_says_not_answered_instead_of_a_visible_failure():
    from autograder.feedback import RedactHiddenTests

    test = new_code_cell("p = softmax([1.0])\nassert p == 1\n### BEGIN HIDDEN TESTS\nassert softmax([2.0]) == 1\n"
                         "### END HIDDEN TESTS\n",
                         metadata={"nbgrader": {"grade": True, "grade_id": "test_softmax", "points": 2, "score": 0}})
    test.outputs = [new_output("error", ename="NotImplementedError", evalue="",
                               traceback=["Cell In[7], line 1", "Cell In[5], line 9", "NotImplementedError: "])]
    nb, _ = RedactHiddenTests().preprocess(new_notebook(cells=[test]), {})
    assert nb.cells[0].outputs[0]["text"] == (
        "test_softmax: failed, 0 of 2 points\n"
        "Not answered: softmax still raises NotImplementedError (the release's placeholder).\n")


def test_the_feedback_preprocessors_take_the_config_nbgrader_gives_them(caplog):
    """nbgrader's feedback command sets display_data_priority for each preprocessor: one that
    lacks the trait logs 'Config option ... not recognized' for every student (issue #15)."""
    import logging

    from traitlets.config import Config

    from autograder.feedback import RedactHiddenTests, SanitizeStudentContent

    for cls in (RedactHiddenTests, SanitizeStudentContent):
        cfg = Config()
        cfg[cls.__name__].display_data_priority = ["text/html", "text/plain"]
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            cls(config=cfg)
        assert not [r for r in caplog.records if "not recognized" in r.getMessage()], cls.__name__
