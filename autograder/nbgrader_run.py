"""Release and autograde with nbgrader's real apps, in a scratch course directory if asked.

Everything goes through ``nbgrader`` itself (``generate_assignment`` and ``autograde``), run
as a subprocess with the course's ``nbgrader_config.py``, so that what the tests check is
what an instructor gets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from autograder import REPO_ROOT


PASSWORD_RE = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


class GradingError(RuntimeError):
    """nbgrader itself failed (not a student's wrong answer)."""


def _nbgrader(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # Level 3 also hides TensorFlow's C++ ERROR lines (some come with op determinism on):
    # they go to stderr, and nbgrader gives 0 points to a test cell with stderr output.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
    # nbgrader runs the `alembic` script of its own environment by name (gradebook set-up),
    # so that environment's bin/ must be on PATH even when the venv is not activated.
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    # The graded notebooks import the course package `dlcourse`; the grading kernel runs in
    # a scratch folder, so give it this repository's copy even without `pip install -e .`.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        shown = " ".join(PASSWORD_RE.sub(r"\1***@", a) for a in args)  # a gradebook URL's password
        raise GradingError(f"{shown} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _course_args(root: Path, db: Path | None = None, db_url: str | None = None) -> list[str]:
    db_url = db_url or f"sqlite:///{db or Path(root) / 'gradebook.db'}"
    return [f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url={db_url}"]


def release(assignment: str, root: Path = REPO_ROOT, release_dir: Path | None = None,
            db: Path | None = None, db_url: str | None = None) -> Path:
    """Run ``nbgrader generate_assignment``; return the folder of the released notebooks.

    ``root`` must hold ``solutions/<assignment>/``. ``release_dir`` overrides where the
    release goes (default: ``<root>/exercises``), ``db`` the gradebook (default:
    ``<root>/gradebook.db``; or any SQLAlchemy URL as ``db_url``).
    """
    args = ["generate_assignment", assignment, "--force", *_course_args(root, db, db_url)]
    if release_dir is not None:
        args.append(f"--CourseDirectory.release_directory={release_dir}")
    _nbgrader(args, cwd=REPO_ROOT)  # cwd holds nbgrader_config.py
    return Path(release_dir or root / "exercises") / assignment


def scratch_course(tmp: Path, assignments: list[str]) -> Path:
    """A throw-away course directory with copies of the given assignments' sources."""
    root = Path(tmp) / "course"
    for a in assignments:
        shutil.copytree(REPO_ROOT / "solutions" / a, root / "solutions" / a)
    return root


def autograde(root: Path, assignment: str, submissions: dict[str, Path],
              timeout: float | None = 3600) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde notebooks with nbgrader; return {student: {grade_id: (score, max_score)}}.

    ``submissions`` maps a student id to the notebook file that student handed in. The
    assignment must have been released in ``root`` first (that records it in the gradebook).
    """
    for student, notebook in submissions.items():
        dest = root / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, dest / f"{assignment}.ipynb")
    _nbgrader(["autograde", assignment, "--force", *_course_args(root)], cwd=REPO_ROOT, timeout=timeout)
    return read_scores(root / "gradebook.db", assignment)


def read_scores(db_path: Path, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
    """Per-cell (score, max_score) of every student, straight from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{db_path}") as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = out.setdefault(sub.student_id, {})
            for nb in sub.notebooks:
                for grade in nb.grades:
                    cells[grade.name] = (grade.score, grade.max_score)
    return out
