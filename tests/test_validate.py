"""Validate with a short, per-question result (dlcourse.validate, issue #15).

The unit tests build executed cells by hand (milliseconds). The server tests start a real
Jupyter server with this environment's extensions, POST to the Validate button's route as
nbgrader's lab extension does, and compare the answer with nbgrader's own Validator on the
same notebook: a tiny pure-Python assignment (no TensorFlow), so each run takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader import utils

from dlcourse import validate as V
from lab_session import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _graded(cell, grade_id, *, grade, solution, points=0, locked=False):
    cell.metadata["nbgrader"] = {"grade": grade, "solution": solution, "locked": locked,
                                 "grade_id": grade_id, "schema_version": 3,
                                 **({"points": points} if grade else {})}
    if grade or locked:
        cell.metadata["nbgrader"]["checksum"] = utils.compute_checksum(cell)
    return cell


def tiny_assignment(answers: dict[str, str] | None = None):
    """A released pure-Python assignment: two functions with tests, one written answer.
    ``answers`` replaces the body of answer cells by grade id (what a student types)."""
    answers = answers or {}
    cells = [
        _graded(new_code_cell("def double(x):\n    raise NotImplementedError()"),
                "answer_double", grade=False, solution=True),
        _graded(new_code_cell('assert double(2) == 4, "double(2) should be 4"'),
                "test_double", grade=True, solution=False, points=2, locked=True),
        _graded(new_code_cell("def half(x):\n    raise NotImplementedError()"),
                "answer_half", grade=False, solution=True),
        _graded(new_code_cell('assert half(4) == 2, "half(4) should be 2"\nassert half(1) == 0.5'),
                "test_half", grade=True, solution=False, points=1, locked=True),
        _graded(new_markdown_cell("YOUR ANSWER HERE"), "written_why", grade=True, solution=True,
                points=2),
    ]
    for cell in cells:
        if cell.metadata.nbgrader["grade_id"] in answers:
            cell.source = answers[cell.metadata.nbgrader["grade_id"]]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


# --- per-question statuses from executed cells --------------------------------------------------

def _executed(cell, *outputs):
    cell.outputs = list(outputs)
    return cell


def _error(ename, evalue=""):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"\x1b[31m{ename}\x1b[0m: {evalue}"])


def test_each_status_from_an_executed_cell():
    nb = tiny_assignment()
    test_double, test_half, written = nb.cells[1], nb.cells[3], nb.cells[4]
    assert V.question_of(nb.cells[0]) is None  # an answer cell is not a question
    assert V.question_of(_executed(test_double)) == V.Question("test_double", 2, V.PASSED)
    q = V.question_of(_executed(test_double, _error("NotImplementedError")))
    assert (q.status, q.detail) == (V.NOT_ANSWERED, "double still raises NotImplementedError")
    q = V.question_of(_executed(test_half, _error("AssertionError", "half(4) should be 2")))
    assert (q.status, q.detail) == (V.FAILED, "AssertionError: half(4) should be 2")
    q = V.question_of(_executed(test_half, _error("ValueError", "x" * 1000)))
    assert q.status == V.FAILED and len(q.detail) <= V.MAX_DETAIL and q.detail.endswith("...")
    assert V.question_of(written).status == V.NOT_ANSWERED  # still the release's text
    written.source = "Because halving undoes doubling."
    assert V.question_of(written) == V.Question("written_why", 2, V.ANSWERED, "graded by hand", written=True)


def test_dialog_value_is_short_and_escaped():
    questions = [V.Question("test_double", 2, V.PASSED),
                 V.Question("test_half", 1, V.FAILED, "AssertionError: <b>half</b>"),
                 V.Question("written_why", 2, V.NOT_ANSWERED, "the release's text is unchanged", written=True)]
    value = V.dialog_value({"failed": [{"source": "x" * 5000, "error": "y" * 5000}]}, questions)
    assert [e["source"] for e in value["failed"]] == ["test_half (1 point): failed",
                                                      "written_why (2 points): not answered"]
    assert "&lt;b&gt;half&lt;/b&gt;" in value["failed"][0]["error"]  # nbgrader draws it as HTML
    assert "1 of 2 autograded questions pass" in value["failed"][-1]["error"]
    assert len(json.dumps(value)) < 800
    # nbgrader's own findings about changed locked cells are kept as they are
    changed = {"changed": [{"source": "assert double(2) == 4"}]}
    assert V.dialog_value(changed, questions) == changed
    # everything passed or answered: nbgrader's "Success!" (an empty result)
    assert V.dialog_value({}, [questions[0], V.Question("w", 1, V.ANSWERED, written=True)]) == {}


def test_what_is_not_an_assignment(tmp_path):
    chapter = REPO / "book" / "01-basics.md"
    assert "page of the course book" in V.not_an_assignment(chapter)
    plain = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), plain)
    assert "no graded cells" in V.not_an_assignment(plain)
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert "cannot be read as a notebook" in V.not_an_assignment(broken)
    nbformat.write(tiny_assignment(), tmp_path / "a.ipynb")
    assert V.not_an_assignment(tmp_path / "a.ipynb") is None


# --- a real Jupyter server with this environment's extensions -----------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``jupyter server`` from .venv (the extensions ``make env`` enables), root in a temporary
    folder holding a chapter and the tiny assignment, blank and answered."""
    root = tmp_path_factory.mktemp("validate-root")
    shutil.copy(REPO / "book" / "01-basics.md", root / "chapter.md")
    nbformat.write(tiny_assignment(), root / "blank.ipynb")
    nbformat.write(tiny_assignment({"answer_double": "def double(x):\n    return 2 * x",
                                    "answer_half": "def half(x):\n    return x // 2",
                                    "written_why": "Halving undoes doubling."}), root / "partly.ipynb")
    nbformat.write(tiny_assignment({"answer_double": "def double(x):\n    return 2 * x",
                                    "answer_half": "def half(x):\n    return x / 2",
                                    "written_why": "Halving undoes doubling."}), root / "done.ipynb")
    port, token = free_port(), "validate-test-token"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "jupyter"), "server", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", "--allow-root", f"--ServerApp.root_dir={root}"],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ["PATH"]])))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter server did not start:\n" + (root / "server.log").read_text())
                time.sleep(0.5)
        yield base, token, root
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except ProcessLookupError:  # already gone
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def post_validate(server, path: str) -> dict:
    """What nbgrader's lab extension sends when Validate is clicked (and what it gets back)."""
    base, token, _ = server
    request = urllib.request.Request(
        f"{base}/assignments/validate", data=urllib.parse.urlencode({"path": path}).encode(),
        headers={"Authorization": f"token {token}"}, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        answer = json.loads(response.read())
    if isinstance(answer.get("value"), str) and answer.get("success"):
        answer["value"] = json.loads(answer["value"])
    return answer


def nbgrader_failed_ids(root: Path, name: str) -> set[str]:
    """The grade ids nbgrader's own Validator reports as failed (matched by source)."""
    from nbgrader.validator import Validator

    nb = nbformat.read(root / name, as_version=4)
    by_source = {c.source.strip(): c.metadata.nbgrader["grade_id"] for c in nb.cells if "nbgrader" in c.metadata}
    result = Validator().validate(str(root / name))
    return {by_source[f["source"]] for f in result.get("failed", [])}


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_a_chapter_gets_one_sentence_not_a_traceback(server):
    before = (server[2] / "chapter.md").read_bytes()
    answer = post_validate(server, "chapter.md")
    assert answer["success"] is False
    text = " ".join(answer["value"].split())
    assert "is not an assignment" in text and "page of the course book" in text
    assert max(map(len, answer["value"].splitlines())) <= 72  # nbgrader shows it unwrapped, in a <pre>
    assert "Traceback" not in answer["value"] and "NotJSONError" not in answer["value"]
    assert (server[2] / "chapter.md").read_bytes() == before


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_a_blank_release_reads_not_answered_per_question(server):
    answer = post_validate(server, "blank.ipynb")
    assert answer["success"] is True, answer
    failed = answer["value"]["failed"]
    assert [e["source"] for e in failed] == ["test_double (2 points): not answered",
                                             "test_half (1 point): not answered",
                                             "written_why (2 points): not answered"]
    assert "0 of 2 autograded questions pass" in failed[-1]["error"]
    assert "Traceback" not in json.dumps(answer)
    # the same failures as nbgrader's own Validator, which stays as it was
    assert nbgrader_failed_ids(server[2], "blank.ipynb") == {"test_double", "test_half", "written_why"}


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_a_wrong_answer_reads_failed_with_its_message(server):
    answer = post_validate(server, "partly.ipynb")
    assert answer["success"] is True, answer
    failed = answer["value"]["failed"]
    assert [e["source"] for e in failed] == ["test_half (1 point): failed"]
    assert failed[0]["error"].startswith("AssertionError")  # half(1) == 0.5, an assert without a message
    assert "1 of 2 autograded questions pass" in failed[0]["error"]
    assert nbgrader_failed_ids(server[2], "partly.ipynb") == {"test_half"}


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_the_server_keeps_answering_while_it_validates(server):
    """nbgrader's handler runs the notebook on the server's event loop; this one does not."""
    import threading

    base, token, root = server
    slow = tiny_assignment({"answer_double": "import time\ntime.sleep(8)\ndef double(x):\n    return 2 * x"})
    nbformat.write(slow, root / "slow.ipynb")
    finished = {}
    worker = threading.Thread(target=lambda: finished.setdefault("validate", (post_validate(server, "slow.ipynb"),
                                                                              time.monotonic())))
    worker.start()
    time.sleep(2)  # the kernel is starting or sleeping
    urllib.request.urlopen(f"{base}/api/contents/slow.ipynb?token={token}&content=0", timeout=30)
    status_at = time.monotonic()
    worker.join(timeout=300)
    answer, validate_at = finished["validate"]
    assert answer["success"] is True, answer
    assert status_at < validate_at, "the server did not answer until the validation was over"


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_a_finished_notebook_gets_nbgraders_success(server):
    answer = post_validate(server, "done.ipynb")
    assert answer == {"success": True, "value": {}}, answer
    assert nbgrader_failed_ids(server[2], "done.ipynb") == set()


@pytest.mark.slow  # a Jupyter server and a kernel per notebook
def test_the_command_line_shows_progress_then_the_table(server, tmp_path):
    shutil.copy(server[2] / "partly.ipynb", tmp_path / "partly.ipynb")
    proc = subprocess.run([sys.executable, "-m", "dlcourse.validate", "partly.ipynb"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert progress == ["[  2/4 cells] test_double (2 points): passed",
                        "[  4/4 cells] test_half (1 point): failed"], proc.stdout
    assert re.search(r"^test_half \(1 point\)\s+failed\s+AssertionError", proc.stdout, re.M), proc.stdout
    assert re.search(r"^written_why \(2 points\)\s+answered\s+graded by hand", proc.stdout, re.M)
    assert lines[-1] == "1 of 2 autograded questions pass; written answers are graded by hand later."
