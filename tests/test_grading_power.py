"""Grading power: the hidden tests must reject plausible wrong answers.

For every assignment in solutions/, the module tests/mutants/<id with - as _>.py lists,
for every graded function, wrong implementations that students really write (MUTANTS) and
correct ones written differently from the solution (ACCEPTED). Each is run against the
HIDDEN part of the function's test cell, the part that decides the grade, in a fresh
namespace that holds only what the graded notebook gives a test cell: the set-up cells and
the answer cells (with the mutant overriding the solution). A mutant that passes is a hole
in the grading; a rejected ACCEPTED answer is an unfair test.

The real solutions are the positive control: they must pass the visible and the hidden
part of every test cell. A new assignment without a mutants module fails here.
"""

from __future__ import annotations

import contextlib
import importlib
import textwrap
import warnings

import numpy as np
import pytest

from autograder import SOLUTIONS, assignments
from autograder.notebook import (
    cells_by_grade_id,
    graded_functions,
    hidden_tests,
    read,
    setup_sources,
    visible_tests,
)

ASSIGNMENTS = assignments()


class Assignment:
    def __init__(self, assignment_id: str):
        self.id = assignment_id
        self.nb = read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb")
        self.cells = cells_by_grade_id(self.nb)
        self.functions = graded_functions(self.nb)
        try:
            tables = importlib.import_module(f"mutants.{assignment_id.replace('-', '_')}")
        except ModuleNotFoundError:
            tables = None
        self.mutants = getattr(tables, "MUTANTS", {})
        self.accepted = getattr(tables, "ACCEPTED", {})


LOADED = {a: Assignment(a) for a in ASSIGNMENTS}
CASES = [(a, fn, name) for a in ASSIGNMENTS for fn, table in LOADED[a].mutants.items()
         for name in table]
ACCEPTED_CASES = [(a, fn, name) for a in ASSIGNMENTS for fn, table in LOADED[a].accepted.items()
                  for name in table]
FUNCTION_CASES = [(a, fn) for a in ASSIGNMENTS for fn in LOADED[a].functions]


@contextlib.contextmanager
def _quiet():
    """Numerical warnings of wrong code (overflow, 0/0) are expected; keep the report clean."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _namespace(a: Assignment) -> dict:
    """A fresh namespace with what a test cell sees: set-up cells, then every answer cell."""
    ns: dict = {"__name__": f"{a.id.replace('-', '_')}_grading"}
    for i, source in enumerate(setup_sources(a.nb)):
        exec(compile(source, f"<{a.id} setup cell {i}>", "exec"), ns)
    for fn in a.functions:
        exec(compile(a.cells[fn].source, f"<{a.id} answer cell {fn}>", "exec"), ns)
    return ns


def _run(source: str, ns: dict, label: str) -> None:
    exec(compile(source, label, "exec"), ns)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_mutants(assignment):
    a = LOADED[assignment]
    assert a.functions, f"no graded functions found in {assignment}"
    too_few = [fn for fn in a.functions if len(a.mutants.get(fn, {})) < 2]
    assert not too_few, (f"{assignment}: graded functions with fewer than 2 mutants in "
                         f"tests/mutants/{assignment.replace('-', '_')}.py: {too_few}")
    stale = sorted(set(a.mutants) - set(a.functions))
    assert not stale, f"MUTANTS has entries for functions the notebook does not grade: {stale}"


@pytest.mark.parametrize(("assignment", "fn"), FUNCTION_CASES,
                         ids=[f"{a}: {fn}" for a, fn in FUNCTION_CASES])
def test_solution_passes_visible_and_hidden_tests(assignment, fn):
    a = LOADED[assignment]
    source = a.cells[f"test_{fn}"].source
    assert hidden_tests(source).strip(), f"test_{fn} has no hidden tests"
    with _quiet():
        ns = _namespace(a)
        _run(visible_tests(source), ns, f"<visible part of test_{fn}>")
        _run(hidden_tests(source), ns, f"<hidden part of test_{fn}>")


@pytest.mark.parametrize(("assignment", "fn", "mutant"), CASES,
                         ids=[f"{a}: {fn}: {name}" for a, fn, name in CASES])
def test_hidden_tests_reject_mutant(assignment, fn, mutant):
    a = LOADED[assignment]
    assert fn in a.functions, f"{fn} is not a graded function of {assignment}"
    hidden = hidden_tests(a.cells[f"test_{fn}"].source)
    assert hidden.strip(), f"test_{fn} has no hidden tests"
    with _quiet():
        ns = _namespace(a)
        _run(textwrap.dedent(a.mutants[fn][mutant]), ns, f"<mutant {fn}: {mutant}>")
        try:
            _run(hidden, ns, f"<hidden part of test_{fn}>")
        except Exception:  # an AssertionError or any other error: the mutant loses the points
            return
    pytest.fail(f"the wrong {fn} ({mutant!r}) passes the hidden tests of test_{fn}")


@pytest.mark.parametrize(("assignment", "fn", "variant"), ACCEPTED_CASES,
                         ids=[f"{a}: {fn}: {name}" for a, fn, name in ACCEPTED_CASES])
def test_hidden_tests_accept_correct_variant(assignment, fn, variant):
    a = LOADED[assignment]
    source = a.cells[f"test_{fn}"].source
    with _quiet():
        ns = _namespace(a)
        _run(textwrap.dedent(a.accepted[fn][variant]), ns, f"<variant {fn}: {variant}>")
        _run(visible_tests(source), ns, f"<visible part of test_{fn}>")
        _run(hidden_tests(source), ns, f"<hidden part of test_{fn}>")
