"""Generate the self-check data of ``dlcourse.check()`` from the released notebooks.

``dlcourse/checks/<assignment>.json`` holds, for every graded function of the assignment, the
visible part of its test cell, read from the student copy in ``exercises/`` that nbgrader
generated (hidden tests already removed there), never from ``solutions/``. ``python -m
autograder release`` calls :func:`write_checks` after each release; on its own::

    python -m autograder.release_checks [ASSIGNMENT ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from autograder import EXERCISES, REPO_ROOT
from autograder.notebook import cells_by_grade_id, graded_functions, read, visible_tests

CHECKS = REPO_ROOT / "dlcourse" / "checks"
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def build_checks(assignment: str, exercises: Path = EXERCISES) -> dict:
    """The check data of one released assignment, as written to its JSON file."""
    notebook = exercises / assignment / f"{assignment}.ipynb"
    nb = read(notebook)
    cells = cells_by_grade_id(nb)
    questions = []
    for fn in graded_functions(nb):
        tests = visible_tests(cells[f"test_{fn}"].source).strip() + "\n"
        if any(m in tests for m in HIDDEN_MARKERS):
            raise ValueError(f"{notebook}: test_{fn} still has hidden-test markers")
        questions.append({"name": fn, "grade_id": f"test_{fn}", "tests": tests})
    if not questions:
        raise ValueError(f"{notebook}: no graded functions")
    return {
        "assignment": assignment,
        "generated_from": notebook.relative_to(exercises.parent).as_posix(),
        "questions": questions,
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_checks(assignment: str, exercises: Path = EXERCISES, out: Path = CHECKS) -> Path:
    """(Re)write ``out/<assignment>.json`` from ``exercises/<assignment>``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{assignment}.json"
    path.write_text(render(build_checks(assignment, exercises)), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    released = sorted(p.name for p in EXERCISES.iterdir()
                      if (p / f"{p.name}.ipynb").exists()) if EXERCISES.is_dir() else []
    todo = argv or released
    unknown = [a for a in todo if a not in released]
    if unknown:
        print(f"not released: {unknown}; released: {released}", file=sys.stderr)
        return 2
    for a in todo:
        print(f"checks of {a} -> {write_checks(a).relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
