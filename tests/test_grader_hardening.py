"""The grader's hardening against a hostile class (issue 11's lifecycle and limit items).

One small class of ps1 is graded once, in the sandbox, with secrets in the grader's own
environment. Each hostile student tries one attack while answering everything correctly (so a
failed defence would show as a leak, not as a lost point), beside an honest student who must
keep full marks. The fast unit tests of each piece are in ``tests/test_grader_units.py``.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from pathlib import Path

import pytest

from autograder.grading import Limits, grade
from autograder.notebook import read
from autograder.sandbox import Sandbox
from autograder.feedback import secret_lines
from autograder.notebook import cells_by_grade_id
from test_grade import A, FULL, SOLUTION, SOURCE, WRITTEN, _cell_scores, _course, _nb, _write
from test_grader_units import _active_content

SECRETS = {"PGPASSWORD": "pg-secret-81b2f0", "AWS_SECRET_ACCESS_KEY": "aws-secret-3c9d5e",
           "GITHUB_TOKEN": "ghp_secret77aa14", "TF_TOKEN_app_terraform_io": "tf-token-secret5b"}
LIMITS = Limits(cell_seconds=60, notebook_seconds=150)
JOBS = 2

ENV_DUMP = """\
import glob, os, posix
print("ENVDUMP", sorted(os.environ.items()))
print("POSIXENV", sorted(posix.environ.items()))
for p in ["/proc/self/environ", "/proc/1/environ", f"/proc/{os.getppid()}/environ",
          *glob.glob("/proc/[0-9]*/environ")]:
    try:
        print("READ", p, open(p, "rb").read())
    except Exception as e:
        print("blocked", p, type(e).__name__)
"""

# A daemon thread, a double-forked setsid orphan (renamed, so that the test can find it) and a
# subprocess in its own session: all meant to outlive the notebook.
ORPHAN_MARK = "dlc-orphan-7e21"
ORPHANS = f"""\
import os, subprocess, sys, threading, time
threading.Thread(target=lambda: [time.sleep(0.2) for _ in iter(int, 1)], daemon=True).start()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time\\nwhile True: time.sleep(1)", "{ORPHAN_MARK}"])
    os._exit(0)
os.waitpid(pid, 0)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(86400)", "{ORPHAN_MARK}"],
                 start_new_session=True)
"""

# Squat on where the next kernel's sockets would be: beside this kernel's own socket files
# (a shared folder, names predicted from the uid) or in the folder that holds them all.
SQUAT = """\
import os, stat
from ipykernel import get_connection_file
mine = os.path.dirname(get_connection_file())
st = os.stat(mine)
print("MYSOCKETS", oct(st.st_mode & 0o777), st.st_uid == os.getuid())
for attempt in [lambda: os.listdir(os.path.dirname(mine)),
                lambda: open(os.path.join(os.path.dirname(mine), "k-squat"), "w"),
                lambda: open(os.path.join(os.path.dirname(mine), "kernels", f"k{os.getuid() + 1}-1"), "w"),
                lambda: open(os.path.join(mine, f"k{os.getuid() + 7}.json"), "w") if st.st_mode & 0o002 else 1 / 0]:
    try:
        attempt()
        print("SQUATTED")
    except Exception as e:
        print("blocked", type(e).__name__)
"""

# 30 MB into the notebook through display updates: 100 outputs share one display id, then
# one 300 kB update rewrites them all. And 40 MB of comm messages (widget state).
DISPLAY_FLOOD = """\
from IPython.display import HTML, display
handle = display(HTML("x"), display_id=True)
for _ in range(99):
    display(HTML("x"), display_id=handle.display_id)
handle.update(HTML("y" * 300_000))
"""
COMM_FLOOD = """\
import comm
channel = comm.create_comm(target_name="jupyter.widget", data={"state": {}})
for _ in range(40):
    channel.send({"state": {"value": "z" * 10**6}})
"""
CAP = 5 * 2**20  # the default output cap (Limits.output_bytes)
# 230 kB of unclosed hidden-test markers in an answer cell (the old redaction: about a minute).
MARKERS = "### BEGIN HIDDEN TESTS\n" * 10_000
# The hidden tests of the cells run so far are in IPython's input history: print them.
LEAK = 'print("\\n".join(In))'

# Script in the feedback: through outputs (HTML, JavaScript, SVG) and a written answer.
XSS_OUTPUTS = """\
from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML("<script>alert('XSS-H1')</script><b onclick=\\"alert('XSS-H2')\\">b</b>"))
display(Javascript("alert('XSS-H3')"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"alert('XSS-H4')\\"><circle r='3'/></svg>"))
display(Markdown("[x](javascript:alert('XSS-H5'))"))
"""
XSS_MARKDOWN = "<img src=x onerror=\"alert('XSS-H6')\"> [y](javascript:alert('XSS-H7')) <script>alert('XSS-H8')</script>"

EXPECTED = {  # student: (status, per-cell scores)
    "honest": ("ok", FULL),
    "h_env": ("ok", FULL),
    "h_orphans": ("ok", FULL),
    "h_squat": ("ok", FULL),
    "h_display": ("output limit", {**FULL, "test_build_mlp": 0}),
    "h_comm": ("output limit", {**FULL, "test_standardize": 0, "test_build_mlp": 0}),
    "h_markers": ("ok", FULL),
    "h_leak": ("ok", FULL),
    "h_xss": ("ok", FULL),
}


def _marked_processes() -> list[int]:
    """Pids of the orphans' processes (on the host: the sandbox's pids are visible from here)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if ORPHAN_MARK[4:].encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    root = _course(tmp / "course")
    klass = tmp / "class"
    _write(read(SOLUTION), klass / "honest.ipynb")
    _write(_nb(softmax=ENV_DUMP), klass / "h_env.ipynb")
    _write(_nb(softmax=ORPHANS), klass / "h_orphans.ipynb")
    _write(_nb(softmax=SQUAT), klass / "h_squat.ipynb")
    _write(_nb(build_mlp=DISPLAY_FLOOD), klass / "h_display.ipynb")
    _write(_nb(standardize=COMM_FLOOD), klass / "h_comm.ipynb")
    nb = _nb()
    cells_by_grade_id(nb)["softmax"].source += "\n" + MARKERS
    _write(nb, klass / "h_markers.ipynb")
    _write(_nb(k_fold_indices=LEAK), klass / "h_leak.ipynb")
    _write(_nb(adam=XSS_OUTPUTS, **{f"{WRITTEN[0]}__replace": XSS_MARKDOWN}), klass / "h_xss.ipynb")
    # What still runs of the orphans when the grader reports a student as done (the class is
    # still being graded then: the kernel server and the sandbox are up).
    alive_after: dict[str, list[int]] = {}

    def progress(result):
        alive_after[result.student] = _marked_processes()

    with pytest.MonkeyPatch.context() as mp:
        for name, value in SECRETS.items():
            mp.setenv(name, value)
        results = grade(A, klass, tmp / "out", course_root=root, sandbox=Sandbox.for_course(),
                        limits=LIMITS, jobs=JOBS, progress=progress)
    rows = {r["student_id"]: r for r in csv.DictReader(open(tmp / "out" / "grades.csv"))}
    return {"root": root, "out": tmp / "out", "rows": rows, "results": {r.student: r for r in results},
            "alive_after": alive_after, "log": (tmp / "out" / "grading.log").read_text()}


def _outputs(graded, student) -> str:
    nb = read(graded["root"] / "autograded" / student / A / f"{A}.ipynb")
    return json.dumps([c.get("outputs", []) for c in nb.cells])


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_status_and_exact_scores(graded, student):
    status, scores = EXPECTED[student]
    row = graded["rows"][student]
    assert row["status"] == status, (student, row, graded["results"][student].detail)
    assert _cell_scores(row) == scores, (student, row)


def test_no_secret_of_the_graders_environment_reaches_a_kernel(graded):
    text = _outputs(graded, "h_env")
    # The attack ran: it printed the kernel's environment and read environ files.
    assert "ENVDUMP" in text and "POSIXENV" in text and "/proc/self/environ" in text
    assert "NBGRADER_EXECUTION" in text and "'HOME', '" in text
    everything = [text, (graded["out"] / "feedback" / "h_env" / f"{A}.html").read_text(),
                  (graded["out"] / "grading.log").read_text()]
    for name, value in SECRETS.items():
        for blob in everything:
            assert value not in blob and name not in blob, name
    # And nothing that jupyter_client adds for its own launcher.
    assert "JPY_" not in text and "JUPYTER_" not in text


def test_nothing_of_a_notebook_outlives_it(graded):
    # The attack was real: the grader found and killed the orphans (the kernel itself, with its
    # daemon thread, was shut down before that and is not counted).
    m = re.search(r"h_orphans: killed (\d+) process\(es\) that outlived the notebook", graded["log"])
    assert m and int(m.group(1)) >= 2, graded["log"][-3000:]
    assert graded["alive_after"]["h_orphans"] == [], "the orphans still ran after their notebook"
    # Nothing of any kernel uid is left after the run, and honest students were not touched.
    from autograder.sandbox import KERNEL_UIDS, processes_of

    assert not [uid for uid in KERNEL_UIDS if processes_of(uid)]
    assert not _marked_processes()


def test_peak_live_kernels_is_logged_and_at_most_jobs(graded):
    m = re.search(r"peak live kernels: (\d+) \(--jobs (\d+)\); live at the end: (\d+)", graded["log"])
    assert m, graded["log"][-3000:]
    peak, jobs, live = map(int, m.groups())
    assert jobs == JOBS and 1 <= peak <= JOBS and live == 0


def test_kernel_sockets_are_private(graded):
    text = _outputs(graded, "h_squat")
    assert "MYSOCKETS 0o700 True" in text, text[:3000]
    assert "SQUATTED" not in text and text.count("blocked") == 4


@pytest.mark.parametrize("student", ["h_display", "h_comm"])
def test_output_cap_counts_display_updates_and_comms(graded, student):
    path = graded["root"] / "autograded" / student / A / f"{A}.ipynb"
    nb = read(path)
    assert len(json.dumps([c.get("outputs", []) for c in nb.cells])) < CAP
    assert json.dumps(nb.metadata).count("z" * 1000) == 0  # no widget state kept either
    assert path.stat().st_size < CAP + 200_000
    assert (graded["out"] / "feedback" / student / f"{A}.html").stat().st_size < CAP + 500_000


def test_grades_are_written_before_any_feedback(graded):
    csv_written = (graded["out"] / "grades.csv").stat().st_mtime_ns
    pages = list((graded["out"] / "feedback").glob(f"*/{A}.html"))
    assert sorted(p.parent.name for p in pages) == sorted(EXPECTED)
    assert all(p.stat().st_mtime_ns >= csv_written for p in pages)


def test_a_pathological_cell_gets_its_feedback(graded):
    page = html.unescape((graded["out"] / "feedback" / "h_markers" / f"{A}.html").read_text())
    assert "test_softmax: passed, 2 of 2 points" in page


def test_printing_the_history_shows_no_hidden_test(graded):
    """``print("\\n".join(In))`` once showed every hidden test: they ran in the student's
    kernel. Now the judge runs them, so the history holds none, and the feedback needs no
    withholding (that last check is tested in test_grader_units)."""
    secrets = secret_lines(SOURCE)
    assert len(secrets) > 5
    outputs = _outputs(graded, "h_leak")
    assert "def softmax" in outputs  # the attack ran: the history was printed
    assert not [ln for ln in secrets if ln in outputs]
    for page in (graded["out"] / "feedback" / "h_leak" / f"{A}.html",
                 graded["root"] / "feedback" / "h_leak" / A / f"{A}.html"):
        text = html.unescape(page.read_text())
        assert "test_softmax" in text and "feedback withheld" not in text
    assert "withheld" not in graded["log"]


def test_feedback_runs_no_student_script(graded):
    def page(student):
        return (graded["out"] / "feedback" / student / f"{A}.html").read_text()

    # The attack reached the executed notebook...
    outputs = _outputs(graded, "h_xss")
    assert "XSS-H1" in outputs and "XSS-H3" in outputs and "XSS-H4" in outputs
    # ...but the feedback page has no more active content than an honest student's (the
    # template's own scripts), and shows the written answer's markup as text.
    active = _active_content(page("h_xss"))
    assert active == _active_content(page("honest")), active
    assert not [a for a in active if "XSS" in a]
    assert "alert('XSS-H8')" in html.unescape(page("h_xss"))
