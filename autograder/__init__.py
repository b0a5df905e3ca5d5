"""Grading tools of the course: thin wrappers around nbgrader's own apps.

- :mod:`autograder.notebook` reads an nbgrader notebook's graded cells.
- :mod:`autograder.nbgrader_run` releases an assignment and autogrades submissions with
  nbgrader's real ``generate_assignment`` and ``autograde`` apps.
- ``python -m autograder release ASSIGNMENT`` regenerates ``exercises/ASSIGNMENT``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO_ROOT / "solutions"
EXERCISES = REPO_ROOT / "exercises"


def assignments(course_root: Path | None = None) -> list[str]:
    """Ids of the assignments that have an instructor source in solutions/ (of this repository,
    or of the nbgrader course folder ``course_root``)."""
    solutions = SOLUTIONS if course_root is None else Path(course_root) / "solutions"
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").exists()) if solutions.is_dir() else []
