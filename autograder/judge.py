"""The trusted side of grading: test cells run in a kernel that never runs student code.

Today's graded notebook runs its hidden tests inside the student's kernel, where anything
the student's code did (an IPython hook, a lying array, a patched ``np.allclose``) can
forge the verdict. The judge moves every test cell, visible asserts and hidden tests alike,
into a separate *judge kernel*:

1. The student's notebook has run in its sandboxed kernel, which is still alive.
2. The judge kernel starts. Its notebook is built here from the instructor's source, never
   from the submission: a bootstrap cell that connects to the student's kernel through
   :mod:`autograder.channel`, the source's set-up cells, and each test cell, preceded by a
   cell that binds every graded name (``softmax``, ``build_mlp``...) to a
   :class:`~autograder.channel.StudentFunction`.
3. A test cell calls ``softmax(z)`` as before; the call travels to the student's kernel as
   data, and the result comes back as a plain array. Expected values are computed in the
   judge and never leave it; hidden-test source never enters the student's kernel.
4. The judge's outputs of each test cell replace the outputs of that cell in the graded
   notebook, so nbgrader's own ``SaveAutoGrades`` turns them into points.

The judge kernel is an ordinary kernel, started without the grader's secrets (the same
environment allowlist as the student's kernels).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.notebook import graded_functions, nbgrader_meta

JUDGE_KEY = "dlcourse_judge"  # cell metadata: which test cell a judge cell stands for

_BOOTSTRAP = '''\
import jupyter_client as _jc
from autograder.channel import KernelChannel as _KernelChannel, StudentFunction as _StudentFunction

_student_kc = _jc.BlockingKernelClient()
_student_kc.load_connection_file({connection_file!r})
_student_kc.start_channels()
_student_kc.wait_for_ready(timeout=60)
_channel = _KernelChannel(_student_kc, timeout={call_timeout!r})
'''


def graded_test_cells(source_nb) -> list:
    """The autograded test cells of the instructor's source, in order."""
    return [c for c in source_nb.cells if c.cell_type == "code"
            and nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")
            and nbgrader_meta(c).get("grade_id")]


def judge_notebook(source_nb, connection_file: str | Path, call_timeout: float = 60.0):
    """The judge's notebook for one student (see the module's docstring)."""
    names = graded_functions(source_nb)
    bind = "\n".join(f"{n} = _StudentFunction(_channel, {n!r})" for n in names)
    cells = [new_code_cell(_BOOTSTRAP.format(connection_file=str(connection_file),
                                             call_timeout=float(call_timeout)))]
    for c in source_nb.cells:
        if c.cell_type == "code" and nbgrader_meta(c).get("grade_id", "").startswith("setup"):
            cells.append(new_code_cell(c.source))
    for c in graded_test_cells(source_nb):
        gid = nbgrader_meta(c)["grade_id"]
        cells.append(new_code_cell(bind))
        cell = new_code_cell(c.source)
        cell.metadata[JUDGE_KEY] = gid
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def run_judge(source_nb, connection_file: str | Path, *, cell_timeout: float = 120.0,
              call_timeout: float = 60.0, env: dict | None = None,
              kernel_name: str = "python3") -> dict[str, list]:
    """Run the judge for one student; returns the outputs of each test cell by grade_id.

    A test cell the judge could not run to its end (its kernel died, a cell timed out) has
    an error output, so it scores 0.
    """
    nb = judge_notebook(source_nb, connection_file, call_timeout)
    client = NotebookClient(nb, timeout=cell_timeout, allow_errors=True,
                            kernel_name=kernel_name, record_timing=False)
    verdicts: dict[str, list] = {}
    try:
        client.execute(**({"env": env} if env is not None else {}))
    except Exception as exc:  # the judge itself failed: every unfinished test cell fails
        failure = f"{type(exc).__name__}: {exc}"
    else:
        failure = None
    for cell in nb.cells:
        gid = cell.metadata.get(JUDGE_KEY)
        if gid is None:
            continue
        if cell.get("execution_count") is None or failure and not cell.outputs:
            verdicts[gid] = [new_output("error", ename="GradingError",
                                        evalue=f"the test could not run ({failure or 'not executed'})",
                                        traceback=[])]
        else:
            verdicts[gid] = copy.deepcopy(cell.outputs)
    return verdicts


def apply_verdicts(graded_nb, source_nb, verdicts: dict[str, list]) -> None:
    """Give every test cell of the graded notebook the judge's outputs (in place).

    Test cells come from the source (nbgrader's ``OverwriteCells`` restores them); a test
    cell without a verdict fails, so a judge that crashed can never award points.
    """
    wanted = {nbgrader_meta(c)["grade_id"] for c in graded_test_cells(source_nb)}
    for cell in graded_nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code" and gid in wanted:
            cell.outputs = verdicts.get(gid) or [new_output(
                "error", ename="GradingError", evalue="no verdict from the judge", traceback=[])]


def scores(graded_nb) -> dict[str, float]:
    """Points of each autograded test cell, as nbgrader's ``determine_grade`` gives them."""
    from nbgrader.utils import determine_grade

    out = {}
    for cell in graded_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            out[meta["grade_id"]] = determine_grade(cell)[0]
    return out
