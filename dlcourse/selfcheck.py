"""Check your answers from the notebook, like otter-grader's ``grader.check("q1")``.

The set-up cell of every assignment names it; then any cell can check::

    dlcourse.use_assignment("ps1-basics")   # done by the set-up cell
    dlcourse.check("softmax")               # the visible checks of one question
    dlcourse.check()                        # the visible checks of every question

A check runs the **visible** asserts of the question's test cell, exactly those of the
released notebook, against the functions defined in the notebook, and prints one line per
question: passed, failed (with the assert's message), or not answered yet. It never raises,
so a failing check does not stop "Run All". The hidden tests that decide the grade are not
in this package: the checks are package data generated from the released notebooks in
``exercises/`` (``autograder.release_checks``), from which nbgrader has already removed them.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from dataclasses import dataclass
from importlib import resources

_assignment: str | None = None

PASSED, FAILED, UNANSWERED, ERROR = "passed", "failed", "not answered yet", "error"
_MARK = {PASSED: "[pass]", FAILED: "[FAIL]", UNANSWERED: "[todo]", ERROR: "[FAIL]"}


@dataclass(frozen=True)
class Result:
    question: str
    status: str         # PASSED, FAILED, UNANSWERED or ERROR
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def line(self) -> str:
        head = f"{_MARK[self.status]} {self.question}:"
        if self.status == PASSED:
            return f"{head} the visible checks pass"
        if self.status == UNANSWERED:
            return f"{head} not answered yet ({self.message})"
        return f"{head} {self.message}"


def use_assignment(assignment: str) -> None:
    """Make ``assignment`` (an id such as ``"ps1-basics"``) the default of :func:`check`."""
    global _assignment
    _assignment = assignment


def available() -> list[str]:
    """Ids of the assignments whose checks ship with this package."""
    folder = resources.files("dlcourse") / "checks"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")) \
        if folder.is_dir() else []


def load(assignment: str) -> dict[str, str]:
    """{question: visible test source} of an assignment, in notebook order."""
    path = resources.files("dlcourse") / "checks" / f"{assignment}.json"
    if not path.is_file():
        raise LookupError(f"no checks for assignment {assignment!r} in this dlcourse package "
                          f"(it has: {', '.join(available()) or 'none'})")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {q["name"]: q["tests"] for q in data["questions"]}


def _resolve_assignment(question: str | None, assignment: str | None) -> str:
    if assignment or _assignment:
        return assignment or _assignment
    # No set-up cell run: a question name still tells which assignment it belongs to.
    owners = [a for a in available() if question in load(a)] if question else []
    if len(owners) == 1:
        return owners[0]
    raise LookupError("which assignment? Run the set-up cells first (they call "
                      "dlcourse.use_assignment(...)), or pass assignment='ps1-basics'.")


def _failing_line(exc: BaseException, filename: str, source: str) -> str:
    """The line of the visible tests where ``exc`` was raised ('' if not found)."""
    lines = source.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename and 0 < (frame.lineno or 0) <= len(lines):
            return lines[frame.lineno - 1].strip()
    return ""


def _run_one(question: str, source: str, namespace: dict) -> Result:
    filename = f"<visible checks of {question}>"
    # A copy: the checks' own variables (p, probs, ...) do not overwrite the student's.
    ns = dict(namespace)
    out = io.StringIO()
    try:
        code = compile(source, filename, "exec")
        # The checks print "visible ... checks passed" and Keras prints progress bars: the
        # summary line says it instead.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(code, ns)
    except NotImplementedError:
        return Result(question, UNANSWERED, "it still raises NotImplementedError")
    except NameError as exc:
        if exc.name == question:
            return Result(question, UNANSWERED, f"{question} is not defined yet: write it, then run its cell")
        return Result(question, ERROR, f"NameError: {exc} (run the cells above this one, "
                                       "set-up cells included)")
    except AssertionError as exc:
        message = str(exc) or f"this check fails: {_failing_line(exc, filename, source)}"
        return Result(question, FAILED, message)
    except Exception as exc:  # noqa: BLE001 (any bug of the answer is reported, not raised)
        where = _failing_line(exc, filename, source)
        return Result(question, ERROR, f"{type(exc).__name__}: {exc}"
                                       + (f" (while running: {where})" if where else ""))
    return Result(question, PASSED)


def run(question: str | None = None, assignment: str | None = None,
        namespace: dict | None = None) -> list[Result]:
    """Run the visible checks of ``question`` (all questions if None) in ``namespace``.

    Returns one :class:`Result` per question. ``namespace`` is the globals the answers live
    in (a notebook's user namespace); :func:`check` passes its caller's.
    """
    assignment = _resolve_assignment(question, assignment)
    checks = load(assignment)
    if question is not None and question not in checks:
        raise LookupError(f"{assignment} has no question {question!r}; "
                          f"its questions: {', '.join(checks)}")
    todo = [question] if question is not None else list(checks)
    return [_run_one(q, checks[q], namespace if namespace is not None else {}) for q in todo]


def _caller_namespace() -> dict:
    """The notebook's user namespace (IPython: Jupyter, Colab), else check()'s caller's globals."""
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None:
        return shell.user_ns
    return sys._getframe(2).f_globals


def check(question: str | None = None, assignment: str | None = None) -> None:
    """Print whether the answers pass the visible checks; ``question=None`` checks them all.

    Never raises: a failing check says what fails and the notebook keeps running.
    """
    try:
        results = run(question, assignment, _caller_namespace())
    except LookupError as exc:
        print(f"dlcourse.check: {exc.args[0]}")
        return
    for result in results:
        print(result.line())
    if question is None:
        passed = sum(r.passed for r in results)
        print(f"{passed} of {len(results)} questions pass their visible checks. "
              "Hidden tests decide the grade.")
