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

The set-up cells (data loading, ps4's pretraining) run once per assignment, not once per
mutant: every case starts from a copy of that namespace (arrays copied, every random
generator re-seeded), then runs the answer cells and the mutant.
``test_one_pass_gives_the_same_verdicts`` runs a sample both ways and compares.
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


def _setup_namespace(a: Assignment) -> dict:
    ns: dict = {"__name__": f"{a.id.replace('-', '_')}_grading"}
    for i, source in enumerate(setup_sources(a.nb)):
        exec(compile(source, f"<{a.id} setup cell {i}>", "exec"), ns)
    return ns


def _answers(a: Assignment, ns: dict) -> dict:
    for fn in a.functions:
        exec(compile(a.cells[fn].source, f"<{a.id} answer cell {fn}>", "exec"), ns)
    return ns


def _namespace_from_scratch(a: Assignment) -> dict:
    """What a test cell sees, built from nothing: set-up cells, then every answer cell."""
    return _answers(a, _setup_namespace(a))


SETUP_SEED = 0
_SETUP: dict[str, dict] = {}  # assignment -> its set-up namespace, built once


def _reseed() -> None:
    """Every case starts from the same generator state, seeded as the set-up cells seed
    (``dlcourse.setup(seed=0)`` in every assignment). It is not the state they leave behind
    (they draw numbers too); test_one_pass_gives_the_same_verdicts checks that this changes
    no verdict."""
    from dlcourse.seeding import seed_everything

    seed_everything(SETUP_SEED)


def _namespace(a: Assignment) -> dict:
    """A copy of the assignment's set-up namespace (built once), with its arrays copied and
    the generators re-seeded, then every answer cell: what a test cell sees."""
    if a.id not in _SETUP:
        _SETUP[a.id] = _setup_namespace(a)
    ns = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _SETUP[a.id].items()}
    _reseed()
    return _answers(a, ns)


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


def _verdict(a: Assignment, ns: dict, fn: str, code: str) -> str:
    _run(textwrap.dedent(code), ns, f"<case {fn}>")
    try:
        _run(hidden_tests(a.cells[f"test_{fn}"].source), ns, f"<hidden part of test_{fn}>")
    except Exception as exc:  # noqa: BLE001 - any error loses the points
        return f"rejected ({type(exc).__name__})"
    return "passed"


# Two cases per function (mutants, plus the accepted variants) of the assignments whose
# set-up is cheap enough to run from scratch each time.
SAMPLE = [(a, fn, code) for a in ("ps1-basics", "ps2-overfitting") if a in LOADED
          for fn in LOADED[a].functions
          for code in list(LOADED[a].mutants.get(fn, {}).values())[:2] + list(LOADED[a].accepted.get(fn, {}).values())]


def test_one_pass_gives_the_same_verdicts():
    """The shared set-up namespace decides every sampled case exactly as a namespace built
    from scratch does (the way each case ran before)."""
    assert len(SAMPLE) >= 20
    for a in ASSIGNMENTS:  # _reseed() seeds as the set-up cells do
        assert f"dlcourse.setup(seed={SETUP_SEED})" in "".join(setup_sources(LOADED[a].nb)), a
    with _quiet():
        shared = [_verdict(LOADED[a], _namespace(LOADED[a]), fn, code) for a, fn, code in SAMPLE]
        scratch = [_verdict(LOADED[a], _namespace_from_scratch(LOADED[a]), fn, code) for a, fn, code in SAMPLE]
    assert shared == scratch
    assert "passed" in shared and any(v.startswith("rejected") for v in shared)
