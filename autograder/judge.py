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
from pathlib import Path

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.notebook import graded_functions, nbgrader_meta

_BOOTSTRAP = '''\
import jupyter_client as _jc
from autograder.channel import KernelChannel as _KernelChannel, StudentFunction as _StudentFunction

_student_kc = _jc.BlockingKernelClient()
_student_kc.load_connection_file({connection_file!r})
_student_kc.start_channels()
# wait_for_ready() gives up ("Kernel died before replying to kernel_info") when one heartbeat
# is missed (jupyter_client's HBChannel waits 1 s), which happens on a loaded machine while
# the kernel is alive: try again, up to 6 times.
import time as _time
for _attempt in range(6):
    try:
        _student_kc.wait_for_ready(timeout=60)
        break
    except RuntimeError:
        if _attempt == 5:
            raise
        _time.sleep(2)
_channel = _KernelChannel(_student_kc, timeout={call_timeout!r})
'''


def graded_test_cells(source_nb) -> list:
    """The autograded test cells of the instructor's source, in order."""
    return [c for c in source_nb.cells if c.cell_type == "code"
            and nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")
            and nbgrader_meta(c).get("grade_id")]


class JudgeSession:
    """One judge kernel for one student's kernel: set up once, then any test cell, any
    number of times (the grading-power suite runs many mutants through one session)."""

    def __init__(self, source_nb, connection_file: str | Path, *, cell_timeout: float = 120.0,
                 call_timeout: float = 60.0, env: dict | None = None, kernel_name: str = "python3",
                 km=None):
        """``km``: the judge's kernel manager (the grading command forks warm judge kernels,
        :mod:`autograder.kernels`); without one, nbclient starts a ``kernel_name`` kernel."""
        self.source_nb = source_nb
        self.names = graded_functions(source_nb)
        self._tests = {nbgrader_meta(c)["grade_id"]: c for c in graded_test_cells(source_nb)}
        self._nb = new_notebook(cells=[])
        self._nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name,
                                           "language": "python"}
        self._client = NotebookClient(self._nb, km=km, timeout=cell_timeout, allow_errors=True,
                                      kernel_name=kernel_name, record_timing=False)
        self._connection_file, self._call_timeout, self._env = connection_file, call_timeout, env
        self._km, self._context, self._setup_cells = km, None, 0

    def __enter__(self) -> "JudgeSession":
        self._context = self._client.setup_kernel(**({"env": self._env} if self._env else {}))
        try:
            self._context.__enter__()
            self._run(_BOOTSTRAP.format(connection_file=str(self._connection_file),
                                        call_timeout=float(self._call_timeout)))
            for c in self.source_nb.cells:
                if c.cell_type == "code" and nbgrader_meta(c).get("grade_id", "").startswith("setup"):
                    self._run(c.source)
            self._setup_cells = len(self._nb.cells)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._context.__exit__(*exc)
        finally:
            if self._km is not None:
                # nbclient shuts down only a kernel it started itself: this one is ours.
                self._shutdown_given_kernel()

    def _shutdown_given_kernel(self) -> None:
        from jupyter_core.utils import run_sync

        kc, self._client.kc = self._client.kc, None
        if kc is not None:
            kc.stop_channels()

        async def shutdown():
            if self._km.has_kernel:
                await self._km.shutdown_kernel(now=True)
            else:
                await self._km.cleanup_resources()

        run_sync(shutdown)()

    def failed_setup(self) -> str | None:
        """The first error of the bootstrap or the set-up cells (the judge cannot judge)."""
        for cell in self._nb.cells[:self._setup_cells]:
            for out in cell.outputs:
                if out.get("output_type") == "error":
                    return f"{out.get('ename')}: {out.get('evalue')}"
        return None

    def _run(self, source: str) -> list:
        cell = new_code_cell(source)
        self._nb.cells.append(cell)
        self._client.execute_cell(cell, len(self._nb.cells) - 1)
        return cell.outputs

    def run_test(self, grade_id: str, source: str | None = None) -> list:
        """The outputs of one test cell (its whole source, or ``source``), run against the
        student's current functions. If the judge could not set up (the student's kernel did
        not answer, a set-up cell failed), the cell fails without running."""
        failed = self.failed_setup()
        if failed:
            return [new_output("error", ename="GradingError", evalue=f"the judge could not start ({failed})",
                               traceback=[])]
        self._run("\n".join(f"{n} = _StudentFunction(_channel, {n!r})" for n in self.names))
        return copy.deepcopy(self._run(self._tests[grade_id].source if source is None else source))


def run_judge(source_nb, connection_file: str | Path, *, cell_timeout: float = 120.0,
              call_timeout: float = 60.0, env: dict | None = None,
              kernel_name: str = "python3") -> dict[str, list]:
    """Run every test cell of the source for one student; their outputs by grade_id.

    A test cell the judge could not run to its end (its kernel died, a cell timed out) has
    an error output, so it scores 0.
    """
    verdicts: dict[str, list] = {}
    failure = "not run"
    try:
        with JudgeSession(source_nb, connection_file, cell_timeout=cell_timeout,
                          call_timeout=call_timeout, env=env, kernel_name=kernel_name) as judge:
            for cell in graded_test_cells(source_nb):
                gid = nbgrader_meta(cell)["grade_id"]
                verdicts[gid] = judge.run_test(gid)
    except Exception as exc:  # the judge itself failed: every unfinished test cell fails
        failure = f"{type(exc).__name__}: {exc}"
    for cell in graded_test_cells(source_nb):
        gid = nbgrader_meta(cell)["grade_id"]
        if gid not in verdicts:
            verdicts[gid] = [new_output("error", ename="GradingError",
                                        evalue=f"the test could not run ({failure})", traceback=[])]
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
