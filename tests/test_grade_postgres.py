"""The grade command with a PostgreSQL gradebook (``--db postgresql://...``), on a real server.

Several graders share one gradebook through a database server; nbgrader takes any SQLAlchemy
URL as ``CourseDirectory.db_url``. This module starts its own PostgreSQL server from Debian's
packages (``make test`` installs ``postgresql``): a fresh cluster in a temporary folder,
listening only on a Unix socket there, run as an unprivileged user (the server refuses to run
as root). It grades a small class of ps1-basics into it and into SQLite, and checks the exact
per-cell scores, that both give the same grades.csv, and that the grades really are in
PostgreSQL. Skipped only when the PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder.grading import grade
from autograder.nbgrader_run import release, scratch_course
from autograder.notebook import nbgrader_meta, read
from conftest import OFFLINE_ENV

ASSIGNMENT = "ps1-basics"
SOURCE = REPO_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _pg_bindir() -> Path | None:
    """The newest Debian PostgreSQL server install (/usr/lib/postgresql/<major>/bin)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if Path(p).with_name("pg_ctl").exists() and Path(p).with_name("postgres").exists()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def _server_user() -> pwd.struct_passwd:
    """Who runs the server: ourselves, or when we are root the package's `postgres` user."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root and there is no `postgres` or `nobody` user to run the server as")


def _sandbox(course: Path):
    """The grading sandbox, as the command uses it by default, once autograder/sandbox.py exists."""
    try:
        from autograder.sandbox import Sandbox
    except ImportError:
        return None
    return Sandbox.for_course(course)


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin/initdb; "
                    "apt-get install postgresql, or `make sysdeps`)")
    user = _server_user()

    def as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
        switch = {} if os.geteuid() != 0 else {"user": user.pw_uid, "group": user.pw_gid,
                                                "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(base)}
        return subprocess.run([str(bindir / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                              env=env, timeout=120, **switch, **kw)

    # Not under pytest's tmp_path (nor $TMPDIR, as root): its parents are private to us, and
    # the server user must reach its data directory and socket.
    base = Path(tempfile.mkdtemp(prefix="dlc-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    started = False
    try:
        proc = as_server_user(["initdb", "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8",
                               "--no-locale", "--no-sync"])
        assert proc.returncode == 0, f"initdb failed:\n{proc.stdout}\n{proc.stderr}"
        with open(data / "postgresql.conf", "a") as conf:
            # No TCP at all: the socket in `base` is the only way in. fsync off: a test cluster.
            conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{base}'\nfsync = off\n")
        proc = as_server_user(["pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w",
                               "-t", "60", "start"])
        started = proc.returncode == 0
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        assert started, f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{log}"
        proc = subprocess.run([str(bindir / "createdb"), "-h", str(base), "-U", "grader", "gradebook"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"createdb failed:\n{proc.stdout}\n{proc.stderr}"
        yield f"postgresql://grader@/gradebook?host={base}"
    finally:
        if started and as_server_user(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]).returncode:
            as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def graded(postgres_url, tmp_path_factory):
    """The same class graded twice: PostgreSQL gradebook, then SQLite (each its own course)."""
    tmp = tmp_path_factory.mktemp("grade-postgres")
    course_sqlite = scratch_course(tmp / "sqlite", [ASSIGNMENT])
    blank = release(ASSIGNMENT, root=course_sqlite, release_dir=tmp / "release") / f"{ASSIGNMENT}.ipynb"
    class_dir = tmp / "class"
    class_dir.mkdir()
    shutil.copyfile(SOURCE, class_dir / "solution.ipynb")
    shutil.copyfile(blank, class_dir / "blank.ipynb")
    (class_dir / "corrupt.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')

    course_pg = scratch_course(tmp / "pg", [ASSIGNMENT])
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE_ENV.items():  # the grading kernels inherit this environment
            mp.setenv(key, value)
        # The PostgreSQL course records the assignment itself (nbgrader generate_assignment
        # with the postgresql:// URL): nothing was released into that gradebook before.
        pg = grade(ASSIGNMENT, class_dir, tmp / "out-pg", course_root=course_pg, db_url=postgres_url,
                   jobs=2, sandbox=_sandbox(course_pg))
        sqlite = grade(ASSIGNMENT, class_dir, tmp / "out-sqlite", course_root=course_sqlite, jobs=2,
                       sandbox=_sandbox(course_sqlite))
        # A second run finds every student graded: it re-exports from PostgreSQL, grades nothing.
        rerun = grade(ASSIGNMENT, class_dir, tmp / "out-pg-rerun", course_root=course_pg,
                      db_url=postgres_url, jobs=2, sandbox=_sandbox(course_pg))
    return {"pg": pg, "sqlite": sqlite, "rerun": rerun, "tmp": tmp, "course_pg": course_pg,
            "url": postgres_url}


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


def test_statuses(graded):
    assert [(r.student, r.status) for r in graded["pg"]] == [
        ("blank", "ok"), ("corrupt", "invalid notebook"), ("solution", "ok")]
    assert [(r.student, r.status) for r in graded["sqlite"]] == [
        ("blank", "ok"), ("corrupt", "invalid notebook"), ("solution", "ok")]


def test_exact_scores_from_postgres(graded):
    cells = _graded_cells()
    autograded = {g: m["points"] for g, m in cells.items() if not g.startswith("written_")}
    written = [g for g in cells if g.startswith("written_")]
    assert autograded and written, "ps1-basics should have autograded and written cells"
    max_score = sum(m["points"] for m in cells.values())
    rows = {r["student_id"]: r for r in _csv(graded["tmp"] / "out-pg" / "grades.csv")}
    assert list(_csv(graded["tmp"] / "out-pg" / "grades.csv")[0]) == [
        "student_id", "status", "score", "max_score", *cells]

    solution = rows["solution"]
    # Full marks on every autograded cell; a written answer waits for a human grader (empty).
    assert {g: solution[g] for g in autograded} == {g: f"{p:g}" for g, p in autograded.items()}
    assert {g: solution[g] for g in written} == {g: "" for g in written}
    assert (solution["status"], solution["score"], solution["max_score"]) == (
        "ok", f"{sum(autograded.values()):g}", f"{max_score:g}")

    for student, status in (("blank", "ok"), ("corrupt", "invalid notebook")):
        row = rows[student]
        # The untouched release: every test fails and the unchanged written cells score 0.
        assert {g: row[g] for g in cells} == {g: "0" for g in cells}, student
        assert (row["status"], row["score"], row["max_score"]) == (status, "0", f"{max_score:g}")


def test_same_grades_csv_as_sqlite(graded):
    pg = (graded["tmp"] / "out-pg" / "grades.csv").read_text()
    sqlite = (graded["tmp"] / "out-sqlite" / "grades.csv").read_text()
    assert pg == sqlite


def test_grades_are_in_the_postgres_gradebook(graded):
    from sqlalchemy import create_engine, text

    assert not (graded["course_pg"] / "gradebook.db").exists(), "the PostgreSQL run made a SQLite gradebook"
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
    rows = {r["student_id"]: float(r["score"]) for r in _csv(graded["tmp"] / "out-pg" / "grades.csv")}
    # The written cells of `solution` have no score yet; the rest is what grades.csv shows.
    assert [(s, float(t)) for s, t in totals] == sorted(rows.items())


def test_rerun_reexports_without_grading(graded):
    assert [(r.student, r.status, r.sha256, r.seconds) for r in graded["rerun"]] == [
        (r.student, r.status, r.sha256, r.seconds) for r in graded["pg"]]
    assert ((graded["tmp"] / "out-pg-rerun" / "grades.csv").read_text()
            == (graded["tmp"] / "out-pg" / "grades.csv").read_text())
    for student in ("solution", "blank", "corrupt"):
        assert (graded["tmp"] / "out-pg-rerun" / "feedback" / student / f"{ASSIGNMENT}.html").is_file()
