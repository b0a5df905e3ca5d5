"""nbgrader's exchange, for real: one term of ps1 with two unix student accounts.

The instructor (this test, root) sets up an exchange with ``python -m autograder.exchange
setup`` and releases ps1 with ``nbgrader release_assignment``; two student accounts made for
this test (``useradd``, removed at the end) fetch it, answer (one hands in the instructor's
solution, the other answers one function and one written question) and ``nbgrader submit``.
The instructor runs ``nbgrader collect`` and ``python -m autograder grade`` on what it
collected, grades a written answer through nbgrader's gradebook API (what the formgrader
does), grades again (which regenerates the redacted feedback with the manual grade) and
``nbgrader release_feedback``; each student ``nbgrader fetch_feedback``. Every nbgrader command
is a subprocess, with ``--Exchange.root`` and, for the instructor, the course's
nbgrader_config.py (run from the repository, pointed at a scratch course). Student commands
run as the student's uid, in an environment of their own (no variable of the grader's).

Checked: the exchange's folders have nbgrader's modes (autograder/exchange.py lists them and
where they are documented), a student cannot list the other's submission or feedback nor read
their home, grades (automatic and manual) reach grades.csv, the feedback page nbgrader
releases is the redacted one and shows no hidden-test line, and each student fetches exactly
their own page. Also the students' Assignment List: off without an exchange (where it shows
only errors), on after ``setup``, in a throw-away copy of the environment's Jupyter config.

``-s`` prints every command of the term with its time; ``DLC_KEEP_EXCHANGE_TEST=1`` keeps the
term's files (exchange, course, grades, homes) after the run; the accounts are removed anyway.

Student commands need the course's Python: on a machine whose Python lives in a folder other
users cannot enter (here /root/.pyenv), they run in bubblewrap with that folder, alone, made
reachable (the rest of the filesystem as it is).
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder import REPO_ROOT, SOLUTIONS
from autograder.exchange import COURSE_MODES, ROOT_MODE
from autograder.feedback import leaked_lines, page_text
from autograder.nbgrader_run import release, scratch_course
from autograder.notebook import cells_by_grade_id, hidden_tests, nbgrader_meta, read

A = "ps1-basics"
SOLUTION = SOLUTIONS / A / f"{A}.ipynb"
STUDENTS = ("dlc-ex-ann", "dlc-ex-ben")
ANN, BEN = STUDENTS
MARK = "dlcourse exchange test (tests/test_exchange.py)"  # GECOS of the accounts this test owns
KERNEL_UIDS = "63000-63019"  # not the 61000-61099 of other grading runs on this machine
PY = sys.executable
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MANUAL = {"score": 1.5, "comment": "Right: the shift cancels in the ratio (dlc-ex-ann)."}
BEN_WRITTEN = "Because exp overflows for large scores."


def _course_id() -> str:
    from autograder.exchange import course_id

    return course_id()


COURSE_ID = _course_id()
SOURCE = read(SOLUTION)
POINTS = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in SOURCE.cells
          if nbgrader_meta(c).get("grade")}
AUTO = [g for g in POINTS if g.startswith("test_")]
WRITTEN = [g for g in POINTS if g.startswith("written_")]


# ---------------------------------------------------------------------------------------------
# Accounts and how a student runs a command


@dataclass
class Student:
    name: str
    uid: int
    gid: int
    home: Path


def _processes_of(uid: int) -> list[int]:
    from autograder.sandbox import processes_of

    return processes_of(uid)


def _remove_account(name: str) -> None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if entry.pw_gecos != MARK:
        raise RuntimeError(f"account {name} exists and was not made by this test ({entry.pw_gecos!r})")
    for pid in _processes_of(entry.pw_uid):  # only processes of this test's own account, by pid
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    subprocess.run(["userdel", name], check=True, capture_output=True)
    if subprocess.run(["getent", "group", name], capture_output=True).returncode == 0:
        subprocess.run(["groupdel", name], check=True, capture_output=True)


def _blocked_parents(path: Path) -> list[Path]:
    """Folders on the way to ``path`` that other users cannot enter."""
    return [p for p in reversed(Path(path).parents) if p != Path("/") and not p.stat().st_mode & stat.S_IXOTH]


def _python_dirs() -> list[Path]:
    return sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()})


def _student_command(student: Student, cmd: list[str]) -> tuple[list[str], dict]:
    """``cmd`` as the student: their uid and group, no other group. Returns (argv, Popen kwargs)."""
    blocked = sorted({b for d in _python_dirs() for b in _blocked_parents(d)}, key=lambda p: len(p.parts))
    if not blocked:
        return cmd, {"user": student.uid, "group": student.gid, "extra_groups": []}
    # The Python is under a folder other users cannot enter (/root/.pyenv): in a mount namespace,
    # that folder becomes an empty tmpfs with only the Python in it; the rest of the filesystem is
    # the real one. Then setpriv drops to the student.
    tops = [b for b in blocked if not any(b != o and b.is_relative_to(o) for o in blocked)]
    args = ["bwrap", "--dev-bind", "/", "/", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for top in tops:
        args += ["--perms", "0755", "--tmpfs", str(top)]
    for d in _python_dirs():
        for parent in reversed(d.parents):
            if any(parent != t and parent.is_relative_to(t) for t in tops):
                args += ["--perms", "0755", "--dir", str(parent)]
        if any(d.is_relative_to(t) for t in tops):
            args += ["--ro-bind", str(d), str(d)]
    args += ["--chdir", str(student.home), "--", "setpriv", f"--reuid={student.uid}",
             f"--regid={student.gid}", "--clear-groups", "--"]
    return args + cmd, {}


def run_as(student: Student, cmd: list[str], *, input: bytes | None = None, check: bool = True,
           cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    base = {"HOME": str(student.home), "USER": student.name, "LOGNAME": student.name,
            "PATH": os.pathsep.join([str(Path(PY).parent), "/usr/bin", "/bin"]), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1"}
    argv, kwargs = _student_command(student, cmd)
    if cwd is not None and argv[0] == "bwrap":
        argv[argv.index("--chdir") + 1] = str(cwd)
    proc = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env={**base, **(env or {})},
                          cwd=str(cwd or student.home), **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{student.name}: {' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout.decode(errors='replace')[-3000:]}\n{proc.stderr.decode(errors='replace')[-5000:]}")
    return proc


def run_instructor(cmd: list[str], *, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")]),
            **(env or {})}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=full)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


# ---------------------------------------------------------------------------------------------
# A throw-away copy of the environment, for what writes into its Jupyter config


def isolated_environment(where: Path) -> tuple[str, dict]:
    """A virtual environment at ``where`` that imports everything from this one (a .pth file)
    and starts with a copy of its ``etc/jupyter``: ``dlcourse.kernel install`` and ``setup`` write
    there (``sys.prefix``), not into the real .venv. Returns (its python, the env for it)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = next((where / "lib").glob("python3*/site-packages"))
    purelib = Path(sys.prefix) / site.relative_to(where)
    (site / "zz_dlcourse_env.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", where / "etc" / "jupyter")
    user = where / "user-jupyter"
    env = {"JUPYTER_CONFIG_DIR": str(user / "config"), "JUPYTER_DATA_DIR": str(user / "data"),
           # the lab extensions are installed in the real environment's share/jupyter
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"), "JUPYTER_CONFIG_PATH": ""}
    return str(where / "bin" / "python"), env


def extension_states(python: str, env: dict):
    """Start `jupyter labextension list` and `jupyter server extension list` of that environment;
    returns a function that waits for them and returns {extension: "enabled"/"disabled"} for
    the assignment list and the Validate button."""
    full = {**os.environ, **env}
    lab = subprocess.Popen([python, "-m", "jupyterlab.labextensions", "list"], env=full, cwd=REPO_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = subprocess.Popen([python, "-m", "jupyter_server.extension.serverextension", "list"], env=full,
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return lambda: _states(*(ANSI.sub("", p.communicate(timeout=300)[0]) for p in (lab, server)))


def _states(lab_out: str, server_out: str) -> dict[str, str]:
    assert re.search(r"@jupyter/nbgrader v0\.9\.\d+ enabled OK", lab_out), lab_out
    disabled = lab_out.split("Disabled extensions:", 1)[1] if "Disabled extensions:" in lab_out else ""
    servers = dict(re.findall(r"^\s*nbgrader\.server_extensions\.(\w+) (enabled|disabled)\s*$", server_out, re.M))
    # The Validate button's handler is the course's (dlcourse.validate); nbgrader's own is off.
    course = re.search(r"^\s*dlcourse\.validate (enabled|disabled)\s*$", server_out, re.M)
    return {"server dlcourse.validate": course[1] if course else "missing","lab assignment-list": "disabled" if "@jupyter/nbgrader:assignment-list" in disabled else "enabled",
            "lab validate-assignment": "disabled" if "@jupyter/nbgrader:validate-assignment" in disabled else "enabled",
            "server assignment_list": servers.get("assignment_list", "missing"),
            "server validate_assignment": servers.get("validate_assignment", "missing")}


ASSIGNMENT_LIST = """
import json, os
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList
lister = AssignmentList()
lister.root_dir = os.getcwd()
print(json.dumps({"courses": lister.list_courses(), "released": lister.list_released_assignments()}))
"""


def assignment_list_as(student: Student, python: str, env: dict) -> dict:
    """What the Assignment List's server extension answers the student's JupyterLab (its own
    handler code, run as the student in their home, with that environment's config)."""
    env = {k: v for k, v in env.items() if k not in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR")}  # their home's
    out = run_as(student, [python, "-c", ASSIGNMENT_LIST], env=env).stdout.decode()
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The term


PROBE = r"""
import glob, json, os, sys
inbound, outbound, feedback, course, other_home, other = sys.argv[1:7]
found = {}
def attempt(name, fn):
    try:
        fn()
        found[name] = "ok"
    except OSError as exc:
        found[name] = type(exc).__name__
attempt("list inbound", lambda: os.listdir(inbound))
attempt("list feedback", lambda: os.listdir(feedback))
attempt("list the other's home", lambda: os.listdir(other_home))
attempt("rename the course folder", lambda: os.rename(course, course + "-moved"))
attempt("write into outbound", lambda: open(os.path.join(outbound, "planted.ipynb"), "w").close())
attempt("list outbound", lambda: os.listdir(outbound))
found["the other's submissions found"] = glob.glob(os.path.join(inbound, other + "+*"))
print(json.dumps(found))
"""


def _write_as(student: Student, path: Path, data: bytes) -> None:
    run_as(student, [PY, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())",
                     str(path)], input=data)


def _ben_answers(fetched: Path) -> bytes:
    """The fetched release with one function (softmax) and one written answer filled in."""
    nb = read(fetched)
    cells = cells_by_grade_id(nb)
    cells["softmax"].source = cells_by_grade_id(SOURCE)["softmax"].source
    cells[WRITTEN[0]].source = BEN_WRITTEN
    return nbformat.writes(nb).encode()


def _grades(out: Path) -> dict[str, dict]:
    return {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}


@pytest.fixture(scope="module")
def term():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root (student accounts, the grading sandbox)")
    start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="dlc-exchange-", dir="/tmp"))
    os.chmod(base, 0o711)  # students reach their homes and the exchange, list nothing
    students: dict[str, Student] = {}
    commands: list[tuple[str, str, float]] = []  # (who, command, seconds): printed with -s
    try:
        (base / "home").mkdir(mode=0o711)
        for name in STUDENTS:
            _remove_account(name)  # a leftover of an interrupted run of this test
            home = base / "home" / name
            subprocess.run(["useradd", "--comment", MARK, "--home-dir", str(home), "--no-create-home",
                            "--shell", "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True)
            entry = pwd.getpwnam(name)
            home.mkdir(mode=0o700)
            os.chown(home, entry.pw_uid, entry.pw_gid)
            students[name] = Student(name, entry.pw_uid, entry.pw_gid, home)
        yield _run_term(base, students, commands, start)
    finally:
        errors = []
        for name in STUDENTS:
            try:
                _remove_account(name)
            except Exception as exc:  # noqa: BLE001 (report, and still remove the other)
                errors.append(f"{name}: {exc}")
        if os.environ.get("DLC_KEEP_EXCHANGE_TEST"):  # to look at the files after a failure
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        assert not errors, errors


def _run_term(base: Path, students: dict[str, Student], commands: list, start: float) -> dict:
    ann, ben = students[ANN], students[BEN]
    root = base / "exchange"
    course = base / "course"
    out = base / "grades"
    rec: dict = {"base": base, "root": root, "course": course, "out": out, "students": students,
                 "commands": commands}

    def instructor(*args, env=None):
        t = time.monotonic()
        proc = run_instructor([str(a) for a in args], env=env)
        commands.append(("instructor", " ".join(str(a) for a in args), time.monotonic() - t))
        return proc

    def student(who: Student, *args, **kw):
        t = time.monotonic()
        proc = run_as(who, [str(a) for a in args], **kw)
        commands.append((who.name, " ".join(str(a) for a in args), time.monotonic() - t))
        return proc

    def lap(what: str) -> None:
        commands.append(("(test)", what, time.monotonic() - rec.setdefault("_lap", start)))
        rec["_lap"] = time.monotonic()

    # The instructor's course: a scratch copy of ps1's source, the student version generated
    # (nbgrader generate_assignment), meanwhile.
    with ThreadPoolExecutor(max_workers=1) as pool:  # waits for it, whatever happens
        generated = pool.submit(lambda: (scratch_course(base, [A]), os.chmod(course, 0o700), release(A, root=course)))

        # 0. The students' Assignment List without an exchange: `make env`'s dlcourse.kernel install,
        # in a copy of the environment's config (the default exchange does not exist here).
        assert not Path("/usr/local/share/nbgrader/exchange").exists(), "this machine has nbgrader's default exchange"
        iso_python, iso_env = isolated_environment(base / "env")
        subprocess.run(["chmod", "-R", "go+rX", str(base / "env")], check=True)
        proc = subprocess.run([iso_python, "-m", "dlcourse.kernel", "install"], cwd=REPO_ROOT, capture_output=True,
                              text=True, env={**os.environ, **iso_env}, timeout=600)
        assert proc.returncode == 0, proc.stderr
        rec["install output"] = proc.stdout
        states = extension_states(iso_python, iso_env)
        rec["assignment list without exchange"] = assignment_list_as(ann, iso_python, iso_env)
        rec["setup as a student"] = run_as(ben, [iso_python, "-m", "autograder.exchange", "setup"], check=False,
                                           cwd=REPO_ROOT, env=iso_env)
        rec["extensions without exchange"] = states()

        # 1. The instructor sets up the exchange (in the copy: it writes the environment's config).
        lap("install, extension lists, assignment list and setup as a student (no exchange)")
        t = time.monotonic()
        proc = subprocess.run([iso_python, "-m", "autograder.exchange", "setup", "--root", str(root)], cwd=REPO_ROOT,
                              capture_output=True, text=True, env={**os.environ, **iso_env}, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rec["setup output"] = proc.stdout
        rec["config written"] = (base / "env" / "etc" / "jupyter" / "nbgrader_config.py").read_text()
        commands.append(("instructor", f"python -m autograder.exchange setup --root {root}", time.monotonic() - t))
        states = extension_states(iso_python, iso_env)

        # 2. Release into the exchange.
        generated.result()
        lap("nbgrader generate_assignment in the scratch course (while the above ran)")
        exchange = [f"--Exchange.root={root}"]
        coursedir = [f"--CourseDirectory.root={course}"]
        instructor(PY, "-m", "nbgrader", "release_assignment", A, *exchange, *coursedir)
        rec["assignment list with exchange"] = assignment_list_as(ann, iso_python, iso_env)  # no flags: the config

        # 3. Students fetch, answer and submit.
        as_student = [f"--course={COURSE_ID}", *exchange]
        for who in (ann, ben):
            student(who, PY, "-m", "nbgrader", "fetch_assignment", A, *as_student)
        fetched = {who.name: who.home / A / f"{A}.ipynb" for who in (ann, ben)}
        _write_as(ann, fetched[ANN], SOLUTION.read_bytes())
        _write_as(ben, fetched[BEN], _ben_answers(fetched[BEN]))
        for who in (ann, ben):
            student(who, PY, "-m", "nbgrader", "submit", A, *as_student)
        rec["probe"] = json.loads(run_as(ben, [PY, "-c", PROBE, str(root / COURSE_ID / "inbound"),
                                               str(root / COURSE_ID / "outbound"), str(root / COURSE_ID / "feedback"),
                                               str(root / COURSE_ID), str(ann.home), ANN]).stdout.decode())
        rec["inbound"] = sorted(p.name for p in (root / COURSE_ID / "inbound").iterdir())
        rec["extensions with exchange"] = states()

        # 4. Collect, and grade what was collected (no SUBMISSIONS argument: submitted/).
        instructor(PY, "-m", "nbgrader", "collect", A, *exchange, *coursedir)
        grade = [PY, "-m", "autograder", "grade", A, "--course", course, "--out", out, "--jobs", "2",
                 "--kernel-uids", KERNEL_UIDS]
        instructor(*grade)
        rec["grades before"] = _grades(out)
        rec["feedback before"] = {s: (out / "feedback" / s / f"{A}.html").read_text() for s in STUDENTS}

        # 5. A written answer graded by hand, through the gradebook API the formgrader uses.
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
            gb.find_grade(WRITTEN[0], A, A, ANN).manual_score = MANUAL["score"]
            gb.find_comment(WRITTEN[0], A, A, ANN).manual_comment = MANUAL["comment"]
            gb.db.commit()
        stamps = {s: (course / "autograded" / s / A / f"{A}.ipynb").stat().st_mtime_ns for s in STUDENTS}
        instructor(*grade)  # grades nobody again; re-exports and regenerates every feedback page
        rec["regraded"] = {s: (course / "autograded" / s / A / f"{A}.ipynb").stat().st_mtime_ns != stamps[s]
                           for s in STUDENTS}
        rec["grades"] = _grades(out)
        rec["feedback"] = {s: (out / "feedback" / s / f"{A}.html").read_text() for s in STUDENTS}
        rec["course feedback"] = {s: (course / "feedback" / s / A / f"{A}.html").read_text() for s in STUDENTS}

        # 6. Return the feedback: nbgrader sends the course's feedback/ copy; each student fetches.
        instructor(PY, "-m", "nbgrader", "release_feedback", A, *exchange, *coursedir)
        rec["released feedback"] = {p.name: p.read_text() for p in (root / COURSE_ID / "feedback").iterdir()}
        for who in (ann, ben):
            student(who, PY, "-m", "nbgrader", "fetch_feedback", A, *as_student)
        rec["fetched"] = {who.name: {str(p.relative_to(who.home)): p.read_text()
                                     for p in (who.home / A / "feedback").rglob("*.html")} for who in (ann, ben)}
        rec["secrets"] = {who.name: next((who.home / ".local/share/jupyter/nbgrader_cache" / COURSE_ID).glob(
            f"{who.name}+{A}+*/submission_secret.txt")).read_text() for who in (ann, ben)}
        rec["modes"] = {str(p.relative_to(root)): (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid)
                        for p in [root, *root.rglob("*")]}
        rec["seconds"] = time.monotonic() - start
        print(f"exchange term: {rec['seconds']:.0f} s")
        for who, cmd, seconds in commands:
            print(f"{seconds:6.1f} s [{who}] {cmd}")
        return rec


# ---------------------------------------------------------------------------------------------
# The Assignment List follows the exchange


def test_without_an_exchange_the_assignment_list_is_off(term):
    assert term["extensions without exchange"] == {
        "lab assignment-list": "disabled", "lab validate-assignment": "enabled",
        "server assignment_list": "disabled", "server validate_assignment": "disabled",
        "server dlcourse.validate": "enabled"}
    assert "assignment-list: disabled (no usable nbgrader exchange" in term["install output"]
    # What it would have shown: the errors of the issue.
    answer = term["assignment list without exchange"]["released"]
    assert answer["success"] is False and "exchange directory does not exist" in answer["value"]


def test_setup_turns_it_on_and_configures_the_students(term):
    assert term["extensions with exchange"] == {
        "lab assignment-list": "enabled", "lab validate-assignment": "enabled",
        "server assignment_list": "enabled", "server validate_assignment": "disabled",
        "server dlcourse.validate": "enabled"}
    assert f"c.Exchange.root = {str(term['root'])!r}" in term["config written"]
    assert f"c.CourseDirectory.course_id = {COURSE_ID!r}" in term["config written"]
    # The student's Assignment List, with nothing but that config: the released assignment.
    listed = term["assignment list with exchange"]
    assert listed["courses"] == {"success": True, "value": [COURSE_ID]}, listed
    assert listed["released"]["success"] is True, listed
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in listed["released"]["value"]] == \
        [(COURSE_ID, A, "released")]


def test_setup_without_root_says_so(term):
    proc = term["setup as a student"]
    err = proc.stderr.decode()
    assert proc.returncode == 2, (proc.stdout, err)
    assert "cannot create the exchange /usr/local/share/nbgrader/exchange" in err
    assert "is not root" in err and "--root" in err


# ---------------------------------------------------------------------------------------------
# The exchange's folders and who can see what


def test_exchange_folders_have_nbgrader_modes(term):
    modes = term["modes"]
    assert modes["."][0] & 0o777 == 0o777, oct(modes["."][0])  # documented: readable and writable by all
    assert modes["."][0] == ROOT_MODE == 0o1777  # plus the sticky bit of setup
    assert {name: modes[f"{COURSE_ID}/{name}" if name else COURSE_ID][0] for name in COURSE_MODES} == {
        "": 0o755, "outbound": 0o755, "inbound": 0o2733, "feedback": 0o711}
    assert modes[f"{COURSE_ID}/outbound/{A}"][0] == 0o755
    assert modes[f"{COURSE_ID}/outbound/{A}/{A}.ipynb"][0] == 0o644
    submissions = [k for k in modes if re.fullmatch(rf"{COURSE_ID}/inbound/[^/]+", k)]
    assert len(submissions) == 2
    for sub in submissions:
        assert modes[sub][0] == 0o777, (sub, oct(modes[sub][0]))  # nbgrader submit: "so the instructor can delete"
        assert modes[f"{sub}/{A}.ipynb"][0] == 0o644
    released = [k for k in modes if k.startswith(f"{COURSE_ID}/feedback/")]
    assert len(released) == 2 and all(modes[k][0] == 0o644 for k in released), released
    for key in ("", "outbound", "inbound", "feedback"):  # the instructor's, as nbgrader needs
        assert modes[f"{COURSE_ID}/{key}".rstrip("/")][1] == 0


def test_a_student_cannot_see_the_others_submission(term):
    probe = term["probe"]
    assert probe["list inbound"] == "PermissionError"
    assert probe["the other's submissions found"] == []
    assert probe["list feedback"] == "PermissionError"
    assert probe["list the other's home"] == "PermissionError"  # it holds the secret that names her feedback
    assert probe["rename the course folder"] == "PermissionError"
    assert probe["write into outbound"] == "PermissionError"
    assert probe["list outbound"] == "ok"
    # What keeps a submission from being found: the name ends in nbgrader's random string.
    for name in term["inbound"]:
        student, assignment, timestamp, random_part = name.split("+")
        assert student in STUDENTS and assignment == A and len(random_part) >= 12, name


# ---------------------------------------------------------------------------------------------
# Grades and feedback


def test_collected_submissions_are_graded_with_the_manual_grade(term):
    rows = term["grades"]
    assert sorted(rows) == sorted(STUDENTS)
    assert all(r["status"] == "ok" for r in rows.values()), rows
    ann, ben = rows[ANN], rows[BEN]
    assert {g: float(ann[g]) for g in AUTO} == {g: POINTS[g] for g in AUTO}
    assert {g: float(ben[g]) for g in AUTO} == {g: POINTS[g] if g == "test_softmax" else 0.0 for g in AUTO}
    assert term["grades before"][ANN][WRITTEN[0]] == ""  # waiting for the formgrader
    assert float(ann[WRITTEN[0]]) == MANUAL["score"]
    assert float(ann["score"]) == sum(POINTS[g] for g in AUTO) + MANUAL["score"]
    assert not any(term["regraded"].values()), "the rerun graded a submission again"


def _secret_hidden_lines(term) -> set[str]:
    """The lines between the hidden-test markers that appear nowhere in the student's release
    nor elsewhere in the source (those, a student may legitimately see)."""
    hidden = {ln.strip() for c in SOURCE.cells for ln in hidden_tests(c.source).splitlines() if len(ln.strip()) > 12}
    public = {ln.strip() for c in read(term["course"] / "exercises" / A / f"{A}.ipynb").cells
              for ln in c.source.splitlines()}
    elsewhere = {ln.strip() for c in SOURCE.cells if not hidden_tests(c.source) for ln in c.source.splitlines()}
    return hidden - public - elsewhere


def test_released_feedback_is_the_redacted_page(term):
    secret = _secret_hidden_lines(term)
    assert len(secret) > 10
    released = term["released feedback"]
    assert len(released) == 2
    for s in STUDENTS:
        # nbgrader releases the course's feedback/ copy: the same page the grade command wrote.
        assert term["course feedback"][s] == term["feedback"][s]
        name = f"{_notebook_hash(term['secrets'][s])}.html"
        assert released[name] == term["feedback"][s], f"the released page of {s} is not the graded one"
        assert not leaked_lines(released[name], secret), f"{s}'s released feedback shows hidden tests"
        assert "hidden tests: not shown" in released[name]
    # The manual grade and comment are in the regenerated page, not in the first one.
    page, before = page_text(term["feedback"][ANN]), page_text(term["feedback before"][ANN])
    assert f"Written response (Score: {MANUAL['score']} / {POINTS[WRITTEN[0]]})" in page
    assert f"Written response (awaiting manual grading, {POINTS[WRITTEN[0]]:g} points)" in before
    assert f"Comments: {MANUAL['comment']}" in page
    assert MANUAL["comment"] not in before


def _notebook_hash(secret: str) -> str:
    from nbgrader.utils import notebook_hash

    return notebook_hash(secret=secret, notebook_id=A)


def test_each_student_fetches_only_their_own_feedback(term):
    secret = _secret_hidden_lines(term)
    for s in STUDENTS:
        fetched = term["fetched"][s]
        assert len(fetched) == 1, fetched.keys()
        (path, page), = fetched.items()
        assert re.fullmatch(rf"{A}/feedback/[^/]+/{A}\.html", path), path
        assert page == term["feedback"][s]
        other = next(o for o in STUDENTS if o != s)
        assert page != term["feedback"][other]
        assert not leaked_lines(page, secret)
    pages = {s: next(iter(term["fetched"][s].values())) for s in STUDENTS}
    for s in STUDENTS:
        row = term["grades"][s]
        # Written answers still waiting for the formgrader count in neither the score nor the total.
        waiting = sum(POINTS[g] for g in WRITTEN if row[g] == "")
        note = f"; {waiting:g} point{'' if waiting == 1 else 's'} awaiting manual grading" if waiting else ""
        top = sum(POINTS.values()) - waiting
        assert f"{A} (Score: {round(float(row['score']), 2)} / {round(top, 2)}{note})" in page_text(pages[s]), s
    assert BEN_WRITTEN in pages[BEN] and BEN_WRITTEN not in pages[ANN]


# ---------------------------------------------------------------------------------------------
# The setup command's own rules (in-process, no accounts)


def test_setup_again_changes_nothing_and_keeps_the_rest_of_the_config(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.exchange import BEGIN, config_lines, setup, write_config

    (tmp_path / "exchange").mkdir(mode=0o755)  # an existing folder gets nbgrader's mode
    root = setup(tmp_path / "exchange", COURSE_ID)
    before = {p: (p.stat().st_mode, p.stat().st_ino) for p in [root, *root.rglob("*")]}
    assert stat.S_IMODE(before[root][0]) == 0o1777
    assert setup(root, COURSE_ID) == root
    assert {p: (p.stat().st_mode, p.stat().st_ino) for p in [root, *root.rglob("*")]} == before

    cfg = tmp_path / "etc" / "nbgrader_config.py"
    cfg.parent.mkdir()
    cfg.write_text("c = get_config()  # noqa\nc.Exchange.timezone = 'Europe/Paris'\n")
    write_config(cfg, config_lines(tmp_path / "first", COURSE_ID))
    write_config(cfg, config_lines(root, COURSE_ID))  # again: the block is replaced, the rest kept
    text = cfg.read_text()
    assert text.count(BEGIN) == 1 and "first" not in text, text
    loaded = PyFileConfigLoader(cfg.name, path=str(cfg.parent)).load_config()
    assert (loaded.Exchange.root, loaded.Exchange.timezone, loaded.CourseDirectory.course_id) == \
        (str(root), "Europe/Paris", COURSE_ID)


def test_setup_refuses_course_folders_of_another_account(tmp_path):
    from autograder.exchange import SetupError, setup

    if os.geteuid() != 0:
        pytest.skip("needs root (folders for another account)")
    nobody = pwd.getpwnam("nobody")
    root = setup(tmp_path / "exchange", COURSE_ID, instructor="nobody")
    assert {p.stat().st_uid for p in (root / COURSE_ID).rglob("*")} | {(root / COURSE_ID).stat().st_uid} == \
        {nobody.pw_uid}
    with pytest.raises(SetupError, match=r"belongs to nobody.*--instructor nobody"):
        setup(root, COURSE_ID)  # as root: nbgrader's release_assignment would refuse them
    with pytest.raises(SetupError, match="course id"):
        setup(root, "two words")
