"""The instructor's grading command (`python -m autograder grade`) on a real class of ps1.

One class folder mixes good, wrong, broken and hostile submissions; it is graded once, in
the sandbox, with small limits, and every test below checks one student's exact status and
per-cell scores, the others' scores, the gradebook, the feedback and the files the hostile
submissions went after. Further tests: the same scores as plain `nbgrader autograde`, byte-
identical CSVs on a regrade, zip and `submitted/` intake, and a SIGKILL in the middle of a
class followed by a resume.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import importlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import textwrap
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import REPO_ROOT, SOLUTIONS
from autograder.grading import Limits, grade
from autograder.nbgrader_run import autograde, read_scores, release, scratch_course
from autograder.notebook import cells_by_grade_id, hidden_tests, nbgrader_meta, read
from autograder.sandbox import Sandbox

A = "ps1-basics"
SOLUTION = SOLUTIONS / A / f"{A}.ipynb"
SOURCE = read(SOLUTION)
POINTS = {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in SOURCE.cells
          if nbgrader_meta(c).get("grade")}
AUTO = [g for g in POINTS if g.startswith("test_")]
WRITTEN = [g for g in POINTS if g.startswith("written_")]
FULL = {g: POINTS[g] for g in AUTO}
ZERO = dict.fromkeys(AUTO, 0)
SECRET = "instructor-secret-7f3a9c"  # in a file beside the gradebook: must never leak
LIMITS = Limits(cell_seconds=60, notebook_seconds=150, disk_bytes=256 * 2**20)

WRONG_SOFTMAX = "def softmax(z):\n    return np.asarray(z, dtype=float)\n"


def _nb(**prefix_or_replace) -> nbformat.NotebookNode:
    """The solution with answer cells changed: fn=code prepends, fn__replace=code replaces."""
    nb = read(SOLUTION)
    cells = cells_by_grade_id(nb)
    for key, code in prefix_or_replace.items():
        gid, _, mode = key.partition("__")
        cells[gid].source = code if mode == "replace" else code + "\n" + cells[gid].source
    return nb


def _write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _monkeypatched(builtins_ipython_uses: bool = False, builtins_none: bool = True) -> nbformat.NotebookNode:
    """The solution with every answer replaced by a real wrong one (tests/mutants) that also
    patches the test tools, at the top of the notebook and again whenever it is called."""
    body = ("    numpy.allclose = lambda *a, **k: True\n"
            "    numpy.array_equal = lambda *a, **k: True\n"
            "    numpy.isclose = lambda *a, **k: True\n"
            "    numpy.testing.assert_allclose = lambda *a, **k: None\n"
            "    numpy.testing.assert_array_equal = lambda *a, **k: None\n"
            "    math.isclose = lambda *a, **k: True\n"
            "    builtins.abs = lambda x: 0\n")
    if builtins_ipython_uses:  # IPython itself calls these: the kernel breaks, not only the tests
        body += "    builtins.all = lambda x: True\n    builtins.isinstance = lambda *a: True\n"
    patch = ("import builtins, math, numpy, numpy.testing\ndef _patch():\n" + body +
             "_patch()\nclass AssertionError(Exception):\n    pass\n")
    mutants = importlib.import_module("mutants.ps1_basics").MUTANTS
    nb = read(SOLUTION)
    cells = cells_by_grade_id(nb)
    for fn, table in mutants.items():
        wrong = textwrap.dedent(table.get("normalizes along axis 0", next(iter(table.values()))))
        cells[fn].source = ((patch if fn == "softmax" else "")
                            + wrong.replace(f"def {fn}(", f"def _wrong_{fn}(")
                            + f"\ndef {fn}(*args, **kwargs):\n    _patch()\n    return _wrong_{fn}(*args, **kwargs)\n"
                            + ("__builtins__ = None\n" if builtins_none else ""))
    return nb


def _scores(**changes) -> dict:
    return {**FULL, **changes}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Listener:
    """A TCP server on loopback that records whoever connects."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox.for_course()


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory, sandbox):
    tmp = tmp_path_factory.mktemp("class")
    root = scratch_course(tmp, [A])
    release(A, root=root)
    (root / "instructor-notes.txt").write_text(SECRET)
    listener = Listener()
    klass = tmp / "class"
    blank = root / "exercises" / A / f"{A}.ipynb"

    # Good and plainly wrong students.
    klass.mkdir()
    shutil.copy(SOLUTION, klass / "good_full.ipynb")
    shutil.copy(blank, klass / "good_blank.ipynb")
    _write(_nb(softmax__replace=WRONG_SOFTMAX), klass / "good_partial.ipynb")
    # 1. unreadable files
    (klass / "h_corrupt.ipynb").write_text('{"cells": [')
    (klass / "h_empty.ipynb").write_bytes(b"")
    (klass / "h_notnb.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (klass / "readme.txt").write_text("not a student")
    # 2. missing, renamed, two notebooks
    (klass / "h_missing").mkdir()
    (klass / "h_missing" / "answers.pdf").write_bytes(b"%PDF-1.4")
    _write(read(SOLUTION), klass / "h_renamed" / "homework final.ipynb")
    _write(read(SOLUTION), klass / "h_two" / "a.ipynb")
    _write(read(blank), klass / "h_two" / "b.ipynb")
    # 3. deleted, edited and duplicated test cells
    nb = read(SOLUTION)
    nb.cells = [c for c in nb.cells if not nbgrader_meta(c).get("grade_id", "").startswith("test_")]
    _write(nb, klass / "h_deleted.ipynb")
    nb = _nb(softmax__replace=WRONG_SOFTMAX)
    cells_by_grade_id(nb)["test_softmax"].source = "print('all good')"
    _write(nb, klass / "h_edited.ipynb")
    nb = read(SOLUTION)
    i = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == "test_softmax")
    nb.cells[i + 1:i + 1] = [nbformat.from_dict(json.loads(json.dumps(c))) for c in nb.cells[i - 1:i + 1]]
    _write(nb, klass / "h_duplicated.ipynb")
    # 4. an infinite loop (per-cell limit); a sleep that ignores interrupts (notebook limit)
    _write(_nb(softmax="while True:\n    pass"), klass / "h_loop.ipynb")
    _write(_nb(build_mlp="import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                         "time.sleep(10**6)"), klass / "h_sleep.ipynb")
    # 5. a memory bomb: 6 GiB, over the 4 GiB cap, far below the machine's 24 GiB
    _write(_nb(softmax="hog = bytearray(6 * 2**30)"), klass / "h_memory.ipynb")
    # 6. kernel death and sys.exit()
    _write(_nb(adam="import os\nos._exit(3)"), klass / "h_exit.ipynb")
    _write(_nb(k_fold_indices="import ctypes\nctypes.string_at(0)"), klass / "h_segfault.ipynb")
    _write(_nb(standardize="import sys\nsys.exit()"), klass / "h_sysexit.ipynb")
    # 7. an output flood (400 MB)
    _write(_nb(build_mlp="for _ in range(400):\n    print('x' * 10**6)"), klass / "h_flood.ipynb")
    # 7b. many files, each under the per-file cap, 2 GB in all if nothing stops it (the disk cap)
    _write(_nb(build_mlp="block = b'x' * 2**20\nfor i in range(2000):\n"
                         "    with open(f'fill-{i}', 'wb') as f:\n        f.write(block)"), klass / "h_disk.ipynb")
    # 8. reading what a student must not see, and printing it
    targets = [SOLUTIONS / A / f"{A}.ipynb", root / "solutions" / A / f"{A}.ipynb", root / "gradebook.db",
               root / "instructor-notes.txt", root / "submitted" / "good_full" / A / f"{A}.ipynb",
               Path.home() / ".bashrc", REPO_ROOT / "tests" / "test_grade.py"]
    reader = ("import os\nfor p in %r:\n    try:\n        print(open(p, errors='replace').read()[:100000])\n"
              "    except Exception as e:\n        print('blocked', type(e).__name__)\n"
              "print(os.listdir('/'), os.listdir(os.path.dirname(os.getcwd())) if os.access("
              "os.path.dirname(os.getcwd()), os.R_OK) else 'scratch root unreadable')") % [str(t) for t in targets]
    _write(_nb(softmax=reader), klass / "h_read.ipynb")
    # 9. writing and deleting outside scratch
    protected = [root / "exercises" / A / f"{A}.ipynb", root / "solutions" / A / f"{A}.ipynb",
                 root / "instructor-notes.txt"]
    writer = ("import os, glob\nfor p in %r:\n    for attempt in (lambda: open(p, 'w').write('x'), lambda: os.remove(p)):\n"
              "        try:\n            attempt()\n            print('CHANGED', p)\n        except Exception as e:\n"
              "            print('blocked', type(e).__name__)\n"
              "for p in glob.glob(%r):\n    try:\n        os.remove(p)\n        print('DELETED', p)\n"
              "    except Exception as e:\n        print('blocked', type(e).__name__)\n") % (
        [str(p) for p in protected] + [str(root / "gradebook.db")], str(root / "submitted" / "*" / A / "*.ipynb"))
    _write(_nb(softmax=writer), klass / "h_write.ipynb")
    # 10. the network: a listener this test started on loopback, and the outside world
    _write(_nb(softmax=f"import socket\nfor host in [('127.0.0.1', {listener.port}), ('1.1.1.1', 80)]:\n"
                       "    try:\n        socket.create_connection(host, timeout=3).close()\n        print('CONNECTED', host)\n"
                       "    except OSError as e:\n        print('blocked', type(e).__name__)"),
           klass / "h_network.ipynb")
    # 11. a bounded fork storm (300 sleeping children)
    _write(_nb(softmax="import os, time\nkids = []\ntry:\n    for _ in range(300):\n        pid = os.fork()\n"
                       "        if pid == 0:\n            time.sleep(3)\n            os._exit(0)\n        kids.append(pid)\n"
                       "except OSError as e:\n    print('fork refused after', len(kids), type(e).__name__)\n"
                       "for pid in kids:\n    os.waitpid(pid, 0)"), klass / "h_forks.ipynb")
    # 12. monkeypatched test tools, with real wrong answers (patched again when tests call them)
    _write(_monkeypatched(), klass / "h_monkeypatch.ipynb")
    _write(_monkeypatched(builtins_ipython_uses=True), klass / "h_monkeypatch_builtins.ipynb")

    hashes = {p: _sha(p) for p in protected}
    start = time.monotonic()
    results = grade(A, klass, tmp / "out", course_root=root, sandbox=sandbox, limits=LIMITS)
    elapsed = time.monotonic() - start
    listener.close()
    others = {p: _sha(p) for p in (root / "submitted").glob(f"*/{A}/*.ipynb")}
    rows = {r["student_id"]: r for r in csv.DictReader(open(tmp / "out" / "grades.csv"))}
    yield {"root": root, "out": tmp / "out", "results": {r.student: r for r in results}, "rows": rows,
           "hashes": hashes, "listener": listener, "elapsed": elapsed, "others": others, "klass": klass}


def _cell_scores(row: dict) -> dict:
    return {g: (float(row[g]) if row[g] != "" else "") for g in AUTO}


def _assert_student(hostile_class, student, status, scores, written_pending=True):
    row = hostile_class["rows"][student]
    assert row["status"] == status, (student, row["status"], hostile_class["results"][student].detail)
    assert _cell_scores(row) == {g: float(v) for g, v in scores.items()}, (student, row)
    if written_pending:
        # Written answers wait for the formgrader: empty in the CSV, not 0.
        assert all(row[g] == "" for g in WRITTEN), (student, row)
    assert float(row["max_score"]) == sum(POINTS.values())


EXPECTED = {
    # student: (status, per-cell scores, written answers pending manual grading)
    "good_full": ("ok", FULL, True),
    "good_blank": ("ok", ZERO, False),
    "good_partial": ("ok", _scores(test_softmax=0), True),
    "h_corrupt": ("invalid notebook", ZERO, False),
    "h_empty": ("invalid notebook", ZERO, False),
    "h_notnb": ("invalid notebook", ZERO, False),
    "h_missing": ("missing notebook", ZERO, False),
    "h_renamed": ("ok", FULL, True),
    "h_two": ("several notebooks", ZERO, False),
    "h_deleted": ("ok", FULL, True),
    "h_edited": ("ok", _scores(test_softmax=0), True),
    "h_duplicated": ("ok", FULL, True),
    "h_loop": ("timeout", _scores(test_softmax=0), True),
    "h_sleep": ("timeout", _scores(test_build_mlp=0), True),
    "h_memory": ("memory limit", _scores(test_softmax=0), True),
    "h_exit": ("kernel died", _scores(test_adam=0, test_k_fold_indices=0, test_standardize=0,
                                      test_build_mlp=0), True),
    "h_segfault": ("kernel died", _scores(test_k_fold_indices=0, test_standardize=0, test_build_mlp=0), True),
    "h_sysexit": ("ok", _scores(test_standardize=0), True),
    "h_flood": ("output limit", _scores(test_build_mlp=0), True),
    "h_disk": ("disk limit", _scores(test_build_mlp=0), True),
    "h_read": ("ok", FULL, True),
    "h_write": ("ok", FULL, True),
    "h_network": ("ok", FULL, True),
    "h_forks": ("ok", FULL, True),
    "h_monkeypatch": ("ok", ZERO, True),
    "h_monkeypatch_builtins": ("kernel died", ZERO, True),
}


def test_every_student_is_in_the_csv_once(hostile_class):
    assert sorted(hostile_class["rows"]) == sorted(EXPECTED)
    lines = (hostile_class["out"] / "grades.csv").read_text().splitlines()
    assert lines[0].split(",") == ["student_id", "status", "score", "max_score", *POINTS]
    assert len(lines) == len(EXPECTED) + 1


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_status_and_exact_scores(hostile_class, student):
    status, scores, pending = EXPECTED[student]
    _assert_student(hostile_class, student, status, scores, written_pending=pending)


def test_gradebook_is_intact(hostile_class):
    db = hostile_class["root"] / "gradebook.db"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    students = [r[0] for r in con.execute("SELECT id FROM student ORDER BY id")]
    assert students == sorted(EXPECTED)
    assert con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(EXPECTED)
    con.close()
    scores = read_scores(db, A)
    for student, (_, expected, _) in EXPECTED.items():
        assert {g: scores[student][g][0] for g in AUTO} == expected, student


def test_protected_files_unchanged_and_not_leaked(hostile_class):
    for path, digest in hostile_class["hashes"].items():
        assert _sha(path) == digest, f"{path} was changed by a submission"
    # Other students' submissions are still there, unchanged since intake.
    assert len(hostile_class["others"]) >= 15
    for path, digest in hostile_class["others"].items():
        assert path.exists() and _sha(path) == digest
    hidden = {ln.strip() for c in SOURCE.cells for ln in hidden_tests(c.source).splitlines()
              if len(ln.strip()) > 25}
    public = {ln.strip() for ln in "\n".join(c.source for c in read(
        hostile_class["root"] / "exercises" / A / f"{A}.ipynb").cells).splitlines()}
    secrets = {SECRET, "SQLite format 3", *(hidden - public)}
    assert len(secrets) > 5
    autograded = hostile_class["root"] / "autograded"
    for student in ("h_read", "h_write"):
        outputs = json.dumps([c.get("outputs", []) for c in read(autograded / student / A / f"{A}.ipynb").cells])
        found = [s for s in secrets if s in outputs]
        assert not found, f"{student}'s outputs show protected text: {found[:3]}"
        assert "CHANGED" not in outputs and "DELETED" not in outputs
        assert outputs.count("blocked") >= 5, outputs[:2000]
    assert "scratch root unreadable" in json.dumps(read(autograded / "h_read" / A / f"{A}.ipynb").cells[0:60])


def test_no_network(hostile_class):
    assert hostile_class["listener"].connections == 0
    nb = read(hostile_class["root"] / "autograded" / "h_network" / A / f"{A}.ipynb")
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "CONNECTED" not in text and text.count("blocked") == 2


def test_fork_storm_is_capped(hostile_class):
    nb = read(hostile_class["root"] / "autograded" / "h_forks" / A / f"{A}.ipynb")
    m = re.search(r"fork refused after (\d+)", json.dumps([c.get("outputs", []) for c in nb.cells]))
    assert m and int(m.group(1)) < 100, "the process limit did not stop the fork storm"


def test_monkeypatching_decides_nothing(hostile_class):
    """The patched test tools live in the student's kernel; the judge's test cells never see
    them, so the real wrong answers score 0 and no test output comes from the student."""
    nb = read(hostile_class["root"] / "autograded" / "h_monkeypatch" / A / f"{A}.ipynb")
    tests = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") in AUTO]
    assert tests and all(c.get("execution_count") is None for c in tests)  # not run in the kernel


def test_without_the_judge_the_monkeypatching_would_score(tmp_path, sandbox):
    """The attack is real: the same wrong answers and patches, graded with the test cells in
    the student's own kernel (as plain nbgrader does), earn points. (Without `__builtins__ =
    None`: in the student's kernel, that line alone breaks every cell.)"""
    klass = tmp_path / "class"
    _write(_monkeypatched(builtins_none=False), klass / "h_monkeypatch.ipynb")
    root = _course(tmp_path / "course")
    grade(A, klass, tmp_path / "out", course_root=root, sandbox=sandbox, limits=LIMITS, judge=False)
    row = next(csv.DictReader(open(tmp_path / "out" / "grades.csv")))
    assert float(row["score"]) > 0, row


def test_feedback_hides_hidden_tests(hostile_class):
    out = hostile_class["out"] / "feedback"
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED)
    hidden = {ln.strip() for c in SOURCE.cells for ln in hidden_tests(c.source).splitlines()
              if len(ln.strip()) > 12}
    public = {ln.strip() for ln in "\n".join(
        c.source for c in read(hostile_class["root"] / "exercises" / A / f"{A}.ipynb").cells).splitlines()}
    secret = hidden - public - {ln.strip() for ln in "\n".join(c.source for c in SOURCE.cells
                                                               if not nbgrader_meta(c).get("grade")).splitlines()}
    assert len(secret) > 10
    for student in EXPECTED:
        page = html.unescape((out / student / f"{A}.html").read_text())
        leaked = [ln for ln in secret if ln in page]
        assert not leaked, f"feedback of {student} shows hidden tests: {leaked[:3]}"
    page = html.unescape((out / "good_partial" / f"{A}.html").read_text())
    assert "test_softmax: failed, 0 of 2 points" in page
    assert "test_adam: passed, 2 of 2 points" in page
    assert "not graded" in (out / "h_corrupt" / f"{A}.html").read_text()


# ---------------------------------------------------------------------------------------------
# Same scores as nbgrader, determinism, intake formats, crash safety


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    klass = tmp / "class"
    _write(read(SOLUTION), klass / "ann.ipynb")
    _write(_nb(softmax__replace=WRONG_SOFTMAX, adam__replace="def adam(*a, **k):\n    return a[0]\n"),
           klass / "ben.ipynb")
    _write(_nb(standardize="raise RuntimeError('oops')"), klass / "cat.ipynb")
    _write(_nb(cross_entropy="import os\nos._exit(1)"), klass / "dan.ipynb")
    return klass


def _course(tmp: Path) -> Path:
    root = scratch_course(tmp, [A])
    release(A, root=root)
    return root


@pytest.fixture(scope="module")
def small_graded(tmp_path_factory, small_class, sandbox):
    """The small class graded once by the command: (course root, grades.csv bytes)."""
    tmp = tmp_path_factory.mktemp("small-graded")
    root = _course(tmp)
    grade(A, small_class, tmp / "out", course_root=root, sandbox=sandbox)
    return root, (tmp / "out" / "grades.csv").read_bytes()


def test_same_scores_as_plain_nbgrader(tmp_path, small_class, small_graded):
    plain_root = _course(tmp_path / "plain")
    plain = autograde(plain_root, A, {p.stem: p for p in sorted(small_class.glob("*.ipynb"))
                                      if p.stem != "dan"})  # a dead kernel fails nbgrader's whole run
    ours = read_scores(small_graded[0] / "gradebook.db", A)
    assert sorted(plain) == ["ann", "ben", "cat"]
    for student in plain:
        assert {g: ours[student][g][0] for g in AUTO} == {g: plain[student][g][0] for g in AUTO}, student


def test_regrade_gives_a_byte_identical_csv(tmp_path, small_class, small_graded, sandbox):
    root, first = small_graded
    before = os.getcwd()
    grade(A, small_class, tmp_path / "out", course_root=root, sandbox=sandbox, force=True)
    # Two students at once, each through nbgrader's converter, which moves the process to the
    # course folder and back: the grader must end where it started.
    assert os.getcwd() == before
    assert (tmp_path / "out" / "grades.csv").read_bytes() == first
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(first.decode()))}
    assert _cell_scores(rows["ann"]) == FULL
    assert _cell_scores(rows["ben"]) == _scores(test_softmax=0, test_adam=0)
    assert _cell_scores(rows["cat"]) == _scores(test_standardize=0)
    assert rows["dan"]["status"] == "kernel died"
    assert _cell_scores(rows["dan"]) == {**ZERO, "test_softmax": FULL["test_softmax"]}


def test_zip_and_submitted_layouts(tmp_path, small_class, sandbox):
    archive = tmp_path / "lms-export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in small_class.glob("*.ipynb"):
            if p.stem in ("ann", "ben"):
                zf.write(p, f"Export 2026/{p.stem}/submission.ipynb")  # wrapped, one folder each
    root = _course(tmp_path / "zip")
    results = grade(A, archive, tmp_path / "out", course_root=root, sandbox=sandbox)
    assert [(r.student, r.status) for r in results] == [("ann", "ok"), ("ben", "ok")]
    # Nothing given: what `nbgrader collect` left in submitted/ (here, from the zip run).
    again = grade(A, None, tmp_path / "out2", course_root=root, sandbox=sandbox)
    assert [r.student for r in again] == ["ann", "ben"]
    assert (tmp_path / "out" / "grades.csv").read_text() == (tmp_path / "out2" / "grades.csv").read_text()
    # A written answer graded by hand (what the formgrader stores), then a rerun: merged, and
    # nobody is graded again.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "dl-keras") as gb:
        written = gb.find_grade(WRITTEN[0], A, A, "ann")
        written.manual_score = 1.5
        gb.db.commit()
    stamp = (root / "autograded" / "ann" / A / f"{A}.ipynb").stat().st_mtime_ns
    grade(A, None, tmp_path / "out3", course_root=root, sandbox=sandbox)
    row = next(r for r in csv.DictReader(open(tmp_path / "out3" / "grades.csv")) if r["student_id"] == "ann")
    assert row[WRITTEN[0]] == "1.5" and float(row["score"]) == sum(FULL.values()) + 1.5, row
    assert (root / "autograded" / "ann" / A / f"{A}.ipynb").stat().st_mtime_ns == stamp


def test_bad_arguments_exit_non_zero(tmp_path):
    cmd = [sys.executable, "-m", "autograder", "grade"]
    missing = subprocess.run(cmd + [A, str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                                    "--course", str(_course(tmp_path / "c"))], capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stdout
    unknown = subprocess.run(cmd + ["ps9", str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert unknown.returncode == 2 and "known assignments" in unknown.stdout


def _grading_state(root: Path) -> dict[str, tuple]:
    """What the gradebook records of each student's grading (autograder.gradebook.STATE_TABLE),
    read as another process would while a grader runs."""
    db = root / "gradebook.db"
    if not db.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT student, status, detail, sha256, seconds FROM dlcourse_grading_state "
                                "WHERE assignment = ?", (A,)).fetchall()
    except sqlite3.OperationalError:  # the table is not created yet, or the file is locked
        return {}
    return {r[0]: r[1:] for r in rows}


def test_sigkill_mid_class_then_resume(tmp_path, small_class, small_graded):
    cmd = [sys.executable, "-m", "autograder", "grade", A, str(small_class), "--jobs", "1"]
    root = _course(tmp_path / "crash")
    proc = subprocess.Popen(cmd + ["--course", str(root), "--out", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if len(_grading_state(root)) >= 2:
            break
        time.sleep(0.2)
    helpers = _descendants(proc.pid)  # bwrap, the kernel server and its kernels
    assert helpers, "the grader should have a kernel server running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in helpers):
        time.sleep(0.2)
    alive = [p for p in helpers if Path(f"/proc/{p}").exists()]
    assert not alive, f"processes outlived the killed grader: {alive}"
    before = _grading_state(root)
    assert 2 <= len(before) < 4, "the kill should land in the middle of the class"
    stamps = {s: (root / "autograded" / s / A / f"{A}.ipynb").stat().st_mtime_ns for s in before}
    subprocess.run(cmd + ["--course", str(root), "--out", str(tmp_path / "out")], check=True, capture_output=True)
    # The same CSV as the uninterrupted run of the same class.
    assert (tmp_path / "out" / "grades.csv").read_bytes() == small_graded[1]
    after = _grading_state(root)
    assert sorted(after) == ["ann", "ben", "cat", "dan"]
    for s in before:  # graded before the kill: not graded again
        assert after[s] == before[s]
        assert (root / "autograded" / s / A / f"{A}.ipynb").stat().st_mtime_ns == stamps[s]
    con = sqlite3.connect(root / "gradebook.db")
    assert con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == 4
    con.close()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
