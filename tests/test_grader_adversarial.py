"""The adversarial suite: a class of hostile ps1 students, each trying one attack on the verdict.

Every attacker starts from the blank release (or, where the attack is on others, from the
honest solution) and adds one attack. The class is graded once by the grading command, in the
sandbox, with the judge deciding every test cell (:mod:`autograder.judge`); each attack has
its exact expected status and per-cell scores, beside honest students who must keep full
marks. The attacks that forge verdicts are then graded again with the judge off (the test
cells in the student's own kernel, as plain nbgrader runs them): there they score, which shows
that each is a real attack and that the judge is what stops it.

The README's sandbox section lists the classes (``ATTACKS`` below is the source of truth).
"""

from __future__ import annotations

import csv
import html
import json
import textwrap
from pathlib import Path

import pytest

from autograder.grading import Limits, grade
from autograder.notebook import cells_by_grade_id, hidden_tests, read
from autograder.sandbox import Sandbox
from test_grade import A, AUTO, FULL, SOLUTION, SOURCE, ZERO, _cell_scores, _course, _write

LIMITS = Limits(cell_seconds=20, notebook_seconds=150)
BLANK_FNS = ["softmax", "cross_entropy", "two_layer_net", "sgd_momentum", "rmsprop", "adam",
             "k_fold_indices", "standardize", "build_mlp"]

# Bind every graded name to an object (``{obj}``) after the cell's own stub.
EVERYWHERE = "\nfor _n in {names!r}:\n    globals()[_n] = (lambda *a, **k: {obj})\n"


def _everywhere(obj: str, setup: str = "") -> dict:
    """Appended to every answer cell: ``setup`` then each graded name returning ``obj``."""
    return {fn: setup + EVERYWHERE.format(names=[fn], obj=obj) for fn in BLANK_FNS}


FORGE_HOOK = """
from IPython import get_ipython
def _clear(result):
    result.error_in_exec = None
    result.error_before_exec = None
get_ipython().events.register("post_run_cell", _clear)
"""
FORGE_DISPLAYHOOK = """
import sys
sys.displayhook = lambda value: print(10)
from IPython import get_ipython
get_ipython().ast_node_interactivity = "all"
def _print_points(result):
    print(10)
get_ipython().events.register("post_run_cell", _print_points)
"""
FORGE_AST = """
import ast
from IPython import get_ipython
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
    def visit_Raise(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
"""
FORGE_INPUT = """
from IPython import get_ipython
get_ipython().input_transformers_post.append(
    lambda lines: ["pass\\n"] if any("assert" in l for l in lines) else lines)
"""
FORGE_CUSTOM_EXC = """
from IPython import get_ipython
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
"""
FORGE_NEP18 = """
import numpy as np
class _Agree(np.ndarray):
    def __array_function__(self, *args, **kwargs):
        return True
    def __array_ufunc__(self, *args, **kwargs):
        return True
    def __eq__(self, other):
        return True
"""
FORGE_SETTRACE = """
import sys
def _tracer(frame, event, arg):
    if event == "exception" and issubclass(arg[0], AssertionError):
        frame.f_locals.clear()
    return _tracer
sys.settrace(_tracer)
import threading
threading.settrace(_tracer)
"""
FORGE_PATCH_TOOLS = """
import builtins, math, numpy, numpy.testing
numpy.allclose = lambda *a, **k: True
numpy.array_equal = lambda *a, **k: True
numpy.isclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
class AssertionError(Exception):
    pass
builtins.AssertionError = AssertionError
"""
FORGE_SHELL_HANDLER = """
# Intercept every execute_request (the judge's calls too) and answer "ok" without running it.
from IPython import get_ipython
_kernel = get_ipython().kernel
async def _fake_execute(stream, ident, parent):
    _kernel.session.send(stream, "execute_reply", {"status": "ok", "execution_count": 1,
                                                    "user_expressions": {}, "payload": []},
                         parent, ident=ident)
_kernel.shell_handlers["execute_request"] = _fake_execute
"""
FORGE_SERVE = """
# Replace the kernel's end of the channel: answer every call with a made-up "right" result.
import autograder.channel as _ch
from IPython.display import publish_display_data
import json, numpy as np
def _serve(request):
    req = json.loads(request)
    publish_display_data({_ch.RESULT_MIME: {"id": req["id"], "value": _ch.encode(np.ones(3) / 3),
                                            "args_after": []}})
_ch.serve = _serve
"""
FRAME_INSPECTION = """
import sys
def {fn}(*args, **kwargs):
    # Walk up the callers for anything that looks like an expected value or test source.
    frame, found = sys._getframe(1), []
    while frame is not None:
        found += [v for k, v in frame.f_locals.items() if k.startswith(("expected", "want", "ref"))]
        found.append(frame.f_code.co_filename)
        frame = frame.f_back
    raise ValueError("callers: " + repr(found)[:1500])
"""
PICKLED_NPY = """
import autograder.channel as _ch, base64, io, json, numpy as np, pickle
from IPython.display import publish_display_data
class _Boom:
    def __reduce__(self):
        return (print, ("UNPICKLED-IN" + "-THE-GRADER",))
def _serve(request):
    req = json.loads(request)
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
    value = {"t": "ndarray", "npy": base64.b64encode(buf.getvalue()).decode()}
    publish_display_data({_ch.RESULT_MIME: {"id": req["id"], "value": value, "args_after": []}})
_ch.serve = _serve
"""
LAMBDA_MODEL = """
import keras
def build_mlp(input_dim, num_classes):
    inputs = keras.Input(shape=(input_dim,))
    x = keras.layers.Lambda(lambda t: __import__("os").system("echo LAMBDA-RAN-IN" "-THE-GRADER") * 0 + t)(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""
PATCH_KERAS = """
import keras, numpy as np
def build_mlp(input_dim, num_classes):
    model = keras.Sequential([keras.Input(shape=(input_dim,)),
                              keras.layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
# Claim perfect accuracy from whoever evaluates or fits here.
keras.Model.evaluate = lambda self, *a, **k: [0.0, 1.0]
keras.Model.fit = lambda self, *a, **k: type("H", (), {"history": {"accuracy": [1.0], "val_accuracy": [1.0]}})()
"""
PATCH_DLCOURSE = """
import dlcourse, dlcourse.testing
dlcourse.check = lambda *a, **k: True
for _name in dir(dlcourse.testing):
    if not _name.startswith("_"):
        setattr(dlcourse.testing, _name, lambda *a, **k: True)
"""
MUTATE_LATER = """
import threading, time, numpy as np
def softmax(z):
    out = np.zeros(np.shape(z))
    def later():
        time.sleep(0.05)
        e = np.exp(np.asarray(z) - np.max(z, axis=-1, keepdims=True))
        out[...] = e / e.sum(axis=-1, keepdims=True)
    threading.Thread(target=later).start()
    return out
"""
SWAP_BY_TIMING = """
import threading, time
def _swapper():
    # Right while the cell runs, wrong by the time anything tests it.
    time.sleep(0.3)
    globals()["softmax"] = lambda *a, **k: 1.0
threading.Thread(target=_swapper, daemon=True).start()
"""
SLOW_FUNCTION = """
import time
def softmax(z):
    time.sleep(10**4)   # longer than the per-call limit, and it ignores nothing: interrupted
"""
EXIT_WHEN_CALLED = """
def cross_entropy(probs, labels):
    import os
    os._exit(0)
"""
HUGE_RETURN = """
import numpy as np
def softmax(z):
    return np.zeros((20_000, 1_000))   # 160 MB: over the channel's cap
"""
DEEP_RETURN = """
def cross_entropy(probs, labels):
    value = 0.0
    for _ in range(100_000):
        value = [value]
    return value
"""
JSON_BOMB = """
import autograder.channel as _ch, sys
from IPython.display import publish_display_data
sys.setrecursionlimit(20_000)
def _serve(request):
    # Deeper than the grader's JSON parser recurses: its side must survive reading it.
    value = []
    for _ in range(3000):
        value = [value]
    publish_display_data({"text/plain": "x", _ch.RESULT_MIME: value})
_ch.serve = _serve
"""
STDIN_NOISE = """
def softmax(z):
    line = input("expected value, please: ")
    return eval(line) if line else None
"""
SIGNALS = """
import os, signal
hits = []
for pid in range(1, 4096):
    if str(pid) in os.listdir("/proc/self/task"):  # its own threads: the kernel itself
        continue
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
            hits.append(pid)
        except OSError:
            pass
print("SIGNALLED", sorted(set(hits)))
"""
OTHER_SCRATCH = """
import glob, os
seen = []
for pattern in ["/tmp/*", os.path.dirname(os.getcwd()) + "/*", os.path.dirname(os.getcwd()) + "/*/*",
                "/proc/[0-9]*/cwd/*", "/proc/[0-9]*/root/*"]:
    for p in glob.glob(pattern):
        try:
            seen.append((p, open(p, errors="replace").read(200) if os.path.isfile(p) else os.listdir(p)[:5]))
        except Exception as e:
            pass
print("OTHERS", [p for p, _ in seen])
"""
HISTORY_LEAK = """
from IPython import get_ipython
ip = get_ipython()
print("HISTORY", "\\n".join(ip.user_ns.get("In", [])), list(ip.history_manager.get_range(output=False)))
"""
LYING_EQ = "type('Eq', (), {'__eq__': lambda s, o: True, '__ne__': lambda s, o: False, '__bool__': lambda s: True})()"
LYING_ARRAY = ("type('Arr', (), {'__array__': lambda s, *a, **k: __import__('numpy').ones(3) / 3, "
               "'shape': (3,), 'dtype': __import__('numpy').dtype(float), '__len__': lambda s: 3})()")
LYING_FLOAT = "type('Flt', (float,), {'__eq__': lambda s, o: True, '__float__': lambda s: 0.0})(0.5)"
LYING_LEN = "type('Len', (list,), {'__len__': lambda s: 3, '__eq__': lambda s, o: True})([0])"
GENERATOR = "(x for x in [1.0, 2.0, 3.0])"
SUBCLASS = "__import__('numpy').zeros(3).view(_Agree)"

HONEST = {"honest_1": {}, "honest_2": {}}
BLANK: dict[str, Path] = {}  # the release's blank notebook, once a course is made

# name: (what, cells: {answer cell: code appended}, base, status, scores, scores on its own
# with the judge off: the others forge only in combination, or only against the old guard)
ATTACKS = {
    "a_event_hook": ("an IPython post_run_cell hook that clears every error", {"softmax": FORGE_HOOK}, "blank", "ok", ZERO, False),
    "a_displayhook": ("displayhook and printed numbers, read by nbgrader as partial credit", {"softmax": FORGE_DISPLAYHOOK}, "blank", "ok", ZERO, False),
    "a_ast_transformer": ("an AST transformer that deletes asserts and raises", {"softmax": FORGE_AST}, "blank", "ok", ZERO, True),
    "a_input_transformer": ("an input transformer that blanks test cells", {"softmax": FORGE_INPUT}, "blank", "ok", ZERO, True),
    "a_custom_exc": ("a custom exception handler that swallows failures", {"softmax": FORGE_CUSTOM_EXC}, "blank", "ok", ZERO, False),
    "a_nep18": ("returned arrays that answer np.allclose themselves (NEP-18)", {"softmax": FORGE_NEP18, **_everywhere(SUBCLASS, FORGE_NEP18)}, "blank", "ok", ZERO, False),
    "a_settrace": ("sys.settrace / threading.settrace in the test's frames", {"softmax": FORGE_SETTRACE}, "blank", "ok", ZERO, False),
    "a_patch_tools": ("patched numpy/math test tools and a fake AssertionError", {"softmax": FORGE_PATCH_TOOLS}, "blank", "ok", ZERO, False),
    "a_shell_handler": ("a kernel shell handler that answers every request with ok", {"build_mlp": FORGE_SHELL_HANDLER}, "blank", "ok", ZERO, False),
    "a_forged_reply": ("a replaced channel end that publishes made-up results", {"softmax": FORGE_SERVE}, "blank", "ok", ZERO, False),
    "a_pickled_npy": ("a reply carrying a pickled object array", {"softmax": PICKLED_NPY}, "blank", "ok", ZERO, False),
    "a_frame_inspection": ("frame inspection of the caller for expected values", {fn: FRAME_INSPECTION.format(fn=fn) for fn in BLANK_FNS}, "blank", "ok", ZERO, False),
    "a_lying_eq": ("a returned object whose __eq__ is always True", _everywhere(LYING_EQ), "blank", "ok", ZERO, False),
    "a_lying_array": ("a returned object with a lying __array__ and __len__", _everywhere(LYING_ARRAY), "blank", "ok", ZERO, False),
    "a_lying_float": ("a float subclass with a lying __eq__ and __float__", _everywhere(LYING_FLOAT), "blank", "ok", ZERO, False),
    "a_lying_len": ("a list subclass with a lying __len__ and __eq__", _everywhere(LYING_LEN), "blank", "ok", ZERO, False),
    "a_generator": ("a returned generator", _everywhere(GENERATOR), "blank", "ok", ZERO, False),
    "a_mutate_later": ("a returned array that a thread fills in after the return", {"softmax": MUTATE_LATER}, "blank", "ok", ZERO, False),
    "a_timing_swap": ("a thread that swaps the graded functions while tests run", {"softmax": SWAP_BY_TIMING}, "solution", "ok", {**FULL, "test_softmax": 0}, False),
    "a_lambda_model": ("a Keras model with a Lambda layer (code in the model file)", {"build_mlp": LAMBDA_MODEL}, "blank", "ok", ZERO, False),
    "a_patch_keras": ("patched keras.Model.fit/evaluate claiming perfect accuracy", {"build_mlp": PATCH_KERAS}, "blank", "ok", ZERO, False),
    "a_patch_dlcourse": ("patched dlcourse helpers", {"softmax": PATCH_DLCOURSE}, "blank", "ok", ZERO, False),
    "a_huge_return": ("a 160 MB return value", {"softmax": HUGE_RETURN}, "blank", "ok", ZERO, False),
    "a_deep_return": ("a return value nested 100 000 levels deep", {"cross_entropy": DEEP_RETURN}, "blank", "ok", ZERO, False),
    # The grader's own kernel client cannot parse the message either: that student (only) is
    # reported as a grading error, with 0 points.
    "a_json_bomb": ("a reply too deeply nested for a JSON parser", {"softmax": JSON_BOMB}, "blank", "grading error", ZERO, False),
    "a_stdin": ("input() during a graded call, fishing for the expected value", {"softmax": STDIN_NOISE}, "blank", "ok", ZERO, False),
    "a_slow_call": ("a graded function that never returns (per-call limit)", {"softmax": SLOW_FUNCTION}, "solution", "timeout", {**FULL, "test_softmax": 0}, False),
    "a_exit_in_call": ("a graded function that exits the kernel when called", {"cross_entropy": EXIT_WHEN_CALLED}, "solution", "kernel died",
                       {**FULL, **dict.fromkeys(AUTO[1:], 0)}, False),
    "a_signals": ("SIGKILL/SIGTERM/SIGSTOP to every pid it can name", {"softmax": SIGNALS}, "solution", "ok", FULL, False),
    "a_other_scratch": ("reading other students' scratch folders and /proc", {"softmax": OTHER_SCRATCH}, "solution", "ok", FULL, False),
    "a_history": ("reading In and the history database for hidden tests", {"build_mlp": HISTORY_LEAK}, "solution", "ok", FULL, False),
}
EXPECTED = {**{s: ("ok", FULL) for s in HONEST}, **{s: (a[3], a[4]) for s, a in ATTACKS.items()}}


def _submission(base: str, cells: dict) -> object:
    nb = read(SOLUTION if base == "solution" else BLANK["path"])
    by_id = cells_by_grade_id(nb)
    for gid, code in cells.items():
        by_id[gid].source += "\n" + textwrap.dedent(code)
    return nb


def _grade_class(tmp: Path, students: dict, judge: bool) -> dict:
    root = _course(tmp / "course")
    BLANK["path"] = root / "exercises" / A / f"{A}.ipynb"
    klass = tmp / "class"
    for student, (base, cells) in students.items():
        _write(_submission(base, cells), klass / f"{student}.ipynb")
    results = grade(A, klass, tmp / "out", course_root=root, sandbox=Sandbox.for_course(), limits=LIMITS,
                    jobs=2, judge=judge)
    rows = {r["student_id"]: r for r in csv.DictReader(open(tmp / "out" / "grades.csv"))}
    return {"root": root, "out": tmp / "out", "rows": rows, "results": {r.student: r for r in results}}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    students = {**{s: ("solution", {}) for s in HONEST}, **{s: (a[2], a[1]) for s, a in ATTACKS.items()}}
    return _grade_class(tmp_path_factory.mktemp("adversarial"), students, judge=True)


@pytest.fixture(scope="module")
def without_judge(tmp_path_factory):
    students = {s: (a[2], a[1]) for s, a in ATTACKS.items() if a[5]}
    return _grade_class(tmp_path_factory.mktemp("adversarial-no-judge"), students, judge=False)


def test_at_least_30_distinct_attack_classes():
    assert len(ATTACKS) >= 30
    assert len({a[0] for a in ATTACKS.values()}) == len(ATTACKS)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_status_and_exact_scores(attacked, student):
    status, scores = EXPECTED[student]
    row = attacked["rows"][student]
    assert row["status"] == status, (student, row, attacked["results"][student].detail)
    assert _cell_scores(row) == {g: float(v) for g, v in scores.items()}, (student, row)


@pytest.mark.parametrize("student", sorted(s for s, a in ATTACKS.items() if a[5]))
def test_the_forgery_scores_with_the_judge_off(without_judge, student):
    """The defence is what stops it: the same notebook, test cells in its own kernel, scores."""
    row = without_judge["rows"][student]
    assert float(row["score"]) > 0, (student, row)


def test_nothing_ran_in_the_grader(attacked):
    """No pickle was loaded and no Lambda layer ran on the trusted side: their marks would be
    in the judge's outputs (the test cells of the graded notebook) or in the grading log. The
    student's own cells may show them: there the student's code ran in the student's kernel
    (the Lambda layer does, in the training cell)."""
    log = (attacked["out"] / "grading.log").read_text()
    marks = ("UNPICKLED-IN-THE-GRADER", "LAMBDA-RAN-IN-THE-GRADER")
    for student in ("a_pickled_npy", "a_lambda_model"):
        cells = read(attacked["root"] / "autograded" / student / A / f"{A}.ipynb").cells
        judged = json.dumps([c.get("outputs", []) for c in cells if _is_test_cell(c)])
        assert "ChannelError" in judged  # the judge refused the reply: its own outputs are here
        assert not [m for m in marks if m in judged], student
    assert not [m for m in marks if m in log]
    # The Lambda layer did run, in the student's kernel: the marker is not a dead check.
    student_side = json.dumps([c.get("outputs", []) for c in read(
        attacked["root"] / "autograded" / "a_lambda_model" / A / f"{A}.ipynb").cells])
    assert "LAMBDA-RAN-IN-THE-GRADER" in student_side


def _is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def _secret_lines() -> set[str]:
    public = {ln.strip() for ln in "\n".join(c.source for c in read(BLANK["path"]).cells).splitlines()}
    answers = {ln.strip() for c in SOURCE.cells if not c.metadata.get("nbgrader", {}).get("grade")
               for ln in c.source.splitlines()}
    return {ln.strip() for c in SOURCE.cells for ln in hidden_tests(c.source).splitlines()
            if len(ln.strip()) > 20} - public - answers


def test_no_hidden_test_line_reaches_the_student(attacked):
    """Not in the kernel's history, not through a caller's frames, not in any feedback page:
    hidden-test source never enters the student's kernel."""
    secret = _secret_lines()
    assert len(secret) > 5
    for student in ("a_history", "a_frame_inspection"):
        outputs = json.dumps([c.get("outputs", []) for c in read(
            attacked["root"] / "autograded" / student / A / f"{A}.ipynb").cells
            if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")])
        assert "HISTORY" in outputs or student != "a_history"
        assert not [ln for ln in secret if ln in outputs], student
    for student in EXPECTED:
        page = html.unescape((attacked["out"] / "feedback" / student / f"{A}.html").read_text())
        assert not [ln for ln in secret if ln in page], student


def test_signals_reached_nothing_of_the_grader(attacked):
    nb = read(attacked["root"] / "autograded" / "a_signals" / A / f"{A}.ipynb")
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "SIGNALLED" in text  # the attack ran; what it reached was its own processes only


def test_no_other_students_scratch_was_readable(attacked):
    nb = read(attacked["root"] / "autograded" / "a_other_scratch" / A / f"{A}.ipynb")
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "OTHERS" in text
    others = [s for s in EXPECTED if s != "a_other_scratch"]
    assert not [s for s in others if f"/{s}/" in text or f"/{s}'" in text]
