"""The judge: test cells decided in a kernel that never runs student code (issue 11).

A student's notebook runs in its own kernel; the judge then runs the instructor's test cells
in a second kernel and calls the student's functions through the data-only channel. Blank
answers score 0 even when the student's kernel forges every verdict it can, and the honest
solution keeps full marks.
"""

from __future__ import annotations

import copy

import pytest
from nbformat.v4 import new_notebook
from jupyter_client.manager import start_new_kernel

from autograder import EXERCISES, SOLUTIONS
from autograder.judge import JudgeSession, apply_verdicts, graded_test_cells, run_judge, scores
from autograder.notebook import HIDDEN_RE, nbgrader_meta, read

ASSIGNMENT = "ps1-basics"
SOURCE = read(SOLUTIONS / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
FULL = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in graded_test_cells(SOURCE)}

# What the review used to score a blank notebook 15/15 in the student's own interpreter.
FORGERIES = r'''
import numpy as np
from IPython import get_ipython
ip = get_ipython()

# An event hook that clears every error after a cell ran.
def _clear(result):
    result.error_in_exec = None
ip.events.register("post_run_cell", _clear)

# An exception handler that swallows every failed assert.
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)

# An AST transformer that deletes every assert.
import ast
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
ip.ast_transformers.append(_NoAsserts())

# A display hook that prints a number, which nbgrader reads as partial credit.
import sys
sys.displayhook = lambda value: print(10)

# Graded names bound to objects that agree with any comparison (NEP-18).
class _Agree(np.ndarray):
    def __array_function__(self, *args, **kwargs):
        return True
    def __eq__(self, other):
        return True
for _name in ["softmax", "cross_entropy", "sgd_momentum", "rmsprop", "adam",
              "k_fold_indices", "standardize", "two_layer_net", "build_mlp"]:
    globals()[_name] = lambda *a, **k: np.zeros(3).view(_Agree)
'''


def _quiet(msg) -> None:
    """The student's own outputs do not matter here: only the judge's do."""


def _student_run(nb, extra: str = ""):
    """Run a submission in its own kernel, as the grader would: every cell in order, test
    cells with their hidden part removed. Returns (km, kc)."""
    km, kc = start_new_kernel(kernel_name="python3")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kc.execute_interactive(HIDDEN_RE.sub("", cell.source), timeout=300, output_hook=_quiet)
    if extra:
        kc.execute_interactive(extra, timeout=60, output_hook=_quiet)
    return km, kc


def _tests_in_students_kernel(kc) -> dict[str, float]:
    """The design this replaces: the test cells, hidden part included, run in the
    student's own kernel, and nbgrader scores what that kernel reports."""
    from nbformat.v4 import output_from_msg

    got = {}
    for cell in graded_test_cells(SOURCE):
        outputs = []

        def keep(msg):
            if msg["msg_type"] in ("error", "stream", "execute_result"):
                outputs.append(output_from_msg(msg))
        kc.execute_interactive(cell.source, timeout=300, output_hook=keep)
        graded = copy.deepcopy(cell)
        graded.outputs = outputs
        got[nbgrader_meta(cell)["grade_id"]] = scores(new_notebook(cells=[graded]))[nbgrader_meta(cell)["grade_id"]]
    return got


@pytest.fixture(scope="module")
def judged():
    """Three students in one module: the solution, a blank release, a blank with forgeries."""
    students = {"solution": (SOURCE, ""),
                "blank": (read(EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), ""),
                "forger": (read(EXERCISES / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), FORGERIES)}
    out = {}
    for student, (nb, extra) in students.items():
        km, kc = _student_run(nb, extra)
        try:
            if student == "forger":
                out["forger, old design"] = _tests_in_students_kernel(kc)
            verdicts = run_judge(SOURCE, km.connection_file, cell_timeout=300)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        graded = copy.deepcopy(nb)
        # The graded notebook's test cells come from the source, as OverwriteCells does.
        by_id = {nbgrader_meta(c).get("grade_id"): c for c in SOURCE.cells}
        for cell in graded.cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid in FULL:
                cell.source = by_id[gid].source
        apply_verdicts(graded, SOURCE, verdicts)
        out[student] = (scores(graded), verdicts)
    return out


def test_the_solution_keeps_full_marks(judged):
    got, verdicts = judged["solution"]
    assert got == FULL, {k: v for k, v in verdicts.items() if got[k] != FULL[k]}


def test_a_blank_release_scores_zero(judged):
    got, _ = judged["blank"]
    assert got == {k: 0 for k in FULL}


def test_forged_verdicts_in_the_students_kernel_score_nothing(judged):
    got, verdicts = judged["forger"]
    assert got == {k: 0 for k in FULL}
    messages = " ".join(o.get("evalue", "") for outs in verdicts.values() for o in outs)
    assert "_Agree" in messages  # refused by the channel, by name


def test_missing_verdicts_fail():
    graded = copy.deepcopy(SOURCE)
    apply_verdicts(graded, SOURCE, {})
    assert scores(graded) == {k: 0 for k in FULL}


def test_the_forgeries_are_real_attacks_on_the_old_design(judged):
    """The same forging kernel, graded the old way, scores points: the judge is the defence."""
    old = judged["forger, old design"]
    assert sum(old.values()) >= 0.5 * sum(FULL.values()), old


# ------------------------------------------------------------------ grading power, judged

def _mutant_sample(assignment: str, per_function: int = 2) -> list[tuple[str, str, str]]:
    import importlib
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "tests"))
    tables = importlib.import_module(f"mutants.{assignment.replace('-', '_')}")
    return [(fn, name, src) for fn, table in tables.MUTANTS.items()
            for name, src in list(table.items())[:per_function]]


@pytest.mark.parametrize("assignment", ["ps1-basics", "ps2-overfitting", "ps3-cnns",
                                        "ps4-transfer-learning", "ps5-advanced"])
def test_mutants_are_rejected_through_the_judge(assignment):
    """A sample of each assignment's mutant table, graded the new way: the mutant defined
    in the student's kernel, its test cell run in one judge session against it. The whole
    tables run in-process in tests/test_grading_power.py; this shows the channel keeps the
    hidden tests' power (in-place writes, returned arguments, exceptions, Keras objects)."""
    import textwrap

    source = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    km, kc = _student_run(source)
    passed = []
    try:
        with JudgeSession(source, km.connection_file, cell_timeout=300) as judge:
            for fn, name, src in _mutant_sample(assignment):
                kc.execute_interactive(textwrap.dedent(src), timeout=120, output_hook=_quiet)
                outputs = judge.run_test(f"test_{fn}")
                if not any(o.get("output_type") == "error" for o in outputs):
                    passed.append(f"{fn}: {name}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert not passed, f"mutants that pass the judged tests of {assignment}: {passed}"
