"""Grade a class: ``python -m autograder grade ASSIGNMENT [SUBMISSIONS] --out DIR [--jobs N]``.

A thin layer over nbgrader. Each submission goes through nbgrader's own ``Autograde``
converter and preprocessors (restore test cells from the source, execute, save the grades in
the gradebook), then ``GenerateFeedback``. What this module adds:

- **intake** (:mod:`autograder.submissions`): folders, zips or ``nbgrader collect``'s layout,
  with a clear status for a student whose notebook is missing or unreadable;
- **parallel grading**: ``--jobs`` submissions at once, in threads that each run one
  ``Autograde`` for one student; gradebook access is serialised by one lock, so SQLite
  stays consistent (a PostgreSQL gradebook works the same way);
- **warm kernels**: each notebook runs in a fresh kernel forked from a process that has
  already imported TensorFlow (:mod:`autograder.kernels`), instead of paying the import each
  time;
- **limits**: a wall-clock limit per notebook, an output cap, and resource limits per kernel;
  a kernel that dies or hits a limit costs the student the cells it did not finish, never
  the grading of others;
- **feedback without hidden tests** (:mod:`autograder.feedback`) and **per-cell export**
  (``grades.csv``);
- **resumable runs**: a student whose submission was graded (same file) is not graded again
  unless ``--force``; a rerun only re-exports, with manual grades merged in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from nbformat.v4 import new_output
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder import REPO_ROOT, notebook as nbtools
from autograder.environment import base_environment, kernel_environment
from autograder.gradebook import (DB_LOCK, GradebookError, GradingState, assignment_registered, check_roster,  # noqa: F401
                                  course_id, export_rows, register_assignment, shard_share, write_grades_csv,
                                  zero_submission)
from autograder.submissions import Intake, SubmissionsError, import_submissions

log = logging.getLogger("autograder.grade")


class GradeCommandError(RuntimeError):
    """The command cannot run at all (bad arguments, no gradebook, no kernels)."""


@dataclass
class Limits:
    """Per-submission limits. The defaults fit the five assignments on a 2-core CPU."""

    notebook_seconds: float = 600        # wall clock for the whole notebook
    cell_seconds: int = 120              # wall clock per cell (nbgrader's Execute.timeout)
    output_bytes: int = 5 * 2**20        # all outputs of the notebook together
    memory_bytes: int | None = 4 * 2**30  # on top of what the preloaded libraries use
    cpu_seconds: int | None = 1200       # CPU time of the kernel process
    processes: int | None = None         # needs a kernel user id of its own (the sandbox)
    file_bytes: int | None = 256 * 2**20  # largest file the kernel may write
    # Everything in the kernel's scratch folder, its only writable place on disk (the grader's
    # disk, shared with the other students' folders and the gradebook): bytes allocated, and
    # files and folders. Checked by DiskWatch every DISK_POLL_SECONDS.
    disk_bytes: int | None = 2**30
    disk_entries: int | None = 100_000
    feedback_seconds: float = 120        # to render one student's feedback page

    def kernel_limits(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpu_seconds": self.cpu_seconds,
                "processes": self.processes, "file_bytes": self.file_bytes}


@dataclass
class Result:
    student: str
    status: str
    detail: str = ""
    sha256: str = ""
    seconds: float = 0.0


DISK_POLL_SECONDS = 0.5


def scratch_usage(folder: Path) -> tuple[int, int]:
    """``(bytes, entries)`` under ``folder``: bytes allocated on disk (``st_blocks``, so a sparse
    file counts what it really uses) and the number of files, folders and links. Symbolic links
    are not followed; a folder that vanishes or cannot be read midway is skipped."""
    total = entries = 0
    stack = [os.fspath(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return total, entries


class DiskWatch(threading.Thread):
    """Calls ``on_exceeded(detail)`` once when ``folder`` holds more than ``max_bytes`` or
    ``max_entries`` (None: no limit), checking every ``interval`` seconds until :meth:`stop`.
    RLIMIT_FSIZE caps one file; this caps them all: without it one student's kernel could fill
    the disk under the other students and the gradebook."""

    def __init__(self, folder: Path, max_bytes: int | None, max_entries: int | None, on_exceeded,
                 interval: float = DISK_POLL_SECONDS):
        super().__init__(daemon=True, name=f"disk-watch-{Path(folder).name}")
        self.folder, self.max_bytes, self.max_entries = Path(folder), max_bytes, max_entries
        self.on_exceeded, self.interval, self._done = on_exceeded, interval, threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            used, entries = scratch_usage(self.folder)
            if self.max_bytes is not None and used > self.max_bytes:
                detail = f"more than {self.max_bytes / 2**20:g} MB written to its folder"
            elif self.max_entries is not None and entries > self.max_entries:
                detail = f"more than {self.max_entries} files and folders written to its folder"
            else:
                continue
            if not self._done.is_set():
                self.on_exceeded(detail)
            return

    def stop(self) -> None:
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)


@dataclass
class GradingRun:
    """Everything one ``grade`` command needs; shared by the worker threads."""

    assignment: str
    course_root: Path
    db_url: str
    limits: Limits
    zygote: object = None
    kernel_env: dict = field(default_factory=dict)  # the zygote's (autograder.environment)
    scratch_root: Path | None = None
    kernel_options: object = None   # callable(student, scratch) -> extra ForkKernelManager settings
    kernel_end: object = None       # callable(student, uid, scratch) -> processes killed (the sandbox)
    judge: bool = True              # test cells decided by the judge (False: in the student's
                                    # kernel, as plain nbgrader does; only tests use it)
    judge_zygote: object = None     # forks the judge kernels (unsandboxed: they run no student code)
    judge_root: Path | None = None  # the judge kernels' private folders (root only)
    source: object = None           # the instructor's notebook: test cells and set-up cells
    statuses: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    live_kernels: int = 0           # from a kernel's start until nothing of it runs any more
    peak_kernels: int = 0

    def set_status(self, student: str, status: str, detail: str = "") -> None:
        with self.lock:
            self.statuses.setdefault(student, (status, detail))

    def new_kernel_manager(self, student: str):
        from autograder.kernels import ForkKernelManager

        scratch = self.scratch_root / student
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        # From the allowlist only; everything a kernel writes by default goes to its scratch.
        env = kernel_environment(self.kernel_env, scratch)
        settings = dict(zygote=self.zygote, kernel_env=env, kernel_cwd=str(scratch),
                        limits=self.limits.kernel_limits(),
                        kernel_log=str(self.scratch_root / f"{student}.kernel.log"))
        if self.kernel_options is not None:
            settings.update(self.kernel_options(student, scratch))
        with self.lock:
            self.live_kernels += 1
            self.peak_kernels = max(self.peak_kernels, self.live_kernels)
        return ForkKernelManager(**settings)

    @property
    def test_ids(self) -> set[str]:
        from autograder.judge import graded_test_cells

        return {nbtools.nbgrader_meta(c)["grade_id"] for c in graded_test_cells(self.source)}

    def new_judge(self, connection_file: str):
        """A judge (:mod:`autograder.judge`) for the student's kernel behind
        ``connection_file``: a kernel forked from the judge's zygote, with the allowlisted
        environment, in a private folder, on ZeroMQ ipc sockets (nothing on the network)."""
        from autograder.judge import JudgeSession
        from autograder.kernels import ForkKernelManager

        folder = self.judge_root / secrets.token_hex(8)
        folder.mkdir(mode=0o700)
        km = ForkKernelManager(zygote=self.judge_zygote, kernel_env=kernel_environment(self.kernel_env, folder),
                               kernel_cwd=str(folder), kernel_log=str(folder / "judge.log"),
                               limits={k: v for k, v in self.limits.kernel_limits().items() if k != "processes"},
                               transport="ipc", ip=str(folder / "kernel"),
                               connection_file=str(folder / "kernel.json"))
        # The notebook's time limit bounds the judge too: no per-cell limit of its own.
        return JudgeSession(self.source, connection_file, km=km, cell_timeout=self.limits.notebook_seconds,
                            call_timeout=self.limits.cell_seconds), folder

    def end_kernel(self, student: str, km) -> None:
        """After a notebook, its kernel shut down: nothing started by it may still run (in the
        sandbox, every process of its uid is killed), and its scratch folder goes."""
        scratch = self.scratch_root / student
        try:
            if self.kernel_end is not None and km.uid is not None:
                killed = self.kernel_end(student, km.uid, scratch)
                if killed:
                    log.warning("%s: killed %d process(es) that outlived the notebook (kernel uid %d)",
                                student, killed, km.uid)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
        except Exception:
            log.exception("%s: the kernel's processes could not all be killed; its uid is retired", student)
            raise
        with self.lock:
            self.live_kernels -= 1


# ---------------------------------------------------------------------------------------------
# nbgrader preprocessors and converter, adapted for threads and warm kernels


def _locked(cls):
    """A subclass of an nbgrader preprocessor that holds the gradebook lock while it runs."""

    def preprocess(self, nb, resources):
        with DB_LOCK:
            return cls.preprocess(self, nb, resources)

    return type(cls.__name__, (cls,), {"preprocess": preprocess, "__module__": __name__})


def _pooled_execute_class(grading_run: GradingRun):
    from nbgrader.preprocessors import Execute

    class PooledExecute(Execute):
        """nbgrader's Execute with a forked warm kernel, a notebook deadline and an output cap."""

        # A class attribute, not a config value: traitlets deep-copies config, and the run
        # holds the kernel server's pipes.
        run = grading_run

        def preprocess(self, nb, resources, km=None):
            run: GradingRun = self.run
            student = resources["nbgrader"]["student"]
            self._student, self._finished, self._output_bytes = student, set(), 0
            self._judge, self._judge_folder, self._judge_failed = None, None, None
            self._test_ids = run.test_ids if run.judge else set()
            self._km = km = run.new_kernel_manager(student)
            timer = threading.Timer(run.limits.notebook_seconds, self._stop,
                                    args=("timeout", f"the notebook ran over {run.limits.notebook_seconds:g} s"))
            timer.daemon = True
            timer.start()
            disk = DiskWatch(run.scratch_root / student, run.limits.disk_bytes, run.limits.disk_entries,
                             lambda detail: self._stop("disk limit", detail))
            disk.start()
            try:
                nb, resources = super().preprocess(nb, resources, km=km)
                code = self._exit_code()
                if code is not None:  # it died during the last test cell's calls
                    run.set_status(student, {-24: "cpu limit", -25: "output limit"}.get(code, "kernel died"),
                                   f"kernel exit code {code}")
            except DeadKernelError:
                code = km.provisioner.process.returncode if km.provisioner and km.provisioner.process else None
                reason = {-24: "cpu limit", -25: "output limit"}.get(code, "kernel died")
                run.set_status(student, reason, f"kernel exit code {code}")
                nb = self.nb
                self._fail_unfinished(nb, run.statuses[student][0])
            finally:
                timer.cancel()
                disk.stop()
                self._close_judge()
                try:
                    # nbclient shuts down only a kernel manager it created itself, never one it
                    # was given: stop this one's channels and kernel here.
                    run_sync(self._async_shutdown_kernel)(km)
                finally:
                    run.end_kernel(student, km)
            return nb, resources

        async def _async_shutdown_kernel(self, km) -> None:
            kc, self.kc, self.km = self.kc, None, None
            if kc is not None:
                kc.stop_channels()
            try:
                if km.has_kernel:
                    await km.shutdown_kernel(now=True)  # kill, wait, then cleanup_resources
                else:
                    await km.cleanup_resources()
            except Exception:
                log.exception("%s: shutting the kernel down failed", self._student)

        def _stop(self, status: str, detail: str) -> None:
            self.run.set_status(self._student, status, detail)
            proc = getattr(self._km.provisioner, "process", None) if self._km.provisioner else None
            if proc is not None:
                proc.kill()

        def _fail_unfinished(self, nb, status: str) -> None:
            # A test cell with no error output would get full points: every code cell that did
            # not run to the end gets an error, so it scores nothing.
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and index not in self._finished:
                    cell.outputs.append(new_output("error", ename="GradingStopped", evalue=status,
                                                   traceback=[f"Grading stopped: {status}."]))

        def _exit_code(self):
            proc = getattr(self._km.provisioner, "process", None) if self._km.provisioner else None
            return proc.poll() if proc is not None else None

        def preprocess_cell(self, cell, resources, index):
            gid = nbtools.nbgrader_meta(cell).get("grade_id")
            if cell.cell_type == "code" and gid in self._test_ids:
                # A test cell never runs in the student's kernel: its source (restored from
                # the instructor's by OverwriteCells) runs in the judge, which calls the
                # student's functions as they are at this point of the notebook.
                cell.outputs = self._verdict(gid)
                cell.execution_count = None
                self._finished.add(index)
                return cell, resources
            result = super().preprocess_cell(cell, resources, index)
            self._finished.add(index)
            return result

        def _verdict(self, grade_id: str) -> list:
            try:
                if self._judge is None and self._judge_failed is None:
                    self._judge, self._judge_folder = self.run.new_judge(self._km.connection_file)
                    self._judge.__enter__()
                if self._judge_failed is None:
                    return self._judge.run_test(grade_id)
            except Exception as exc:  # the judge itself failed: no verdict, no points
                log.exception("%s: the judge failed at %s", self._student, grade_id)
                self._judge_failed = f"{type(exc).__name__}: {exc}"[:300]
                self._close_judge()
            return [new_output("error", ename="GradingError", traceback=[],
                               evalue=f"the test could not run ({self._judge_failed})")]

        def _close_judge(self) -> None:
            judge, self._judge = self._judge, None
            try:
                if judge is not None:
                    judge.__exit__(None, None, None)
            except Exception:
                log.exception("%s: shutting the judge down failed", self._student)
            finally:
                if self._judge_folder is not None:
                    shutil.rmtree(self._judge_folder, ignore_errors=True)
                    self._judge_folder = None

        def process_message(self, msg, cell, cell_index):
            # Every iopub message that can add to the notebook counts against the cap, not only
            # new outputs: display updates (counted once per output they rewrite) and comm
            # messages too. A message over the cap is dropped, and the kernel is stopped.
            self._output_bytes += message_bytes(msg, self._display_id_map)
            if self._output_bytes > self.run.limits.output_bytes:
                self._stop("output limit", f"more than {self.run.limits.output_bytes / 2**20:g} MB of output")
                return None
            if msg.get("msg_type") in COMM_MESSAGES:
                # Counted, then ignored: grading renders no widgets, and nbclient's widget
                # handling raises on a malformed comm_open (which failed the whole submission).
                return None
            return super().process_message(msg, cell, cell_index)

    return PooledExecute


UNCOUNTED_MESSAGES = {"status", "execute_input"}  # they add nothing to the notebook
COMM_MESSAGES = {"comm_open", "comm_msg", "comm_close"}


def message_bytes(msg: dict, display_id_map: dict) -> int:
    """What one iopub message can add to the executed notebook (and so to the feedback): its
    content and binary buffers, times the number of outputs it writes. A message with a
    ``display_id`` rewrites every output already showing that id (nbclient's display map:
    {display_id: {cell_index: [output_index, ...]}}), and a new display adds one more."""
    msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
    if msg_type in UNCOUNTED_MESSAGES:
        return 0
    content = msg.get("content") or {}
    size = len(json.dumps(content, default=str)) + sum(len(b) for b in msg.get("buffers") or [])
    transient = content.get("transient") if isinstance(content, dict) else None
    display_id = transient.get("display_id") if isinstance(transient, dict) else None
    if display_id and msg_type in ("execute_result", "display_data", "update_display_data"):
        shown = sum(len(outputs) for outputs in display_id_map.get(display_id, {}).values())
        size *= max(1, shown + (msg_type != "update_display_data"))
    return size


def _deduplicate_ids_class():
    from nbgrader import utils
    from nbgrader.preprocessors import DeduplicateIds

    class DeduplicateIds(DeduplicateIds):
        """nbgrader's DeduplicateIds leaves an empty ``nbgrader`` dict on a duplicate cell,
        which makes OverwriteCells crash (KeyError 'grade_id'); drop the key instead. As in
        nbgrader, the last copy of a cell keeps its grading metadata."""

        def preprocess_cell(self, cell, resources, cell_index):
            if not (utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell)):
                return cell, resources
            grade_id = cell.metadata.nbgrader.get("grade_id")
            if grade_id in self.grade_ids or grade_id is None:
                self.log.warning("Cell with id '%s' exists multiple times!", grade_id)
                del cell.metadata["nbgrader"]
            else:
                self.grade_ids.add(grade_id)
            return cell, resources

    return DeduplicateIds


def _pooled_autograde_class():
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import BaseConverter

    class PooledAutograde(Autograde):
        def init_assignment(self, assignment_id, student_id):
            with DB_LOCK:
                super().init_assignment(assignment_id, student_id)

        def convert_single_notebook(self, notebook_filename):
            # Autograde.convert_single_notebook without its `utils.setenv(NBGRADER_EXECUTION=...)`:
            # that helper (nbgrader 0.9.6) deletes the variable afterwards, which fails when
            # another thread deleted it first. The kernels get NBGRADER_EXECUTION in their env.
            self.log.info("Sanitizing %s", notebook_filename)
            self._sanitizing = True
            self._init_preprocessors()
            BaseConverter.convert_single_notebook(self, notebook_filename)
            notebook_filename = os.path.join(self.writer.build_directory, os.path.basename(notebook_filename))
            self.log.info("Autograding %s", notebook_filename)
            self._sanitizing = False
            self._init_preprocessors()
            try:
                BaseConverter.convert_single_notebook(self, notebook_filename)
            finally:
                self._sanitizing = True

    return PooledAutograde


def course_config(course_root: Path, db_url: str, run: GradingRun | None = None) -> Config:
    """The course's nbgrader_config.py (of this repository), pointed at ``course_root``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader import preprocessors as pp

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    cfg.CourseDirectory.root = str(course_root)
    cfg.CourseDirectory.db_url = db_url
    if run is not None:
        PooledExecute = _pooled_execute_class(run)
        cfg.Execute.timeout = run.limits.cell_seconds
        # nbclient waits this long for a cell's last outputs after its reply (default 4 s, and
        # nbgrader then fails the whole submission): too short for a loaded grading machine.
        # The reply's status still decides pass or fail, so late output is not a risk.
        cfg.Execute.iopub_timeout = 30
        cfg.Execute.raise_on_iopub_timeout = False
        cfg.Autograde.sanitize_preprocessors = [
            _locked(pp.ClearOutput), _locked(_deduplicate_ids_class()), _locked(pp.OverwriteKernelspec),
            _locked(pp.OverwriteCells), _locked(pp.CheckCellMetadata)]
        cfg.Autograde.autograde_preprocessors = [
            PooledExecute, pp.IgnorePattern, ClearMetadataPreprocessor, pp.LimitOutput,
            _locked(pp.SaveAutoGrades), _locked(pp.AssignLatePenalties), pp.CheckCellMetadata]
    return cfg


def _grade_one(run: GradingRun, cfg: Config, intake: Intake) -> Result:
    from nbgrader.coursedir import CourseDirectory

    start = time.monotonic()
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = run.assignment
    coursedir.student_id = intake.student
    converter = _pooled_autograde_class()(coursedir=coursedir, config=cfg, log=log)
    converter.force = True
    try:
        converter.start()
    except Exception as exc:  # nbgrader reports any failure of one student as an exception
        log.exception("autograde failed for %s", intake.student)
        run.set_status(intake.student, "grading error", f"{type(exc).__name__}: {exc}"[:300])
        zero_submission(run.assignment, intake.student, run.db_url)
    status, detail = run.statuses.get(intake.student, ("ok", intake.detail))
    if status == "ok":
        status, detail = _status_from_outputs(run, intake.student) or ("ok", intake.detail)
    return Result(intake.student, status, detail, intake.sha256, round(time.monotonic() - start, 1))


def _status_from_outputs(run: GradingRun, student: str) -> tuple[str, str] | None:
    path = run.course_root / "autograded" / student / run.assignment / f"{run.assignment}.ipynb"
    if not path.exists():
        return None
    for cell in nbtools.read(path).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if out.get("ename") == "CellTimeoutError":
                    return "timeout", "a cell ran over the per-cell limit"
                if out.get("ename") == "CallTimeout":
                    return "timeout", "a graded function ran over the per-cell limit"
                if out.get("ename") == "MemoryError":
                    return "memory limit", "a cell ran out of memory"
    return None


def _feedback(run: GradingRun, results: dict[str, Result], out_dir: Path, jobs: int) -> None:
    """Feedback pages (nbgrader generate_feedback, hidden tests redacted), after grades.csv:
    one student at a time per worker process, each with a time limit, each page checked for
    hidden-test lines before it is written (see :mod:`autograder.feedback`). Writes
    OUT/feedback/<student>/<assignment>.html, and nbgrader's own copy in the course's feedback/
    is replaced too when a page is withheld (``nbgrader release_feedback`` sends that one)."""
    from queue import Queue

    from autograder.feedback import not_shown_page, secret_lines, withhold_if_leaking
    from autograder.feedback_worker import FeedbackTimeout, FeedbackWorker

    source_nb = run.course_root / "solutions" / run.assignment / f"{run.assignment}.ipynb"
    secrets = secret_lines(nbtools.read(source_nb))
    graded = [s for s in sorted(results)
              if (run.course_root / "autograded" / s / run.assignment / f"{run.assignment}.ipynb").exists()]
    config = {"course_root": str(run.course_root), "db_url": run.db_url, "assignment": run.assignment}
    log_path = next((Path(h.baseFilename) for h in log.handlers if isinstance(h, logging.FileHandler)), None)
    workers: Queue = Queue()
    for _ in range(max(1, min(jobs, len(graded)))):
        workers.put(FeedbackWorker(config, log_path))

    def one(student: str) -> tuple[str, str]:
        made = run.course_root / "feedback" / student / run.assignment / f"{run.assignment}.html"
        worker = workers.get()
        try:
            answer = worker.run(student, run.limits.feedback_seconds)
        except FeedbackTimeout as exc:
            answer = {"ok": False, "error": str(exc)}
        finally:
            workers.put(worker)
        if not answer.get("ok") or not made.exists():
            log.error("feedback failed for %s: %s", student, answer.get("error"))
            return student, not_shown_page(run.assignment, "no feedback",
                                           "Your feedback could not be generated "
                                           f"({answer.get('error') or 'no page'}); your grade is not affected.")
        page = made.read_text(encoding="utf-8", errors="replace")
        page, leaked = withhold_if_leaking(page, secrets, run.assignment)
        if leaked:
            log.error("feedback of %s withheld: it shows %d hidden-test line(s), e.g. %r", student, len(leaked),
                      leaked[0][:80])
            made.write_text(page, encoding="utf-8")
        return student, page

    pages: dict[str, str] = {}
    try:
        with ThreadPoolExecutor(max_workers=workers.qsize(), thread_name_prefix="feedback") as pool:
            for student, page in pool.map(one, graded):
                pages[student] = page
    finally:
        while not workers.empty():
            workers.get().close()
    for student, result in results.items():
        dest = out_dir / "feedback" / student / f"{run.assignment}.html"
        page = pages.get(student)
        if page is None and result.status == "ok":
            # Graded (the state says so) but not on this machine: another shard or machine
            # has its page; a "could not be graded" page here would be false.
            log.info("%s: graded elsewhere; its feedback page is where it was graded", student)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        page = page or not_shown_page(
            run.assignment, "not graded", f"Your submission could not be graded: {result.status}. {result.detail}")
        dest.write_text(page, encoding="utf-8")


def grade(assignment: str, submissions: Path | None, out_dir: Path, *, course_root: Path = REPO_ROOT,
          db_url: str | None = None, jobs: int | None = None, force: bool = False,
          limits: Limits | None = None, sandbox=None, progress=None, judge: bool = True,
          shard: tuple[int, int] | None = None) -> list[Result]:
    """Grade every submission of ``assignment``; write ``out_dir/grades.csv`` and feedback.

    ``shard=(K, N)`` grades only the students :func:`autograder.gradebook.shard_share` gives
    to shard K of N, and writes only theirs; N graders on N machines that share one gradebook
    (``db_url``) grade the class between them, and ``python -m autograder export`` writes
    the whole class's grades.csv. The assignment must be registered first.

    ``judge=False`` runs the test cells in the student's own kernel, as plain nbgrader does:
    only the tests use it, to show that the attacks the judge stops are real."""
    course_root = Path(course_root).resolve()
    out_dir = Path(out_dir).resolve()
    source_nb = course_root / "solutions" / assignment / f"{assignment}.ipynb"
    if not source_nb.exists():
        known = sorted(p.name for p in (course_root / "solutions").glob("*") if p.is_dir())
        raise GradeCommandError(f"no instructor source {source_nb}; known assignments: {known}")
    if shard is not None and shard[1] == 1:
        shard = None  # the whole class: exactly a run without --shard
    if shard is not None and not db_url:
        raise GradeCommandError("--shard needs the one gradebook all shards share: pass --db "
                                "(e.g. postgresql://user@host/gradebook); each machine's default "
                                "SQLite file would hold only its own share")
    db_url = db_url or f"sqlite:///{course_root / 'gradebook.db'}"
    limits = limits or Limits()
    if sandbox is not None and limits.processes is None:
        limits.processes = sandbox.processes
    # nbgrader runs its environment's `alembic` by name when it creates a gradebook.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    jobs = max(1, jobs or os.cpu_count() or 1)
    if sandbox is not None and jobs > len(sandbox.kernel_uids):
        raise GradeCommandError(f"--jobs {jobs} needs {jobs} kernel uids, and the range "
                                f"{sandbox.kernel_uids.start}-{sandbox.kernel_uids.stop - 1} has "
                                f"{len(sandbox.kernel_uids)}: lower --jobs or widen --kernel-uids")
    out_dir.mkdir(parents=True, exist_ok=True)
    _log_to(out_dir / "grading.log")
    # nbgrader's own SQLAlchemy usage warns about session details; those go to the log.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = log.handlers
    logging.getLogger("py.warnings").propagate = False

    if sandbox is None:
        log.warning("grading WITHOUT the sandbox (--no-sandbox): student code runs with the "
                    "grader's permissions, files and network")
    try:
        if shard is not None:
            # Shards start together: registering here would race (see register_assignment).
            if not assignment_registered(assignment, db_url, source_nb):
                raise GradeCommandError(
                    f"the gradebook has no {assignment} yet, or not this version of it (its graded cells "
                    f"differ from {source_nb}): run `python -m autograder register {assignment} --db URL` "
                    f"once before the shards start")
            state = GradingState(db_url, assignment)
        else:
            register_assignment(assignment, course_root, db_url)
            state = GradingState(db_url, assignment)
    except (SQLAlchemyError, ImportError) as exc:  # bad URL, server down, no driver
        shown = make_url(db_url).render_as_string(hide_password=True)
        raise GradeCommandError(f"cannot open the gradebook {shown}: {exc}") from exc
    except GradebookError as exc:
        raise GradeCommandError(str(exc)) from exc
    def mine(students: list[str]) -> list[str]:
        check_roster(db_url, assignment, shard[1], students)
        return shard_share(students, *shard)

    try:
        intakes = import_submissions(assignment, submissions, course_root / "submitted",
                                     choose=None if shard is None else mine)
    except (SubmissionsError, GradebookError) as exc:
        raise GradeCommandError(str(exc)) from exc
    except SQLAlchemyError as exc:  # recording the shards' roster
        raise GradeCommandError(f"cannot use the gradebook {make_url(db_url).render_as_string(hide_password=True)}: "
                                f"{exc}") from exc
    results: dict[str, Result] = {}
    todo = []
    _migrate_json_state(course_root / "autograded" / f".{assignment}-grading.json", state)
    for intake in intakes:
        if intake.status == "invalid student id":
            # Not an id nbgrader can hold (and maybe longer than its column): in this run's
            # grades.csv and log only, never in the gradebook.
            results[intake.student] = Result(intake.student, intake.status, intake.detail, intake.sha256)
        elif intake.status != "ok":
            if (force or not state.done(intake.student, intake.sha256)
                    or state.data[intake.student]["status"] != intake.status):
                zero_submission(assignment, intake.student, db_url)
                shutil.rmtree(course_root / "autograded" / intake.student / assignment, ignore_errors=True)
                state.record(asdict(Result(intake.student, intake.status, intake.detail, intake.sha256)))
            results[intake.student] = Result(intake.student, intake.status, intake.detail, intake.sha256)
        elif not force and state.done(intake.student, intake.sha256):
            results[intake.student] = Result(**state.data[intake.student])
        else:
            todo.append(intake)
    log.info("%d students%s; %d to grade, %d already graded or not gradable", len(intakes),
             "" if shard is None else f" in shard {shard[0]}/{shard[1]}", len(todo), len(intakes) - len(todo))

    if todo:
        with tempfile.TemporaryDirectory(prefix="dlc-grade-") as tmp:
            run = GradingRun(assignment, course_root, db_url, limits, scratch_root=Path(tmp) / "scratch",
                             kernel_env=zygote_environment(Path(tmp) / "scratch"), judge=judge,
                             judge_root=Path(tmp) / "judge", source=nbtools.read(source_nb))
            run.scratch_root.mkdir()
            run.judge_root.mkdir(mode=0o700)
            cfg = course_config(course_root, db_url, run)
            with _start_kernels(run, sandbox, Path(tmp)) as (zygote, judge_zygote):
                run.zygote, run.judge_zygote = zygote, judge_zygote
                # nbgrader's BaseConverter.start changes the process's working folder to the
                # course and back, and each thread here runs one: with two at once, the first to
                # finish put back the folder the other had saved (the course), so the grader
                # ended in the course folder (in the test suite, yamllint then found no
                # .gitignore), and a converter could run in the caller's folder. In the course
                # folder for the whole pool, every thread saves and restores the same folder.
                with _working_directory(course_root), ThreadPoolExecutor(max_workers=jobs) as pool:
                    futures = {pool.submit(_grade_one, run, cfg, intake): intake for intake in todo}
                    for future in as_completed(futures):
                        result = future.result()
                        state.record(asdict(result))
                        results[result.student] = result
                        if progress:
                            progress(result)
            log.info("peak live kernels: %d (--jobs %d); live at the end: %d", run.peak_kernels, jobs,
                     run.live_kernels)
    # The grades first: nothing in a student's feedback can delay or stop them.
    state.close()
    header, rows = export_rows(assignment, db_url, source_nb, {s: r.status for s, r in results.items()})
    write_grades_csv(out_dir, header, rows)
    _feedback(GradingRun(assignment, course_root, db_url, limits), results, out_dir, jobs)
    return [results[s] for s in sorted(results)]


def _migrate_json_state(path: Path, state: GradingState) -> None:
    """The grading state of a course graded before it moved into the gradebook (a JSON file
    beside it): taken over once, so that the first run after the upgrade regrades no one."""
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    for student, entry in old.items() if isinstance(old, dict) else ():
        if student not in state.data and isinstance(entry, dict) and isinstance(entry.get("status"), str):
            state.record({k: entry[k] for k in ("student", "status", "detail", "sha256", "seconds") if k in entry})
    path.rename(path.with_name(path.name + ".migrated"))
    log.info("took over the grading state of %d students from %s", len(old), path)


def zygote_environment(home: Path) -> dict[str, str]:
    """The environment of the kernel server and so of every kernel: the allowlisted part of
    ours (:mod:`autograder.environment`), the course package, offline, quiet TensorFlow."""
    return base_environment(os.environ, home=home, python_path=[str(REPO_ROOT)],
                            bindir=str(Path(sys.executable).parent))


@contextlib.contextmanager
def _working_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _start_kernels(run: GradingRun, sandbox, tmp: Path):
    """The two kernel servers of a run, started side by side: the students' (in the sandbox,
    unless ``--no-sandbox``) and the judges' (never sandboxed: judge kernels run only the
    instructor's code, with the allowlisted environment). Yields (students', judges')."""
    from autograder.kernels import KernelStartError, Zygote
    from autograder.zygote import DEFAULT_PRELOAD

    def students():
        return Zygote(run.kernel_env) if sandbox is None else sandbox.start_zygote(run, tmp)

    def judges():
        return Zygote(run.kernel_env, preload=[*DEFAULT_PRELOAD, *JUDGE_PRELOAD]) if run.judge else None

    with contextlib.ExitStack() as claim:
        if sandbox is not None:
            from autograder.sandbox import SandboxUnavailable, check_no_processes, claimed_kernel_uids

            # The uids are this run's until its kernels are gone (a second run on them fails
            # at once, naming this one); then the busy check again, now that no other run
            # honouring the claim can start kernels on them.
            try:
                claim.enter_context(claimed_kernel_uids(sandbox.kernel_uids))
                check_no_processes(sandbox.kernel_uids)
            except SandboxUnavailable as exc:
                raise GradeCommandError(f"the grading sandbox cannot start: {exc}") from None
        # The judges' server starts in a thread while this one starts the students': not the
        # other way round, since bwrap's --die-with-parent follows the thread that started it.
        servers, errors = [], []
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="start-judges") as pool:
                judge_server = pool.submit(judges)
                for start in (students, judge_server.result):
                    try:
                        servers.append(start())
                    except KernelStartError as exc:
                        servers.append(None)
                        errors.append(str(exc))
            if errors:
                raise GradeCommandError("\n".join(errors))
            yield tuple(servers)
        finally:
            for server in servers:
                if server is not None:
                    server.close()


JUDGE_PRELOAD = ["jupyter_client", "autograder.channel"]


def _log_to(path: Path) -> None:
    for old in log.handlers:
        old.close()
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
