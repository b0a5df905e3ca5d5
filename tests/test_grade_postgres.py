"""Grading past one machine: sharded graders sharing one PostgreSQL gradebook, on a real server.

Several graders share one gradebook through a database server; nbgrader takes any SQLAlchemy
URL as ``CourseDirectory.db_url``. This module starts its own PostgreSQL server from Debian's
packages (``make test`` installs ``postgresql``): a fresh cluster in a temporary folder,
listening only on a Unix socket there, run as an unprivileged user (the server refuses to run
as root). It grades one small class of ps1-basics twice: once by one grader into SQLite, and
once by two ``--shard K/2`` graders at the same time into PostgreSQL, each with its own
course folder as two machines would have, one of them killed halfway and rerun. The class's
``grades.csv``, exported from PostgreSQL alone, must be the single grader's byte for byte;
nothing may be lost or graded twice. Skipped only when the PostgreSQL server binaries are
not installed."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.grading import grade
from autograder.nbgrader_run import release, scratch_course
from autograder.notebook import nbgrader_meta, read
from conftest import OFFLINE_ENV
from postgres_server import NoPostgres, postgres_server

ASSIGNMENT = "ps1-basics"
SOURCE = REPO_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _sandbox(course: Path):
    """The grading sandbox, as the command uses it by default, once autograder/sandbox.py exists."""
    try:
        from autograder.sandbox import Sandbox
    except ImportError:
        return None
    return Sandbox.for_course(course)


@pytest.fixture(scope="module")
def postgres_url():
    try:
        with postgres_server() as urls:
            yield urls["gradebook"]
    except NoPostgres as exc:
        pytest.skip(str(exc))


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, **OFFLINE_ENV)  # the grading kernels inherit this environment
    return subprocess.Popen([sys.executable, "-m", "autograder", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{out[-4000:]}"
    return out


def _state(url: str) -> dict[str, tuple]:
    """The grading state every grader records in the gradebook (autograder.gradebook.STATE_TABLE)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT student, status, sha256, seconds FROM dlcourse_grading_state "
                                     "WHERE assignment = :a"), {"a": ASSIGNMENT}).all()
    except Exception:  # noqa: BLE001 - not created yet
        return {}
    finally:
        engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


# The class, and the shard autograder.gradebook.shard_share deals each student of it with N = 2.
SHARDS = {"ann": 0, "blank": 1, "corrupt": 0, "partial": 1, "solution": 0}
# Two graders on one machine stand for two machines: each its own course folder and its own
# kernel uids (on two machines both would use the default range), away from the low end of
# the default range that other grading runs use first.
SHARD_UIDS = ("61080-61089", "61090-61099")


@pytest.fixture(scope="module")
def graded(postgres_url, tmp_path_factory):
    """One class, graded by one grader into SQLite, and by two shards at once into one
    PostgreSQL gradebook (shard 1 killed after its first graded student, then rerun), then
    exported from PostgreSQL alone."""
    from autograder.gradebook import shard_share

    assert {s: k for k in (0, 1) for s in shard_share(SHARDS, k, 2)} == SHARDS
    tmp = tmp_path_factory.mktemp("grade-postgres")
    course_sqlite = scratch_course(tmp / "sqlite", [ASSIGNMENT])
    blank = release(ASSIGNMENT, root=course_sqlite, release_dir=tmp / "release") / f"{ASSIGNMENT}.ipynb"
    class_dir = tmp / "class"
    class_dir.mkdir()
    for student in ("solution", "ann"):
        shutil.copyfile(SOURCE, class_dir / f"{student}.ipynb")
    shutil.copyfile(blank, class_dir / "blank.ipynb")
    (class_dir / "corrupt.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')
    # The solution with its first answer left as released: a score between 0 and full.
    partial, released = read(SOURCE), read(blank)
    first = next(i for i, c in enumerate(partial.cells)
                 if nbgrader_meta(c).get("solution") and c.cell_type == "code")
    partial.cells[first].source = released.cells[first].source
    import nbformat
    nbformat.write(partial, str(class_dir / "partial.ipynb"))

    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE_ENV.items():
            mp.setenv(key, value)
        single = grade(ASSIGNMENT, class_dir, tmp / "out-sqlite", course_root=course_sqlite, jobs=2,
                       sandbox=_sandbox(course_sqlite))

    machines = [scratch_course(tmp / f"machine-{k}", [ASSIGNMENT]) for k in range(2)]
    unregistered = _cli("grade", ASSIGNMENT, str(class_dir), "--out", str(tmp / "out-early"), "--shard", "0/2",
                        "--db", postgres_url, "--course", str(machines[0]))
    early = unregistered.communicate(timeout=300)[0]
    _finish(_cli("register", ASSIGNMENT, "--db", postgres_url, "--course", str(machines[0])))

    def shard(k: int, out: str) -> subprocess.Popen:
        return _cli("grade", ASSIGNMENT, str(class_dir), "--out", str(tmp / out), "--shard", f"{k}/2",
                    "--db", postgres_url, "--course", str(machines[k]), "--jobs", "1",
                    "--kernel-uids", SHARD_UIDS[k])

    first, second = shard(0, "out-shard-0"), shard(1, "out-shard-1")
    deadline = time.monotonic() + 900
    # Shard 1 graded one notebook of its two.
    while not [s for s in _state(postgres_url) if SHARDS[s] == 1] and second.poll() is None:
        assert time.monotonic() < deadline, "shard 1 recorded nothing in 900 s"
        time.sleep(0.2)
    second.send_signal(signal.SIGKILL)
    second.communicate()
    before_rerun = _state(postgres_url)
    _finish(first)
    _finish(shard(1, "out-shard-1"))
    after = _state(postgres_url)
    # A second run of a finished shard grades nothing and writes the same grades.
    rerun = _finish(shard(0, "out-shard-0-rerun"))
    _finish(_cli("export", ASSIGNMENT, "--db", postgres_url, "--out", str(tmp / "out-export"),
                 "--course", str(machines[0]), "--feedback", str(tmp / "out-shard-0"), str(tmp / "out-shard-1")))
    # A late submission changes the roster the shards dealt from: a shard refuses it.
    late = tmp / "class-late"
    shutil.copytree(class_dir, late)
    shutil.copyfile(SOURCE, late / "zed.ipynb")
    moved = _cli("grade", ASSIGNMENT, str(late), "--out", str(tmp / "out-late"), "--shard", "0/2",
                 "--db", postgres_url, "--course", str(machines[0]), "--kernel-uids", SHARD_UIDS[0])
    late_said = moved.communicate(timeout=300)[0]
    return {"late": late_said, "late_code": moved.returncode, "single": single, "tmp": tmp, "machines": machines, "url": postgres_url, "early": early,
            "early_code": unregistered.returncode, "killed": before_rerun, "after": after, "rerun": rerun}


def test_postgresql_urls_have_a_driver():
    """``--db postgresql://...`` (the documented form) needs SQLAlchemy's default PostgreSQL
    driver, which is psycopg (3) since SQLAlchemy 2.1; create_engine imports it at once."""
    from sqlalchemy import create_engine

    try:
        create_engine("postgresql://grader@/gradebook?host=/nonexistent").dispose()
    except ImportError as exc:
        pytest.fail(f"postgresql:// gradebook URLs cannot work: {exc} "
                    "(SQLAlchemy's default PostgreSQL driver; add psycopg[binary] to requirements.in)")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _graded_cells() -> dict[str, dict]:
    return {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c) for c in read(SOURCE).cells
            if nbgrader_meta(c).get("grade")}


STATUSES = {"ann": "ok", "blank": "ok", "corrupt": "invalid notebook", "partial": "ok", "solution": "ok"}


def test_statuses(graded):
    assert {r.student: r.status for r in graded["single"]} == STATUSES
    exported = {r["student_id"]: r["status"] for r in _csv(graded["tmp"] / "out-export" / "grades.csv")}
    assert exported == STATUSES


def test_shards_refuse_an_unregistered_assignment(graded):
    # Two shards starting at once would both write the assignment's cells into the gradebook.
    assert graded["early_code"] == 2, graded["early"]
    assert f"python -m autograder register {ASSIGNMENT}" in " ".join(graded["early"].split())


def test_exact_scores_from_postgres(graded):
    cells = _graded_cells()
    autograded = {g: m["points"] for g, m in cells.items() if not g.startswith("written_")}
    written = [g for g in cells if g.startswith("written_")]
    assert autograded and written, "ps1-basics should have autograded and written cells"
    max_score = sum(m["points"] for m in cells.values())
    exported = _csv(graded["tmp"] / "out-export" / "grades.csv")
    assert list(exported[0]) == ["student_id", "status", "score", "max_score", *cells]
    rows = {r["student_id"]: r for r in exported}

    for student in ("solution", "ann"):
        row = rows[student]
        # Full marks on every autograded cell; a written answer waits for a human grader (empty).
        assert {g: row[g] for g in autograded} == {g: f"{p:g}" for g, p in autograded.items()}
        assert {g: row[g] for g in written} == {g: "" for g in written}
        assert (row["status"], row["score"], row["max_score"]) == (
            "ok", f"{sum(autograded.values()):g}", f"{max_score:g}")
    for student, status in (("blank", "ok"), ("corrupt", "invalid notebook")):
        row = rows[student]
        # The untouched release: every test fails and the unchanged written cells score 0.
        assert {g: row[g] for g in cells} == {g: "0" for g in cells}, student
        assert (row["status"], row["score"], row["max_score"]) == (status, "0", f"{max_score:g}")
    assert 0 < float(rows["partial"]["score"]) < sum(autograded.values())


def test_export_is_the_single_graders_csv(graded):
    """Two shards into PostgreSQL, one killed and rerun, give byte for byte the grades.csv of
    one grader that graded the whole class into SQLite."""
    single = (graded["tmp"] / "out-sqlite" / "grades.csv").read_bytes()
    assert (graded["tmp"] / "out-export" / "grades.csv").read_bytes() == single


def test_each_shard_grades_only_its_share(graded):
    for k in (0, 1):
        out = graded["tmp"] / f"out-shard-{k}"
        mine = sorted(s for s, shard in SHARDS.items() if shard == k)
        assert [r["student_id"] for r in _csv(out / "grades.csv")] == mine
        assert sorted(p.name for p in (out / "feedback").iterdir()) == mine
        # Nothing of the other shard's students reached this machine's course folder.
        course = graded["machines"][k]
        assert sorted(p.name for p in (course / "submitted").iterdir()) == [s for s in mine if s != "corrupt"]


def test_a_killed_shard_loses_and_repeats_nothing(graded):
    from sqlalchemy import create_engine, text

    killed, after = graded["killed"], graded["after"]
    finished = sorted(s for s in killed if SHARDS[s] == 1)
    assert len(finished) == 1, f"the kill should land mid-shard: {killed}"
    assert sorted(after) == sorted(SHARDS)
    for student in finished:  # recorded before the kill: not graded again by the rerun
        assert after[student] == killed[student], student
    engine = create_engine(graded["url"])
    try:
        with engine.connect() as conn:
            subs = conn.execute(text("SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY 1")).all()
            grades = conn.execute(text(
                "SELECT s.student_id, COUNT(*) FROM submitted_assignment s "
                "JOIN submitted_notebook n ON n.assignment_id = s.id "
                "JOIN grade g ON g.notebook_id = n.id GROUP BY 1")).all()
    finally:
        engine.dispose()
    assert dict(subs) == {s: 1 for s in SHARDS}
    assert dict(grades) == {s: len(_graded_cells()) for s in SHARDS}


def test_a_shard_refuses_a_changed_roster(graded):
    assert graded["late_code"] == 2, graded["late"]
    assert "differ from those the other shards of this 2-way split" in " ".join(graded["late"].split())
    assert _state(graded["url"]).keys() == SHARDS.keys()     # zed was not graded by anyone


def test_grades_are_in_the_postgres_gradebook(graded):
    from sqlalchemy import create_engine, text

    for course in graded["machines"]:
        assert not (course / "gradebook.db").exists(), "a sharded run made a SQLite gradebook"
    engine = create_engine(graded["url"])
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
            totals = conn.execute(text(
                "SELECT s.student_id, SUM(COALESCE(g.manual_score, g.auto_score, 0)) "
                "FROM submitted_assignment s "
                "JOIN submitted_notebook n ON n.assignment_id = s.id "
                "JOIN grade g ON g.notebook_id = n.id GROUP BY s.student_id ORDER BY 1")).all()
    finally:
        engine.dispose()
    rows = {r["student_id"]: float(r["score"]) for r in _csv(graded["tmp"] / "out-export" / "grades.csv")}
    # The written cells of the solutions have no score yet; the rest is what grades.csv shows.
    assert [(s, float(t)) for s, t in totals] == sorted(rows.items())


def test_rerun_of_a_finished_shard_grades_nothing(graded):
    tmp = graded["tmp"]
    assert (tmp / "out-shard-0-rerun" / "grades.csv").read_bytes() == (tmp / "out-shard-0" / "grades.csv").read_bytes()
    log_text = (tmp / "out-shard-0-rerun" / "grading.log").read_text()
    assert "3 students in shard 0/2; 0 to grade" in log_text, log_text[-2000:]


def test_export_gathers_every_students_feedback(graded):
    tmp = graded["tmp"]
    for student, k in SHARDS.items():
        page = tmp / "out-export" / "feedback" / student / f"{ASSIGNMENT}.html"
        assert page.read_bytes() == (tmp / f"out-shard-{k}" / "feedback" / student / page.name).read_bytes()


def test_export_with_a_shard_missing_says_whose_feedback_is_missing(graded, tmp_path):
    proc = _cli("export", ASSIGNMENT, "--db", graded["url"], "--out", str(tmp_path / "out"),
                "--course", str(graded["machines"][0]), "--feedback", str(graded["tmp"] / "out-shard-0"))
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out
    assert "no feedback page in the given folders for: blank, partial" in out
    # The grades are complete all the same: they come from the gradebook.
    assert (tmp_path / "out" / "grades.csv").read_bytes() == (graded["tmp"] / "out-sqlite" / "grades.csv").read_bytes()
