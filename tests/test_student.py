"""The student's side of the assignments.

- the named kernel "Deep Learning (TensorFlow)" is registered in the course environment, the
  notebooks name it, and the grader does not depend on it (it grades with ``python3``);
- nbgrader's JupyterLab extensions: assignment list and Validate on, instructor tools off,
  and ``nbgrader validate`` on an unanswered release reports the failures;
- ``dlcourse.check()`` runs exactly the visible tests of the release, reports pass / fail /
  not answered, never raises, and works in a real IPython kernel;
- the Colab install cell does nothing outside Colab and installs the package in it;
- every assignment links its own chapter's sections.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest

import dlcourse
from autograder import EXERCISES, SOLUTIONS, assignments
from autograder.notebook import (cells_by_grade_id, graded_functions, hidden_tests, nbgrader_meta,
                                 read, setup_sources, visible_tests)
from autograder.release_checks import CHECKS, build_checks, render
from conftest import OFFLINE_ENV, REPO
from dlcourse import kernel, selfcheck

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))
from course_links import published_url  # noqa: E402

ASSIGNMENTS = assignments()
BIN = Path(sys.executable).parent
CHAPTERS = {"ps1-basics": "01-basics", "ps2-overfitting": "02-overfitting", "ps3-cnns": "03-cnns",
            "ps4-transfer-learning": "04-transfer-learning", "ps5-advanced": "05-advanced-practices"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _notebooks(assignment):
    return {"solutions": SOLUTIONS / assignment / f"{assignment}.ipynb",
            "exercises": EXERCISES / assignment / f"{assignment}.ipynb"}


def _jupyter(*args) -> str:
    proc = subprocess.run([str(BIN / "jupyter"), *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **OFFLINE_ENV))
    assert proc.returncode == 0, proc.stderr
    return ANSI.sub("", proc.stdout + proc.stderr)


# --- The kernel ------------------------------------------------------------------------------

def _interpreter(kernel_name: str) -> str:
    """The Python a kernel of this name would run (jupyter_client's own resolution)."""
    from jupyter_client.manager import KernelManager

    return KernelManager(kernel_name=kernel_name).format_kernel_cmd()[0]


def test_install_uses_ipykernel_into_a_prefix(tmp_path):
    where = Path(kernel.install_kernel(prefix=str(tmp_path)))
    assert where == tmp_path / "share" / "jupyter" / "kernels" / "dlcourse"
    spec = json.loads((where / "kernel.json").read_text())
    assert spec["display_name"] == "Deep Learning (TensorFlow)"
    assert spec["language"] == "python"
    assert spec["argv"][0] == sys.executable and "ipykernel_launcher" in spec["argv"]


def test_course_kernel_is_registered_in_the_environment():
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    assert "dlcourse" in specs, "run `.venv/bin/python -m dlcourse.kernel install` (make env does)"
    assert Path(specs["dlcourse"]["resource_dir"]).is_relative_to(sys.prefix), \
        "the course kernel belongs to the environment (sys.prefix), not to a home directory"
    assert specs["dlcourse"]["spec"]["display_name"] == "Deep Learning (TensorFlow)"
    assert _interpreter("dlcourse") == sys.executable


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_name_the_course_kernel_with_a_language_fallback(assignment):
    for where, path in _notebooks(assignment).items():
        spec = read(path).metadata.get("kernelspec")
        # "language" lets JupyterLab fall back to the only Python kernel where "dlcourse"
        # is not registered.
        assert spec == {"name": "dlcourse", "display_name": "Deep Learning (TensorFlow)",
                        "language": "python"}, f"{where}: kernelspec {spec}"


def test_grader_runs_python3_whatever_the_notebook_names():
    """nbgrader executes the kernel the notebook names unless Execute.kernel_name is set:
    a grading machine without the course kernel would fail every submission."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert config.Execute.get("kernel_name") == "python3", \
        'nbgrader_config.py needs c.Execute.kernel_name = "python3"'
    assert _interpreter("python3") == sys.executable, "python3 is not this environment's Python"


# --- nbgrader's JupyterLab extensions -----------------------------------------------------------

def test_nbgrader_extensions_are_set_for_students():
    lab = _jupyter("labextension", "list")
    assert re.search(r"@jupyter/nbgrader v0\.9\.\d+ enabled OK", lab), lab
    disabled = lab.split("Disabled extensions:", 1)[1] if "Disabled extensions:" in lab else ""
    for plugin in ("formgrader", "create-assignment", "course-list"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled, f"{plugin} should be off for students"
    # The Assignment List only where an exchange is usable (issue #15: without one it showed
    # "Error fetching courses!"); `python -m autograder.exchange setup` turns it on.
    from dlcourse.kernel import exchange_status

    exchange = "enabled" if exchange_status(REPO)[1] is None else "disabled"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled, "validate-assignment should be on"
    assert ("@jupyter/nbgrader:assignment-list" in disabled) == (exchange == "disabled"), lab

    server = _jupyter("server", "extension", "list")
    states = dict(re.findall(r"^\s*nbgrader\.server_extensions\.(\w+) (enabled|disabled)\s*$",
                             server, re.M))
    # The Validate button's handler is the course's (dlcourse.validate: a per-question answer),
    # so nbgrader's own, on the same route, is off.
    assert states == {"assignment_list": exchange, "validate_assignment": "disabled",
                      "formgrader": "disabled", "course_list": "disabled"}, server
    assert re.search(r"^\s*dlcourse\.validate enabled\s*$", server, re.M), server


def test_validate_reports_the_failures_of_an_unanswered_release():
    """What the Validate button runs, with this environment's nbgrader, offline."""
    notebook = EXERCISES / "ps1-basics" / "ps1-basics.ipynb"
    env = dict(os.environ, **OFFLINE_ENV, PATH=os.pathsep.join([str(BIN), os.environ["PATH"]]))
    proc = subprocess.run([str(BIN / "nbgrader"), "validate", str(notebook)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_functions = len(graded_functions(read(notebook)))
    match = re.search(r"VALIDATION FAILED ON (\d+) CELL\(S\)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert int(match.group(1)) >= n_functions
    assert "NotImplementedError" in proc.stdout and "NoSuchKernel" not in proc.stderr


# --- dlcourse.check() ---------------------------------------------------------------------------

def test_check_data_is_generated_from_the_release():
    released = sorted(p.parent.name for p in EXERCISES.glob("*/*.ipynb")
                      if p.stem == p.parent.name)
    shipped = sorted(p.stem for p in CHECKS.glob("*.json"))
    assert shipped == released, "dlcourse/checks/ differs from exercises/: run `make release`"
    for a in released:
        assert (CHECKS / f"{a}.json").read_text(encoding="utf-8") == render(build_checks(a)), \
            f"dlcourse/checks/{a}.json drifted from exercises/{a}: run `make release`"


def test_the_package_ships_its_check_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"].get("package-data", {}).get("dlcourse", [])
    assert "checks/*.json" in data, "pyproject.toml must ship dlcourse/checks/*.json (Colab installs it)"
    assert selfcheck.available() == sorted(p.stem for p in CHECKS.glob("*.json"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_data_holds_no_hidden_test_or_solution(assignment):
    source = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    cells = cells_by_grade_id(source)
    text = (CHECKS / f"{assignment}.json").read_text(encoding="utf-8")
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    checks = selfcheck.load(assignment)
    assert list(checks) == graded_functions(source)
    for fn, tests in checks.items():
        hidden = {ln.strip() for ln in hidden_tests(cells[f"test_{fn}"].source).splitlines()}
        visible = {ln.strip() for ln in visible_tests(cells[f"test_{fn}"].source).splitlines()}
        leaked = {ln for ln in hidden - visible if len(ln) > 12} & \
            {ln.strip() for ln in tests.splitlines()}
        assert not leaked, f"{fn}: hidden-test lines in the check data: {sorted(leaked)[:3]}"
        assert tests.strip() == visible_tests(cells[f"test_{fn}"].source).strip()


def _solution_namespace(assignment) -> dict:
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    ns: dict = {"__name__": "__main__"}
    for source in setup_sources(nb):
        exec(source, ns)
    cells = cells_by_grade_id(nb)
    for fn in graded_functions(nb):
        exec(cells[fn].source, ns)
    return ns


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_passes_the_solution_and_reports_the_blank_release(assignment):
    ns = _solution_namespace(assignment)
    results = selfcheck.run(assignment=assignment, namespace=ns)
    assert [r.question for r in results] == graded_functions(read(SOLUTIONS / assignment / f"{assignment}.ipynb"))
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]

    # The released answer cells: each raises NotImplementedError, when called or (a class
    # body) when its cell runs, which leaves the name undefined.
    released = read(EXERCISES / assignment / f"{assignment}.ipynb")
    cells = cells_by_grade_id(released)
    blank = dict(ns)
    for fn in graded_functions(released):
        blank.pop(fn)
        try:
            exec(cells[fn].source, blank)
        except NotImplementedError:
            pass
    results = selfcheck.run(assignment=assignment, namespace=blank)
    assert all(r.status == selfcheck.UNANSWERED for r in results), [r.line() for r in results]


def _softmax_ok(z):
    import numpy as np

    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_overflows(z):
    import numpy as np

    e = np.exp(np.asarray(z, dtype=float))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_todo(z):
    raise NotImplementedError()


def _softmax_crashes(z):
    return z.nope


@pytest.mark.parametrize("answer, status, says", [
    (_softmax_ok, selfcheck.PASSED, "the visible checks pass"),
    (_softmax_overflows, selfcheck.FAILED, "subtract each row's maximum"),
    (_softmax_todo, selfcheck.UNANSWERED, "NotImplementedError"),
    (None, selfcheck.UNANSWERED, "softmax is not defined yet"),
    (_softmax_crashes, selfcheck.ERROR, "AttributeError"),
])
def test_check_reports_each_outcome(answer, status, says, capsys):
    ns = {"softmax": answer} if answer else {}
    with np_quiet():
        [result] = selfcheck.run("softmax", assignment="ps1-basics", namespace=ns)
    assert result.status == status and says in result.line(), result.line()
    assert set(ns) <= {"softmax"}, "the checks' variables leaked into the student's namespace"
    assert capsys.readouterr().out == "", "run() prints nothing; check() prints the summary"


def np_quiet():
    import numpy as np

    return np.errstate(all="ignore")


def test_check_prints_never_raises_and_uses_the_callers_namespace():
    code = "import dlcourse\ndlcourse.check('softmax', assignment='ps1-basics')\n" \
           "dlcourse.check('no_such_question', assignment='ps1-basics')\n" \
           "dlcourse.check(assignment='no-such-assignment')\n"
    ns = {"softmax": _softmax_overflows}
    proc_out = _capture(lambda: exec(code, ns))
    lines = proc_out.splitlines()
    assert lines[0].startswith("[FAIL] softmax: softmax overflows"), proc_out
    assert "ps1-basics has no question 'no_such_question'" in lines[1]
    assert "no checks for assignment 'no-such-assignment'" in lines[2]


def _capture(fn) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), np_quiet():
        fn()
    return out.getvalue()


def test_check_needs_the_assignment_only_when_the_question_is_ambiguous(monkeypatch):
    monkeypatch.setattr(selfcheck, "_assignment", None)
    [result] = selfcheck.run("softmax", namespace={"softmax": _softmax_ok})
    assert result.passed  # softmax belongs to ps1-basics only
    out = _capture(lambda: dlcourse.check())
    assert "use_assignment" in out
    dlcourse.use_assignment("ps3-cnns")
    assert selfcheck._assignment == "ps3-cnns"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_setup_cell_names_its_assignment(assignment):
    for where, path in _notebooks(assignment).items():
        imports = cells_by_grade_id(read(path))["setup_imports"].source
        assert f'dlcourse.use_assignment("{assignment}")' in imports, where


def test_check_in_a_real_kernel():
    """In Jupyter (and Colab), check() finds the answers in the kernel's user namespace."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (
        "import dlcourse\ndlcourse.use_assignment('ps1-basics')",
        "import numpy as np\ndef softmax(z):\n    z = np.asarray(z, float)\n"
        "    e = np.exp(z - z.max(axis=-1, keepdims=True))\n    return e / e.sum(axis=-1, keepdims=True)",
        "dlcourse.check('softmax')",
        "def cross_entropy(probs, labels):\n    return None",
        "dlcourse.check()",
        "print('still running')",
    )]
    env = dict(os.environ, **OFFLINE_ENV, PYTHONPATH=str(REPO))
    NotebookClient(nb, kernel_name="python3", timeout=300, cwd=str(REPO),
                   resources={"metadata": {"path": str(REPO)}}, env=env).execute()

    def text(i):
        return "".join(o.get("text", "") for o in nb.cells[i].outputs)

    assert text(2).strip() == "[pass] softmax: the visible checks pass"
    summary = text(4)
    assert "[pass] softmax" in summary
    assert "[FAIL] cross_entropy: cross_entropy must return a Python float" in summary
    assert "[todo] build_mlp: not answered yet (build_mlp is not defined yet" in summary
    assert "[todo] two_layer_net: not answered yet" in summary
    from autograder.notebook import graded_functions, read
    questions = len(graded_functions(read(REPO / "solutions" / "ps1-basics" / "ps1-basics.ipynb")))
    assert questions == 9 and f"1 of {questions} questions pass their visible checks" in summary
    assert text(5).strip() == "still running"


# --- The Colab cell ------------------------------------------------------------------------------

COLAB_SPEC = "dlcourse @ git+https://github.com/dl-course/deep-learning-keras"


def _colab_cell(path):
    code = [c for c in read(path).cells if c.cell_type == "code"]
    return code[0]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_colab_cell_is_first_locked_and_magic_free(assignment):
    for where, path in _notebooks(assignment).items():
        cell = _colab_cell(path)
        meta = nbgrader_meta(cell)
        assert meta.get("grade_id") == "setup_colab" and meta.get("locked"), where
        assert not meta.get("grade") and not meta.get("solution"), where
        assert not re.search(r"^\s*[%!]", cell.source, re.M), f"{where}: IPython magic"
        assert COLAB_SPEC in cell.source


def _run_colab_cell(source, in_colab: bool, monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(source, {"__name__": "__main__"})
    return calls


def test_colab_cell_installs_only_in_colab(monkeypatch):
    source = _colab_cell(EXERCISES / "ps1-basics" / "ps1-basics.ipynb").source
    assert _run_colab_cell(source, in_colab=False, monkeypatch=monkeypatch) == []
    [(cmd, kw)] = _run_colab_cell(source, in_colab=True, monkeypatch=monkeypatch)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and cmd[-1] == COLAB_SPEC
    assert kw.get("check") is True


def test_colab_install_spec_names_this_package():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["project"]["name"] == COLAB_SPEC.split(" @ ")[0]
    assert config["project"]["dependencies"] == [], "Colab brings TensorFlow and friends itself"
    # Colab's runtime moved to Python 3.13 in August 2026 (googlecolab/colabtools#6081); the
    # course environment itself is pinned to 3.11 by the Makefile and the lock, not here.
    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(config["project"]["requires-python"])
    assert requires.contains("3.11") and requires.contains("3.13"), \
        f"pip would refuse to install dlcourse in Colab: requires-python {requires}"
    assert "dlcourse" in config["tool"]["setuptools"]["packages"]
    repo_url = COLAB_SPEC.split("git+", 1)[1]
    assert repo_url in (REPO / "_config.yml").read_text(), "install from the book's repository"


# --- Links to the book ------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_links_its_chapter_sections(assignment):
    """Every part links the sections of its own chapter to read first, and the intro the
    chapter, as absolute URLs of the published book (they work in JupyterLab, Colab and the
    feedback pages; tests/test_book_links.py checks each against the built site)."""
    import yaml

    chapter = CHAPTERS[assignment]
    site = re.escape(published_url(yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]))
    chapter_text = (REPO / "book" / f"{chapter}.md").read_text(encoding="utf-8")
    targets = set(re.findall(r"^\((topic-[\w-]+)\)=", chapter_text, re.M))
    for where, path in _notebooks(assignment).items():
        nb = read(path)
        md = [c.source for c in nb.cells if c.cell_type == "markdown"]
        linked = re.findall(rf"\]\({site}book/([\w-]+)\.html#(topic-[\w-]+)\)", "\n".join(md))
        assert linked, f"{where}: no links to the chapter's sections"
        wrong = sorted({f"{page}#{t}" for page, t in linked if page != chapter or t not in targets})
        assert not wrong, f"{where}: {wrong} are not topics of book/{chapter}.md"
        assert re.search(rf"\]\({site}book/{chapter}\.html\)", md[0]), f"{where}: the intro does not link the chapter"
        assert not re.search(r"\]\((#topic-|[^)]*\.md\b)", "\n".join(md)), \
            f"{where}: a relative link (#topic-... or ...md) goes nowhere in JupyterLab, Colab and feedback"
        parts = [s for s in md if s.startswith("## Part ")]
        assert parts and all(re.search(rf"\]\({site}book/{chapter}\.html#topic-", s) for s in parts), \
            f"{where}: every part links the sections to read first"

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_set_up_cell_prints_the_device_table_once(assignment):
    """dlcourse.setup() prints the table and returns the same as data: as a cell's last bare
    expression, Jupyter would show its repr under the table (issue #15)."""
    import ast

    for where, path in _notebooks(assignment).items():
        cells = [c.source for c in read(path).cells if c.cell_type == "code" and "dlcourse.setup(" in c.source]
        assert len(cells) == 1, f"{where}: {len(cells)} set-up cells"
        last = ast.parse(cells[0]).body[-1]
        shown = isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and \
            ast.unparse(last.value.func).endswith("setup")
        assert not shown, f"{where}: the set-up cell ends with a bare dlcourse.setup(...): its repr is shown too"
