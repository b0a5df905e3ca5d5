"""Validate with progress and a short result: nbgrader's validation, summarised per question.

nbgrader's Validate runs the saved notebook from the top in a fresh kernel, as the grader will,
and reports every failing test cell with its whole source and traceback: on a half-answered
ps1 that is a dialog of about 12,000 characters, after a minute with only "Validating..." to
look at. This module runs the same validation (``nbgrader.validator.Validator``, the same
config, the same kernel) and reports one line per question::

    test_softmax (2 points)           not answered   softmax still raises NotImplementedError
    test_cross_entropy (2 points)     failed         AssertionError: loss of a perfect ...
    test_relu (1 point)               passed
    written_gradient (2 points)       answered       graded by hand

Two ways in:

- ``python -m dlcourse.validate ps1-basics.ipynb`` in a terminal prints a line as each graded
  cell finishes (the progress), then the table; exit status 0 when every autograded question
  passes. From a notebook cell: ``!python -m dlcourse.validate ps1-basics.ipynb`` (save first).
- The notebook toolbar's Validate button (nbgrader's lab extension): ``make env`` replaces
  nbgrader's server handler behind it with :class:`CourseValidateHandler`, which answers with
  the short result in the dialog nbgrader's extension draws, and answers a chapter of the book
  (a MyST ``.md`` file opened as a notebook, with nothing to grade) with one sentence instead of
  a ``NotJSONError`` traceback. nbgrader's own ``nbgrader validate`` command is unchanged.

The statuses come from the executed notebook as nbgrader's gradebook would see it
(``nbgrader.utils.determine_grade``): a test cell is *passed* at full points; *not answered*
when it fails with the release's ``NotImplementedError``; *failed* otherwise, with the error's
first line. A written answer (a manually graded solution cell) is *answered* or *not answered*
(its text is still the release's, by nbgrader's checksum); the formgrader grades it later.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, NOT_ANSWERED, ANSWERED = "passed", "failed", "not answered", "answered"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_DETAIL = 200  # characters of an error message shown per question

NOT_AN_ASSIGNMENT = (
    "{name} is not an assignment, so there is nothing to validate: Validate checks the "
    "graded cells of an nbgrader assignment notebook (.ipynb) the way the grader will. "
    "{why}")


@dataclass(frozen=True)
class Question:
    grade_id: str
    points: float
    status: str          # PASSED, FAILED, NOT_ANSWERED or ANSWERED
    detail: str = ""     # one line: the error, or "graded by hand"
    written: bool = False  # a manually graded answer (the formgrader scores it)

    @property
    def label(self) -> str:
        return f"{self.grade_id} ({self.points:g} point{'' if self.points == 1 else 's'})"

    @property
    def ok(self) -> bool:
        return self.status in (PASSED, ANSWERED)


def _one_line(text: str) -> str:
    line = " ".join(ANSI_RE.sub("", str(text)).split())
    return line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL - 3] + "..."


def _error_of(cell) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return str(out.get("ename", "")), str(out.get("evalue", ""))
    return None


def question_of(cell) -> Question | None:
    """The :class:`Question` of one executed cell (None if the cell is not graded)."""
    from nbgrader import utils

    if not utils.is_grade(cell):
        return None
    meta = cell.metadata.nbgrader
    grade_id, points = str(meta.get("grade_id", "?")), float(meta.get("points", 0) or 0)
    if utils.is_solution(cell):  # a written answer (or code), graded by hand
        unchanged = bool(meta.get("checksum")) and utils.compute_checksum(cell) == meta["checksum"]
        return Question(grade_id, points, NOT_ANSWERED if unchanged else ANSWERED,
                        "the release's text is unchanged" if unchanged else "graded by hand",
                        written=True)
    score, max_score = utils.determine_grade(cell)
    error = _error_of(cell)
    if error is None and score is not None and score >= max_score:
        return Question(grade_id, points, PASSED)
    if error and (error[0] == "NotImplementedError" or "NotImplementedError" in error[1]):
        name = grade_id[len("test_"):] if grade_id.startswith("test_") else "the function"
        return Question(grade_id, points, NOT_ANSWERED, f"{name} still raises NotImplementedError")
    if error:
        ename, evalue = error
        return Question(grade_id, points, FAILED, _one_line(f"{ename}: {evalue}" if evalue else ename))
    return Question(grade_id, points, FAILED, "partial credit: passed some but not all of the tests")


def summarize(nb) -> list[Question]:
    """One :class:`Question` per graded cell of an executed notebook, in notebook order."""
    return [q for q in map(question_of, nb.cells) if q is not None]


def table(questions: list[Question]) -> str:
    width = max((len(q.label) for q in questions), default=0) + 2
    lines = [f"{q.label:<{width}}{q.status:<15}{q.detail}".rstrip() for q in questions]
    lines.append(_count_line(questions))
    return "\n".join(lines)


def _count_line(questions: list[Question]) -> str:
    auto = [q for q in questions if not q.written]
    passing = [q.grade_id for q in auto if q.status == PASSED]
    line = f"{len(passing)} of {len(auto)} autograded questions pass"
    if any(q.written for q in questions):
        line += "; written answers are graded by hand later"
    return line + "."


def not_an_assignment(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be validated (a chapter, a plain notebook), or None if it can."""
    path = Path(path)
    if path.suffix != ".ipynb":
        return NOT_AN_ASSIGNMENT.format(
            name=path.name, why="This file is a page of the course book, opened as a notebook: "
                                "run its cells to follow the chapter; the assignments are the "
                                "notebooks in exercises/.")
    import nbformat
    from nbgrader import utils

    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # not JSON, not a notebook: say so in one line
        return NOT_AN_ASSIGNMENT.format(name=path.name, why=f"It cannot be read as a notebook "
                                                            f"({type(exc).__name__}).")
    if not any(utils.is_grade(c) or utils.is_solution(c) for c in nb.cells):
        return NOT_AN_ASSIGNMENT.format(name=path.name, why="It has no graded cells.")
    return None


def make_validator(config=None, progress=None):
    """nbgrader's Validator, keeping the executed notebook (``.executed``) and calling
    ``progress(done, total, cell)`` after each code cell runs."""
    from nbgrader.preprocessors import Execute
    from nbgrader.validator import Validator

    class ProgressExecute(Execute):
        # nbgrader's Execute already uses nbclient's on_cell_executed hook (as a method, to
        # record errors): extend it rather than replace it. Config for Execute still applies.
        def preprocess(self, nb, resources=None, km=None):
            self._dlc_total = sum(c.cell_type == "code" for c in nb.cells)
            self._dlc_done = 0
            return super().preprocess(nb, resources, km)

        def on_cell_executed(self, **kwargs):
            super().on_cell_executed(**kwargs)
            self._dlc_done += 1
            progress(self._dlc_done, self._dlc_total, kwargs["cell"])

    class CourseValidator(Validator):
        executed = None

        def _preprocess(self, nb):
            if progress is not None:
                self.preprocessors = [ProgressExecute if p is Execute else p for p in self.preprocessors]
            self.executed = super()._preprocess(nb)
            return self.executed

    return CourseValidator(config=config) if config is not None else CourseValidator()


def load_config():
    """nbgrader's config as its Validate handler reads it: Jupyter's config path and the current
    folder's nbgrader_config.py."""
    from jupyter_core.paths import jupyter_config_path
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.log.setLevel("ERROR")
    app.config_file_paths.append([os.getcwd(), *jupyter_config_path()])
    app.load_config_file()
    return app.config


def validate(path, config=None, progress=None) -> tuple[dict, list[Question]]:
    """nbgrader's result for ``path`` (as ``nbgrader validate`` computes it) and the questions."""
    validator = make_validator(config, progress)
    result = validator.validate(str(path))
    questions = summarize(validator.executed) if validator.executed is not None else []
    return result, questions


def dialog_value(result: dict, questions: list[Question]) -> dict:
    """The short result in the shape nbgrader's lab extension draws (its ``failed`` entries: a
    ``source`` shown as text and an ``error`` shown as HTML). Changed or retyped locked cells are
    nbgrader's own findings and stay as they are; a notebook with every question passed or
    answered gets nbgrader's "Success!" (an empty result)."""
    if "changed" in result or "type_changed" in result:
        return result
    todo = [q for q in questions if not q.ok]
    if not todo:
        return {}
    entries = [{"source": f"{q.label}: {q.status}", "error": html.escape(q.detail)} for q in todo]
    entries[-1]["error"] += html.escape(
        "\n\n" + _count_line(questions)
        + " To see progress while it runs: python -m dlcourse.validate NOTEBOOK in a terminal.")
    return {"failed": entries}


def _load_handler_class():
    import traceback

    from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler
    from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
    from tornado import web

    class CourseValidateHandler(ValidateAssignmentHandler):
        """nbgrader's Validate handler, answering with the short result (see the module)."""

        @web.authenticated
        async def post(self):
            try:
                path = self.get_argument("path")
            except web.MissingArgumentError:
                path = self.get_json_body()["path"]
            # nbgrader's handler validates on the server's event loop, so the whole JupyterLab
            # (saving, other kernels' output) stalls until the notebook has run; a worker
            # thread keeps it responsive (nbclient runs its own event loop there).
            answer = await asyncio.get_running_loop().run_in_executor(None, self.validate_notebook, path)
            self.finish(json.dumps(answer))

        def validate_notebook(self, path):
            root = Path(self.root_dir).resolve()
            target = (root / path).resolve()
            if not target.is_relative_to(root):  # as nbgrader's handler
                raise web.HTTPError(403, "Access denied: path outside allowed directory")
            why = not_an_assignment(target)
            if why:  # before nbgrader reads a chapter as JSON (its NotJSONError traceback)
                # nbgrader's dialog shows this in a <pre>, which does not wrap: lines of 72.
                return {"success": False, "value": textwrap.fill(why, 72)}
            try:
                result, questions = validate(target, self.load_config())
            except (SchemaTooOldError, SchemaTooNewError):
                # nbgrader's own advice for these; they fail on reading, before any cell runs.
                return super().validate_notebook(path)
            except Exception:
                self.log.error(traceback.format_exc())
                return {"success": False, "value": traceback.format_exc()}
            return {"success": True, "value": dialog_value(result, questions)}

    return CourseValidateHandler


def _jupyter_server_extension_points():
    return [{"module": "dlcourse.validate"}]


def _load_jupyter_server_extension(serverapp):
    """Serve the Validate button's two routes, as nbgrader's validate_assignment extension does,
    with :class:`CourseValidateHandler` (``python -m dlcourse.kernel install`` turns nbgrader's
    extension off and this one on)."""
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.validate_assignment.handlers import NbGraderVersionHandler

    webapp = serverapp.web_app
    webapp.settings["root_dir"] = serverapp.root_dir  # nbgrader's handler reads it there
    base_url = webapp.settings["base_url"]
    webapp.add_handlers(".*$", [
        (url_path_join(base_url, "/assignments/validate"), _load_handler_class()),
        (url_path_join(base_url, "/nbgrader_version"), NbGraderVersionHandler),
    ])
    serverapp.log.info("dlcourse.validate: the Validate button answers per question")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlcourse.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", help="the saved assignment notebook, e.g. ps1-basics.ipynb")
    args = parser.parse_args(argv)
    why = not_an_assignment(args.notebook)
    if why:
        print(why, file=sys.stderr)
        return 2

    def progress(done, total, cell):
        question = question_of(cell)
        if question is not None and not question.written:
            print(f"[{done:>3}/{total} cells] {question.label}: {question.status}", flush=True)
        elif done % 5 == 0 or done == total:
            print(f"[{done:>3}/{total} cells]", flush=True)

    print(f"Validating {args.notebook}: running it from the top in a fresh kernel, as the grader will.",
          flush=True)
    result, questions = validate(args.notebook, load_config(), progress)
    if "type_changed" in result or "changed" in result:
        kind = "type_changed" if "type_changed" in result else "changed"
        print(f"\n{len(result[kind])} locked cell(s) were changed; restore them from the release "
              "(nbgrader validate NOTEBOOK shows which).")
        return 1
    print()
    print(table(questions))
    return 0 if all(q.ok for q in questions) else 1


if __name__ == "__main__":
    sys.exit(main())
