"""The gradebook: nbgrader's database, plus the one table the grade command adds to it.

nbgrader's gradebook (``nbgrader.api.Gradebook``) holds the assignment, the students and
every cell's score. The grade command also needs, per student, *how* the grading went
(``ok``, ``timeout``, ``missing notebook`` …) and which file was graded (its SHA-256), so
that a rerun skips what is already graded. That record lives in the same database, in the
table ``dlcourse_grading_state``, and not in a file next to one grader: then graders on
several machines (``--shard K/N``) that share one PostgreSQL gradebook also share it,
``python -m autograder export`` writes the whole class's ``grades.csv`` from the database
alone, and a shard that was killed and rerun on another machine skips what it had finished.
nbgrader's own tables and its alembic migrations are not touched: the table has its own
SQLAlchemy metadata and is created when missing.

Sharding deals the class's sorted student ids round-robin (:func:`shard_share`), so the N
shares differ by at most one student and the slowest shard is not much slower than the rest.
(A hash of the id would not depend on the rest of the class, but 1,000 students hashed into
25 shards give shares from about 29 to 55, and the largest decides the wall time.) Dealing
depends on the whole roster, so every shard records the roster it dealt from in the
gradebook (``dlcourse_shard_roster``) and a shard that sees a different one refuses to start:
no student is graded by two shards or by none because the submissions changed in between.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, delete, inspect, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from traitlets.config.loader import PyFileConfigLoader

from autograder import REPO_ROOT, notebook as nbtools

# Only one thread of a grader talks to the gradebook at a time (SQLite needs it; it costs a
# PostgreSQL gradebook nothing measurable: a grade spends seconds in kernels per query).
DB_LOCK = threading.RLock()


class GradebookError(RuntimeError):
    """The gradebook cannot be used as asked; the message says what to do."""


def course_id() -> str:
    return PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config().CourseDirectory.course_id


# ---------------------------------------------------------------------------------------------
# Shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), K from 0 to N-1 (the numbering of Kubernetes' JOB_COMPLETION_INDEX)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N, e.g. 0/4, got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N (K counts from 0, as JOB_COMPLETION_INDEX does), got {text!r}")
    return k, n


def shard_share(students, k: int, n: int) -> list[str]:
    """The students shard ``k`` of ``n`` grades: every n-th of the sorted ids, from the k-th."""
    return sorted(students)[k::n]


def roster_digest(students) -> str:
    return hashlib.sha256("\n".join(sorted(students)).encode("utf-8")).hexdigest()


def check_roster(db_url: str, assignment: str, n: int, students) -> None:
    """Record the roster that the shards of an ``n``-way split deal from, or check that it is
    the one recorded (another shard of the split, or a rerun of this one, saw the same)."""
    digest, count = roster_digest(students), len(set(students))
    if not count:
        raise GradebookError("no submissions to deal: a shard never records an empty roster (check SUBMISSIONS, "
                             "or the course's submitted/ folder when none is given)")
    engine = create_engine(db_url)
    key = (ROSTER_TABLE.c.course_id == course_id(), ROSTER_TABLE.c.assignment == assignment,
           ROSTER_TABLE.c.shards == n)
    try:
        GradingState.create_table(db_url, engine)
        with DB_LOCK:
            for _ in range(2):  # a shard starting at the same moment may insert first
                with engine.begin() as conn:
                    row = conn.execute(select(ROSTER_TABLE).where(*key)).mappings().first()
                    if row is None:
                        try:
                            conn.execute(ROSTER_TABLE.insert().values(
                                course_id=course_id(), assignment=assignment, shards=n,
                                roster_sha256=digest, students=count, ids="\n".join(sorted(set(students)))))
                            return
                        except IntegrityError:  # another shard inserted first: compare with it
                            continue
                if row["roster_sha256"] != digest:
                    raise GradebookError(
                        f"the submissions differ from those the other shards of this {n}-way split dealt "
                        f"from ({row['students']} students then, {count} now): shards would overlap or miss "
                        f"students. Grade the new submissions without --shard (graded students are "
                        f"skipped), or split again with another N")
                return
            raise GradebookError("could not record the shards' roster in the gradebook")
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# nbgrader's tables


def assignment_registered(assignment: str, db_url: str, source_nb: Path | None = None) -> bool:
    """Whether the gradebook holds the assignment; with ``source_nb``, completely: nbgrader
    records the assignment before its notebook and cells, so a register that was killed half-way
    leaves an assignment that autograde cannot use. Its graded cells must be the source's."""
    from nbgrader.api import Gradebook, MissingEntry

    with DB_LOCK, Gradebook(db_url, course_id()) as gb:
        try:
            recorded = gb.find_assignment(assignment)
        except MissingEntry:
            return False
        if source_nb is None:
            return True
        cells = {cell.name for nb in recorded.notebooks for cell in nb.grade_cells}
    wanted = {nbtools.nbgrader_meta(c)["grade_id"] for c in nbtools.read(source_nb).cells
              if nbtools.nbgrader_meta(c).get("grade")}
    return cells == wanted


def register_assignment(assignment: str, course_root: Path, db_url: str) -> bool:
    """Record the assignment in the gradebook (nbgrader generate_assignment) if it is not there,
    and create the grading-state table. Returns whether anything was recorded.

    Not safe to run twice at the same moment on one database (nbgrader writes the assignment's
    cells one by one): sharded graders need it done once before they start
    (``python -m autograder register``)."""
    from autograder.nbgrader_run import GradingError, release

    GradingState.create_table(db_url)
    source_nb = Path(course_root) / "solutions" / assignment / f"{assignment}.ipynb"
    if assignment_registered(assignment, db_url, source_nb):
        return False
    with tempfile.TemporaryDirectory(prefix="dlc-release-") as tmp:
        try:
            release(assignment, root=course_root, release_dir=Path(tmp) / "release", db_url=db_url)
        except GradingError as exc:
            raise GradebookError(str(exc)) from exc
    return True


def zero_submission(assignment: str, student: str, db_url: str) -> None:
    """A student with nothing gradable: a submission with 0 on every cell, as nbgrader does for
    a missing notebook, and no stale autograded copy of an earlier submission."""
    from nbgrader.api import Gradebook

    with DB_LOCK, Gradebook(db_url, course_id()) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = 0
                grade.manual_score = None
                grade.needs_manual_grade = False
        gb.db.commit()


def export_rows(assignment: str, db_url: str, source_nb: Path, students: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """grades.csv: a row per student in ``students`` (id -> status), a column per graded cell."""
    from nbgrader.api import Gradebook, MissingEntry

    nb = nbtools.read(source_nb)
    grade_ids = [nbtools.nbgrader_meta(c)["grade_id"] for c in nb.cells if nbtools.nbgrader_meta(c).get("grade")]
    header = ["student_id", "status", "score", "max_score", *grade_ids]
    rows = []
    with DB_LOCK, Gradebook(db_url, course_id()) as gb:
        for student, status in sorted(students.items()):
            cells, total, max_total = {}, 0.0, 0.0
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                sub = None
            for nb_sub in (sub.notebooks if sub else []):
                for grade in nb_sub.grades:
                    max_total += grade.max_score
                    pending = grade.manual_score is None and grade.needs_manual_grade
                    score = None if pending else grade.score
                    cells[grade.name] = "" if score is None else _fmt(score)
                    total += score or 0.0
            rows.append([student, status, _fmt(total), _fmt(max_total),
                         *[cells.get(g, "") for g in grade_ids]])
    return header, rows


def write_grades_csv(out_dir: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    dest = out_dir / "grades.csv"
    tmp = out_dir / "grades.csv.tmp"
    tmp.write_text(buf.getvalue())
    os.replace(tmp, dest)  # a reader never sees half a file
    return dest


def _fmt(x: float) -> str:
    return f"{float(x):g}"


# ---------------------------------------------------------------------------------------------
# How each student's grading went, kept in the gradebook's database


_METADATA = MetaData()
STATE_TABLE = Table(
    "dlcourse_grading_state", _METADATA,
    Column("course_id", String(128), primary_key=True),
    Column("assignment", String(128), primary_key=True),
    Column("student", String(128), primary_key=True),
    Column("status", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("sha256", String(64), nullable=False),   # of the graded file ("" when there was none)
    Column("seconds", Float, nullable=False),
)
ROSTER_TABLE = Table(
    "dlcourse_shard_roster", _METADATA,
    Column("course_id", String(128), primary_key=True),
    Column("assignment", String(128), primary_key=True),
    Column("shards", Integer, primary_key=True, autoincrement=False),
    Column("roster_sha256", String(64), nullable=False),
    Column("students", Integer, nullable=False),
    Column("ids", Text, nullable=False),   # the roster itself, one id per line: export lists them all
)


class GradingState:
    """student -> {student, status, detail, sha256, seconds} for one assignment."""

    def __init__(self, db_url: str, assignment: str):
        self.assignment = assignment
        self.course = course_id()
        # pool_pre_ping: a run holds this engine for hours; a connection dropped meanwhile
        # (a proxy's idle timeout, a failover) is replaced instead of failing a record.
        self.engine = create_engine(db_url, pool_pre_ping=True)
        self.create_table(db_url, self.engine)
        with DB_LOCK, self.engine.connect() as conn:
            rows = conn.execute(select(STATE_TABLE).where(
                STATE_TABLE.c.course_id == self.course, STATE_TABLE.c.assignment == assignment)).mappings().all()
        self.data: dict[str, dict] = {
            r["student"]: {k: r[k] for k in ("student", "status", "detail", "sha256", "seconds")} for r in rows}

    @staticmethod
    def create_table(db_url: str, engine=None) -> None:
        own = engine is None
        engine = engine or create_engine(db_url)
        try:
            with DB_LOCK:
                try:
                    _METADATA.create_all(engine)
                except SQLAlchemyError:
                    # Another grader created it at the same moment (PostgreSQL's catalog then
                    # reports a duplicate); anything else is a real error.
                    found = inspect(engine)
                    if not all(found.has_table(t.name) for t in _METADATA.sorted_tables):
                        raise
        finally:
            if own:
                engine.dispose()

    def done(self, student: str, sha256: str) -> bool:
        entry = self.data.get(student)
        return bool(entry) and entry.get("sha256") == sha256

    def record(self, entry: dict) -> None:
        """Replace the student's record, in one transaction: a kill leaves the old or the new one."""
        row = {"course_id": self.course, "assignment": self.assignment, "detail": "", "sha256": "",
               "seconds": 0.0, **entry}
        with DB_LOCK, self.engine.begin() as conn:
            conn.execute(delete(STATE_TABLE).where(
                STATE_TABLE.c.course_id == self.course, STATE_TABLE.c.assignment == self.assignment,
                STATE_TABLE.c.student == entry["student"]))
            conn.execute(STATE_TABLE.insert().values(**row))
        self.data[entry["student"]] = {k: row[k] for k in ("student", "status", "detail", "sha256", "seconds")}

    def close(self) -> None:
        self.engine.dispose()


# ---------------------------------------------------------------------------------------------
# The whole class, from the gradebook alone


def export_class(assignment: str, db_url: str, out_dir: Path, *, course_root: Path = REPO_ROOT,
                 feedback_from: list[Path] = ()) -> dict:
    """Write ``out_dir/grades.csv`` for the whole class, and gather the shards' feedback pages
    (``<dir>/feedback/<student>/<assignment>.html``) into ``out_dir/feedback``.

    The class: every student a grader recorded (with its status), every student of a shards'
    roster that no shard has graded yet (status ``not graded``), and every submission in the
    gradebook that this command did not grade (``graded by nbgrader``: plain nbgrader or the
    formgrader). Returns {"students": n, "feedback": n, "missing_feedback": [ids],
    "not_graded": [ids]}."""
    import shutil

    from nbgrader.api import Gradebook

    source_nb = Path(course_root) / "solutions" / assignment / f"{assignment}.ipynb"
    if not source_nb.exists():
        raise GradebookError(f"no instructor source {source_nb} (pass --course: the folder with solutions/)")
    if not assignment_registered(assignment, db_url):
        raise GradebookError(f"the gradebook has no assignment {assignment!r}")
    state = GradingState(db_url, assignment)
    try:
        statuses = {s: e["status"] for s, e in state.data.items()}
        with DB_LOCK, state.engine.connect() as conn:
            rosters = conn.execute(select(ROSTER_TABLE.c.ids).where(
                ROSTER_TABLE.c.course_id == state.course, ROSTER_TABLE.c.assignment == assignment)).scalars().all()
    finally:
        state.close()
    not_graded = sorted({s for ids in rosters for s in ids.splitlines() if s} - set(statuses))
    with DB_LOCK, Gradebook(db_url, course_id()) as gb:
        by_nbgrader = {sub.student_id for sub in gb.assignment_submissions(assignment)} - set(statuses)
    statuses.update({s: "graded by nbgrader" for s in by_nbgrader})
    statuses.update({s: "not graded" for s in not_graded})
    if not statuses:
        raise GradebookError(f"no student of {assignment!r} has been graded in this gradebook yet")
    out_dir = Path(out_dir).resolve()
    if any(Path(folder).resolve() == out_dir for folder in feedback_from):
        raise GradebookError(f"--out {out_dir} is one of the --feedback folders: export into a folder of its own")
    out_dir.mkdir(parents=True, exist_ok=True)
    header, rows = export_rows(assignment, db_url, source_nb, statuses)
    write_grades_csv(out_dir, header, rows)

    pages: dict[str, Path] = {}
    for folder in feedback_from:
        root = Path(folder) / "feedback"
        if not root.is_dir():
            raise GradebookError(f"{folder} has no feedback/ folder: pass the --out folders of the shards")
        for page in sorted(root.glob(f"*/{assignment}.html")):
            student = page.parent.name
            if student not in statuses:
                continue  # graded in another gradebook, or renamed since
            if student in pages and pages[student].read_bytes() != page.read_bytes():
                raise GradebookError(f"two different feedback pages for {student}: {pages[student]} and {page}")
            pages[student] = page
    for student, page in pages.items():
        dest = out_dir / "feedback" / student / page.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, dest)
    missing = sorted(set(statuses) - set(pages) - set(not_graded)) if feedback_from else []
    return {"students": len(statuses), "feedback": len(pages), "missing_feedback": missing,
            "not_graded": not_graded}
