"""The intake of a class (autograder/submissions.py), without kernels: milliseconds per test.

Folders, zips and nbgrader's submitted/ layout go in; one Intake per student comes out, with
the notebook copied to submitted/<student>/<assignment>/<assignment>.ipynb or the reason
there is nothing to grade. The grading suites (test_grade.py) check the same statuses end to
end on a real class; these tests pin each rule on its own.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import submissions
from autograder.submissions import SubmissionsError, import_submissions

A = "ps0"


def _nb(path: Path, marker: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {marker!r}")]), str(path))
    return path


def _by_student(intakes) -> dict:
    return {i.student: i for i in intakes}


@pytest.fixture
def klass(tmp_path):
    k = tmp_path / "class"
    _nb(k / "ann.ipynb", "ann")
    _nb(k / "ben" / "deep" / "homework final.ipynb", "ben")              # renamed, nested
    _nb(k / "cat" / "notes.ipynb")
    _nb(k / "cat" / f"{A}.ipynb", "cat")                                  # two: the named one wins
    _nb(k / "dan" / "a.ipynb")
    _nb(k / "dan" / "b.ipynb")                                            # two, neither named
    (k / "eve").mkdir()
    (k / "eve" / "answers.pdf").write_bytes(b"%PDF-1.4")                 # no notebook
    (k / "fay.ipynb").write_bytes(b"")                                   # empty
    (k / "gus.ipynb").write_text('{"cells": [')                          # not JSON
    _nb(k / "bad id!.ipynb")                                              # not a usable id
    _nb(k / ".ipynb_checkpoints" / "ann-checkpoint.ipynb")               # ignored
    _nb(k / "__MACOSX" / "ann.ipynb")                                     # ignored
    (k / "readme.txt").write_text("not a student")                       # ignored
    return k


def test_each_student_gets_one_intake_with_the_right_status(klass, tmp_path):
    got = _by_student(import_submissions(A, klass, tmp_path / "submitted"))
    assert {s: i.status for s, i in got.items()} == {
        "ann": "ok", "ben": "ok", "cat": "ok", "dan": "several notebooks", "eve": "missing notebook",
        "fay": "invalid notebook", "gus": "invalid notebook", "bad id!": "invalid student id"}
    assert got["ben"].detail == "renamed from homework final.ipynb"
    assert got["dan"].detail == "dan/a.ipynb, dan/b.ipynb"
    assert got["fay"].detail == "the file is empty"
    assert got["gus"].detail.startswith(("NotJSONError", "JSONDecodeError")), got["gus"].detail


def test_a_graded_notebook_is_copied_to_nbgraders_layout(klass, tmp_path):
    submitted = tmp_path / "submitted"
    got = _by_student(import_submissions(A, klass, submitted))
    for student in ("ann", "ben", "cat"):
        dest = submitted / student / A / f"{A}.ipynb"
        assert got[student].notebook == dest
        assert nbformat.read(str(dest), 4).cells[0].source == f"x = {student!r}"
        assert len(got[student].sha256) == 64
    # Nothing is made for a student with nothing to grade.
    assert sorted(p.name for p in submitted.iterdir()) == ["ann", "ben", "cat"]


def test_a_resubmission_replaces_the_old_notebook_and_changes_the_digest(klass, tmp_path):
    submitted = tmp_path / "submitted"
    first = _by_student(import_submissions(A, klass, submitted))["ann"]
    _nb(klass / "ann.ipynb", "ann, second try")
    second = _by_student(import_submissions(A, klass, submitted))["ann"]
    assert second.sha256 != first.sha256
    assert [p.name for p in (submitted / "ann" / A).glob("*.ipynb")] == [f"{A}.ipynb"]
    assert "second try" in (submitted / "ann" / A / f"{A}.ipynb").read_text()


def test_a_notebook_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", 100)
    _nb(tmp_path / "class" / "ann.ipynb", "x" * 200)
    intake = import_submissions(A, tmp_path / "class", tmp_path / "submitted")[0]
    assert intake.status == "invalid notebook" and "limit" in intake.detail


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _nb_bytes(marker: str) -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {marker!r}")])).encode()


def test_a_zip_with_one_wrapping_folder_is_a_class(tmp_path):
    archive = _zip(tmp_path / "export.zip", {"course-export/ann.ipynb": _nb_bytes("ann"),
                                            "course-export/ben/ps0.ipynb": _nb_bytes("ben"),
                                            "__MACOSX/course-export/._ann.ipynb": b"junk"})
    got = _by_student(import_submissions(A, archive, tmp_path / "submitted"))
    assert {s: i.status for s, i in got.items()} == {"ann": "ok", "ben": "ok"}


def test_a_zip_holding_one_students_folder_is_not_unwrapped(tmp_path):
    archive = _zip(tmp_path / "one.zip", {"ann/ps0.ipynb": _nb_bytes("ann")})
    assert [(i.student, i.status) for i in import_submissions(A, archive, tmp_path / "submitted")] == [("ann", "ok")]


def test_a_zip_member_cannot_escape_the_unpack_folder(tmp_path):
    archive = _zip(tmp_path / "evil.zip", {"../../escaped.ipynb": _nb_bytes("x"), "ann.ipynb": _nb_bytes("ann")})
    import_submissions(A, archive, tmp_path / "submitted")
    assert not list(tmp_path.parent.glob("escaped.ipynb")) and not list(tmp_path.glob("escaped.ipynb"))


def test_bad_sources_stop_the_command_with_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(SubmissionsError, match="does not exist"):
        import_submissions(A, tmp_path / "nowhere", tmp_path / "submitted")
    (tmp_path / "grades.csv").write_text("a,b\n")
    with pytest.raises(SubmissionsError, match="neither a folder nor a .zip"):
        import_submissions(A, tmp_path / "grades.csv", tmp_path / "submitted")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SubmissionsError, match="not a readable zip"):
        import_submissions(A, tmp_path / "broken.zip", tmp_path / "submitted")
    monkeypatch.setattr(submissions, "MAX_ZIP_BYTES", 1000)
    bomb = _zip(tmp_path / "bomb.zip", {"ann.ipynb": b" " * 5000})
    with pytest.raises(SubmissionsError, match="unpacks to more than"):
        import_submissions(A, bomb, tmp_path / "submitted")


def test_without_a_source_the_submitted_folder_is_read_as_it_is(tmp_path):
    """After `nbgrader collect`: submitted/<student>/<assignment>/ already holds the notebooks."""
    submitted = tmp_path / "submitted"
    _nb(submitted / "ann" / A / f"{A}.ipynb", "ann")
    (submitted / "ben" / A).mkdir(parents=True)
    got = _by_student(import_submissions(A, None, submitted))
    assert (got["ann"].status, got["ben"].status) == ("ok", "missing notebook")
    assert got["ann"].notebook == submitted / "ann" / A / f"{A}.ipynb"
    assert import_submissions(A, None, tmp_path / "empty") == []


def test_an_id_with_a_trailing_newline_is_invalid_not_a_second_ann(tmp_path):
    """``re.match`` with ``$`` accepts "ann\\n": it would become a second student beside ann, in
    the gradebook and as a CSV row with a line break in it."""
    k = tmp_path / "class"
    _nb(k / "ann.ipynb")
    _nb(k / "ann\n.ipynb")
    _nb(k / ("x" * 101 + ".ipynb"))          # longer than an id may be
    got = _by_student(import_submissions("ps0", k, tmp_path / "submitted"))
    assert {s: i.status for s, i in got.items()} == {
        "ann": "ok", "ann\n": "invalid student id", "x" * 101: "invalid student id"}
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["ann"]
