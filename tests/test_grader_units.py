"""Unit tests of the grader's hardening pieces, in milliseconds, on in-memory data.

The integration tests (a hostile class graded in the sandbox) are in
``tests/test_grader_hardening.py``; these check each piece on its own.
"""

from __future__ import annotations

import asyncio
import time
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from autograder import environment

SECRETS = {"PGPASSWORD": "pg-secret-81b2", "AWS_SECRET_ACCESS_KEY": "aws-secret-3c9d",
           "GITHUB_TOKEN": "ghp_secret_77aa"}
GRADER_ENV = {
    **SECRETS, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "LANGUAGE": "en",
    "HOME": "/root", "TMPDIR": "/var/tmp/instructor", "PYTHONPATH": "/opt/site",
    "TF_NUM_INTEROP_THREADS": "1", "DLCOURSE_PROFILE": "small", "MPLBACKEND": "Agg",
    "JPY_PARENT_PID": "1", "JPY_SESSION_NAME": "/root/notebook.ipynb", "JUPYTER_TOKEN": "jt-secret",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock", "LD_PRELOAD": "/tmp/evil.so", "PYTHONSTARTUP": "/tmp/x.py",
    "NBGRADER_EXECUTION": "instructor-value", "IPYTHONDIR": "/root/.ipython",
    # Terraform's variables share TensorFlow's TF_ prefix.
    "TF_VAR_db_password": "tf-secret-1", "TF_TOKEN_app_terraform_io": "tf-secret-2",
    "TF_CLI_CONFIG_FILE": "/root/.terraformrc",
}


# ---------------------------------------------------------------------------------------------
# 1. The kernel's environment comes from an allowlist


def test_base_environment_keeps_only_the_allowlist():
    env = environment.base_environment({**GRADER_ENV, "PATH": "/repo/.venv/bin:/usr/bin:/bin"},
                                       home="/run/grading", python_path=["/repo"], bindir="/repo/.venv/bin")
    assert set(env) == {"PATH", "LANG", "LC_ALL", "LANGUAGE", "HOME", "PYTHONPATH", "TF_NUM_INTEROP_THREADS",
                        "TF_CPP_MIN_LOG_LEVEL", "DLCOURSE_PROFILE", "DLCOURSE_OFFLINE", "MPLBACKEND",
                        "PYTHONHASHSEED"}
    assert env["HOME"] == "/run/grading"  # never the instructor's home
    assert env["PATH"] == "/repo/.venv/bin:/usr/bin:/bin"
    assert env["PYTHONPATH"] == "/repo:/opt/site"
    assert not set(SECRETS.values()) & set(env.values())
    assert not any(v.startswith("tf-secret") for v in env.values())


def test_kernel_environment_is_the_allowlist_with_the_scratch_folder():
    base = environment.base_environment(GRADER_ENV, home="/run/grading")
    # Anything else that got into the base (a bug upstream) is dropped again here.
    env = environment.kernel_environment({**base, **SECRETS, "JPY_PARENT_PID": "7"}, "/scratch/ann")
    assert env["HOME"] == env["TMPDIR"] == "/scratch/ann"
    assert env["IPYTHONDIR"] == "/scratch/ann/.ipython" and env["MPLCONFIGDIR"] == "/scratch/ann/.matplotlib"
    assert env["NBGRADER_EXECUTION"] == "autograde"
    assert all(environment.allowed(k) for k in env)
    assert not any(k.startswith(("JPY_", "JUPYTER_")) for k in env)
    assert not set(SECRETS.values()) & set(env.values())


class _FakeProcess:
    """What Zygote.spawn returns, without a kernel behind it."""

    stdin = stdout = stderr = None

    def __init__(self):
        self.pid, self.returncode = 4242, None

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        return self.returncode

    def send_signal(self, signum):
        self.returncode = -signum

    def kill(self):
        self.send_signal(9)

    terminate = kill


class _FakeZygote:
    def __init__(self):
        self.requests = []

    def spawn(self, argv, cwd, env, **kw):
        self.requests.append({"argv": argv, "cwd": cwd, "env": env, **kw})
        return _FakeProcess()


def test_the_allowlist_wins_over_what_jupyter_client_adds(tmp_path, monkeypatch):
    """The real jupyter_client launch path (kernelspec env, JPY_*, a copy of os.environ) with the
    grader's secrets in os.environ: the kernel is asked to start with the allowlist only."""
    from jupyter_client.kernelspec import KernelSpec

    from autograder.kernels import ForkKernelManager

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    zygote = _FakeZygote()
    base = environment.base_environment(os.environ, home=str(tmp_path))
    km = ForkKernelManager(zygote=zygote, kernel_env=environment.kernel_environment(base, tmp_path),
                           kernel_cwd=str(tmp_path), connection_file=str(tmp_path / "k.json"))
    km._kernel_spec = KernelSpec(argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                 env={"KERNELSPEC_ADDED": "x", "PGPASSWORD": "${PGPASSWORD}"},
                                 display_name="t", language="python")

    async def go():
        await km.start_kernel(env={**os.environ, "JPY_SESSION_NAME": "s", "CALLER_ADDED": "y"})
        await km.shutdown_kernel(now=True)

    asyncio.run(go())
    [request] = zygote.requests
    env = request["env"]
    assert env == environment.restrict(env)
    assert env["HOME"] == str(tmp_path) and "PATH" in env
    for name in (*SECRETS, "KERNELSPEC_ADDED", "CALLER_ADDED", "JPY_SESSION_NAME", "JPY_PARENT_PID"):
        assert name not in env, name
    assert not set(SECRETS.values()) & set(env.values())


# ---------------------------------------------------------------------------------------------
# 2. Nothing of a kernel outlives it: every process of its uid is killed

TEST_UID = 61990  # not a kernel uid of a real run; must not be an account


def _escape_artist(uid: int) -> subprocess.Popen:
    """A process of ``uid`` that leaves a double-forked setsid grandchild behind."""
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(600)\n"
            "    os._exit(0)\n"
            "time.sleep(600)\n")
    return subprocess.Popen(["/usr/bin/python3", "-c", code], user=uid, group=uid, extra_groups=[],
                            start_new_session=True)


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (switches to a kernel uid)")
def test_kill_uid_reaches_processes_that_left_the_process_group():
    import pwd
    import signal
    import time

    from autograder.sandbox import Sandbox, processes_of

    with pytest.raises(KeyError):
        pwd.getpwuid(TEST_UID)
    proc = _escape_artist(TEST_UID)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the grandchild has its own session
        if any(_sid(p) not in (proc.pid, None) for p in processes_of(TEST_UID)):
            break
        time.sleep(0.02)
    # What shutting the kernel down does (signal its process group) leaves the grandchild alive.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    survivors = processes_of(TEST_UID)
    assert len(survivors) == 1, "the attack should leave exactly the setsid grandchild"
    assert Sandbox.kill_uid(TEST_UID) == 1
    assert processes_of(TEST_UID) == []
    assert Sandbox.kill_uid(TEST_UID) == 0  # nothing to do: returns at once


# ---------------------------------------------------------------------------------------------
# 3. A private socket folder per kernel


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chowns to a kernel uid)")
def test_each_kernel_has_a_private_randomly_named_socket_folder(tmp_path):
    import stat

    from autograder.sandbox import Sandbox

    box = Sandbox("bwrap", kernel_uids=range(TEST_UID, TEST_UID + 2))
    box.sockets = tmp_path / "sockets"
    box.sockets.mkdir(mode=0o711)
    options = []
    for student in ("ann", "ben"):
        (tmp_path / student).mkdir()
        options.append(box.kernel_options(student, tmp_path / student))
    folders = [Path(o["connection_file"]).parent for o in options]
    assert folders[0] != folders[1] and {f.parent for f in folders} == {box.sockets}
    for o, folder in zip(options, folders):
        st = folder.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == st.st_gid == o["uid"]
        assert o["transport"] == "ipc" and Path(o["ip"]).parent == folder
        name = folder.name.removeprefix("k-")
        assert len(name) == 16 and int(name, 16) >= 0 and str(o["uid"]) not in folder.name
    assert {o["uid"] for o in options} == {TEST_UID, TEST_UID + 1}
    # The notebook's end removes the folder (and the scratch) and gives the uid back.
    assert box.end_kernel("ann", options[0]["uid"], tmp_path / "ann") == 0
    assert not folders[0].exists() and not (tmp_path / "ann").exists()
    again = box.kernel_options("cat", tmp_path / "ben")
    assert again["uid"] == options[0]["uid"] and Path(again["connection_file"]).parent not in folders


# ---------------------------------------------------------------------------------------------
# 4. The output cap counts every iopub message


def _msg(msg_type: str, content: dict, buffers=()) -> dict:
    return {"msg_type": msg_type, "header": {"msg_type": msg_type, "msg_id": "m"}, "parent_header": {},
            "metadata": {}, "content": content, "buffers": list(buffers)}


def _display(data: str, display_id: str, update: bool = False) -> dict:
    return _msg("update_display_data" if update else "display_data",
                {"data": {"text/html": data}, "metadata": {}, "transient": {"display_id": display_id}})


def test_message_bytes_counts_updates_per_output_and_comms():
    from autograder.grading import message_bytes

    assert message_bytes(_msg("status", {"execution_state": "busy"}), {}) == 0
    stream = _msg("stream", {"name": "stdout", "text": "x" * 1000})
    assert 1000 < message_bytes(stream, {}) < 1100
    shown = {"d": {3: [0, 1, 2], 4: [0]}}  # four outputs show display "d"
    update = _display("y" * 10_000, "d", update=True)
    assert message_bytes(update, shown) >= 4 * 10_000
    assert message_bytes(_display("y" * 10_000, "d"), shown) >= 5 * 10_000  # and one new output
    comm = _msg("comm_msg", {"comm_id": "c", "data": {"state": {"v": "z" * 5000}}}, buffers=[b"b" * 7000])
    assert message_bytes(comm, {}) >= 12_000


def test_display_updates_cannot_pass_the_output_cap():
    """nbclient's real message handling: 100 outputs share one display id, then one 300 kB
    update would put 30 MB into the notebook. It is dropped and the kernel stopped."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.grading import GradingRun, Limits, _pooled_execute_class

    cap = 5 * 2**20
    run = GradingRun("a", Path("."), "sqlite://", Limits(output_bytes=cap))
    client = _pooled_execute_class(run)()
    stops = []
    client._stop = lambda status, detail: stops.append(status)
    client.nb = new_notebook(cells=[new_code_cell("attack")])
    client.reset_execution_trackers()
    client._output_bytes, client.clear_before_next_output = 0, False  # as execute_cell sets them
    cell = client.nb.cells[0]
    for _ in range(100):
        client.process_message(_display("x", "d"), cell, 0)
    assert len(cell.outputs) == 100 and not stops
    client.process_message(_display("y" * 300_000, "d", update=True), cell, 0)
    assert stops == ["output limit"]
    assert len(json.dumps(nbformat.from_dict(client.nb))) < cap
    assert all(o["data"]["text/html"] == "x" for o in cell.outputs)


def test_a_malformed_widget_message_is_counted_and_ignored():
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.grading import GradingRun, Limits, _pooled_execute_class

    run = GradingRun("a", Path("."), "sqlite://", Limits())
    client = _pooled_execute_class(run)()
    client.nb = new_notebook(cells=[new_code_cell("attack")])
    client.reset_execution_trackers()
    client._output_bytes, client.clear_before_next_output = 0, False
    # nbclient itself raises KeyError('_model_module') on this one
    opened = _msg("comm_open", {"comm_id": "c", "target_name": "jupyter.widget", "data": {"state": {}}})
    assert client.process_message(opened, client.nb.cells[0], 0) is None
    assert client._output_bytes > 0 and client.nb.cells[0].outputs == []


# ---------------------------------------------------------------------------------------------
# 5. Feedback: linear redaction, a time limit per student, a last check for hidden lines


def _pathological_notebook(size: int):
    """A notebook whose answer cell is ``size`` bytes of unclosed BEGIN HIDDEN TESTS lines,
    beside a real test cell."""
    from nbformat.v4 import new_code_cell, new_notebook

    line = "### BEGIN HIDDEN TESTS\n"
    answer = new_code_cell("def f(x):\n    return x\n" + line * (size // len(line)))
    test = new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2, 'secret'\n"
                         "### END HIDDEN TESTS\n",
                         metadata={"nbgrader": {"grade": True, "grade_id": "test_f", "points": 1,
                                                "solution": False, "score": 1}})
    return new_notebook(cells=[answer, test])


def _redaction_seconds(size: int) -> float:
    """CPU seconds of this process for redacting the pathological cell, best of 3: CPU time,
    not wall time, so that other processes on a loaded machine do not change the ratio (with
    wall time this test failed about one run in three at a load of 4 on 2 cores)."""
    from autograder.feedback import RedactHiddenTests

    best = float("inf")
    for _ in range(3):
        nb = _pathological_notebook(size)
        start = time.process_time()
        RedactHiddenTests().preprocess(nb, {})
        best = min(best, time.process_time() - start)
    assert "secret" not in json.dumps(nb)
    return best


def test_redaction_is_linear_in_the_size_of_a_pathological_cell():
    # Four times the size: about four times the time if linear, sixteen if quadratic; the
    # threshold sits between them. The regex this replaced took 50 s at 200 kB; these are
    # 1 and 4 MB (about 0.02 and 0.1 s).
    small, large = _redaction_seconds(2**20), _redaction_seconds(4 * 2**20)
    assert large / small < 8, (small, large)


def test_redaction_keeps_the_visible_part():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from autograder.feedback import RedactHiddenTests

    test = new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2, 'secret'\n"
                         "### END HIDDEN TESTS\nprint('done')",
                         metadata={"nbgrader": {"grade": True, "grade_id": "test_f", "points": 2, "score": 0}})
    test.outputs = [new_output("error", ename="AssertionError", evalue="secret",
                               traceback=["Cell In[7], line 3", "AssertionError: secret"])]
    nb, _ = RedactHiddenTests().preprocess(new_notebook(cells=[test]), {})
    [cell] = nb.cells
    assert cell.source == "assert f(1) == 1\n# (hidden tests: not shown)\nprint('done')\n"
    assert cell.outputs[0]["text"] == ("test_f: failed, 0 of 2 points\n"
                                       "A hidden test failed (or the cell could not run to the end).\n")


def test_leak_scan_finds_hidden_lines_in_highlighted_code_and_outputs():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from autograder.feedback import leaked_lines, secret_lines

    source = new_notebook(cells=[
        new_markdown_cell("Write `f`; `assert f(1) == 1` is a visible check."),
        new_code_cell("def f(x):\n    return x  # solution\n"),
        new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(1) == 1\nx = 3\n"
                      "assert f(-2.5) == -2.5, 'negative input'\n### END HIDDEN TESTS\n")])
    secrets = secret_lines(source)
    # Visible elsewhere, or too short to be a secret: not counted.
    assert secrets == {"assert f(-2.5) == -2.5, 'negative input'"}
    highlighted = ('<span class="k">assert</span> <span class="n">f</span><span class="p">(</span>'
                   '<span class="o">-</span><span class="mf">2.5</span><span class="p">)</span> '
                   '<span class="o">==</span> <span class="o">-</span><span class="mf">2.5</span>'
                   '<span class="p">,</span> <span class="s1">&#39;negative input&#39;</span>')
    assert leaked_lines(f"<pre>{highlighted}</pre>", secrets) == sorted(secrets)
    assert leaked_lines("<pre>assert f(-2.5) ==   -2.5, &#x27;negative input&#x27;</pre>", secrets)
    assert leaked_lines("<pre>assert f(1) == 1</pre>", secrets) == []


def test_a_page_showing_a_hidden_line_is_withheld():
    from autograder.feedback import withhold_if_leaking

    secrets = {"assert f(-2.5) == -2.5, 'negative input'"}
    honest = "<pre>test_f: passed, 2 of 2 points</pre>"
    assert withhold_if_leaking(honest, secrets, "ps0") == (honest, [])
    leaking = "<pre>assert f(-2.5) == -2.5, &#39;negative input&#39;</pre>"
    page, leaked = withhold_if_leaking(leaking, secrets, "ps0")
    assert leaked == sorted(secrets)
    assert "feedback withheld" in page and "negative input" not in page


def _feedback_target(config, student):
    """A FeedbackWorker target for the test below (runs in the worker process)."""
    if student == "slow":
        time.sleep(600)
    if student == "boom":
        raise ValueError("no page")
    Path(config["out"], student).write_text(str(os.getpid()))


def test_a_hanging_feedback_is_stopped_and_the_next_one_still_runs(tmp_path):
    from autograder.feedback_worker import FeedbackTimeout, FeedbackWorker

    worker = FeedbackWorker({"out": str(tmp_path)}, target="test_grader_units:_feedback_target",
                            python_path=[str(Path(__file__).parent)])
    try:
        assert worker.run("ann", timeout=60) == {"ok": True}
        first = (tmp_path / "ann").read_text()
        start = time.monotonic()
        with pytest.raises(FeedbackTimeout):
            worker.run("slow", timeout=1)
        assert time.monotonic() - start < 10
        assert worker.run("ben", timeout=60) == {"ok": True}
        assert (tmp_path / "ben").read_text() != first  # a fresh worker
        assert worker.run("boom", timeout=60) == {"ok": False, "error": "ValueError: no page"}
    finally:
        worker.close()


# ---------------------------------------------------------------------------------------------
# 6. Student HTML and markdown in feedback


def _xss_notebook():
    """Every way a student's notebook can carry script into the feedback page (XSS-n marks
    each), beside ordinary rich content that must survive."""
    import base64

    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

    svg = ("<svg xmlns='http://www.w3.org/2000/svg' onload=\"alert('XSS-13')\"><script>alert('XSS-13b')"
           "</script><circle r='5'/></svg>")
    markdown = [
        "<script>alert('XSS-1')</script>",
        "<img src=x onerror=\"alert('XSS-2')\">",
        "[click](javascript:alert('XSS-3'))",
        "<a href=\" JaVaScRiPt:alert('XSS-4')\">x</a>",
        "<svg onload=\"alert('XSS-5')\"></svg>",
        "<iframe src=\"javascript:alert('XSS-6')\"></iframe>",
        "![i](javascript:alert('XSS-7'))",
        "<div style=\"background:url(javascript:alert('XSS-8'))\">styled</div>",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgnWFNTLTknKTwvc2NyaXB0Pg==\">XSS-9</a>",
        "<form action=\"javascript:alert('XSS-10')\"><button formaction=\"javascript:alert('XSS-10b')\">go</button></form>",
        "<details open ontoggle=\"alert('XSS-22')\">d</details><object data=\"javascript:alert('XSS-23')\"></object>",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('XSS-24')\"><base href=\"javascript:alert('XSS-25')//\">",
    ]
    cells = [new_markdown_cell(m) for m in markdown]
    cells.append(new_markdown_cell("## My answer\n\n**bold**, a [link](https://keras.io), `a < b`, $x<y$\n\n"
                                   "| a | b |\n|---|---|\n| 1 | 2 |\n\n> a quote"))
    code = new_code_cell("x = 1", outputs=[
        new_output("display_data", data={"text/html": "<script>alert('XSS-12')</script>"
                                                      "<b onmouseover=\"alert('XSS-12b')\">hi</b>",
                                         "text/plain": "hi"}),
        new_output("display_data", data={"image/svg+xml": svg}),
        new_output("display_data", data={"application/javascript": "alert('XSS-14')", "text/plain": "js"}),
        new_output("display_data", data={"text/markdown": "[x](javascript:alert('XSS-15'))<script>alert('XSS-15b')</script>"}),
        new_output("display_data", data={"text/html": "<script>alert('XSS-16')</script>"},
                   metadata={"text/html": {"isolated": True}}),
        new_output("display_data", data={"image/png": "\"><script>alert('XSS-17')</script>"}),
        new_output("display_data", data={"text/latex": "</div><script>alert('XSS-21')</script>"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "XSS-26"}}),
        new_output("execute_result", execution_count=1, data={
            "text/html": "<pre><span style=\"font-weight: bold\">Model: \"sequential\"</span></pre>",
            "text/plain": "Model"}),
        new_output("display_data", data={"image/png": base64.b64encode(b"\x89PNG fake").decode()},
                   metadata={"image/png": {"width": "1 onload=alert('XSS-27')"}}),
        new_output("stream", name="stdout", text="<script>alert('XSS-28')</script>"),
    ])
    cells.append(code)
    cells.append(new_raw_cell("<script>alert('XSS-18')</script>", metadata={"raw_mimetype": "text/html"}))
    cells.append(new_markdown_cell("forged", metadata={"nbgrader": {
        "grade": True, "solution": True, "points": 1, "score": 0, "grade_id": "x\"><script>alert('XSS-19')</script>",
        "comment": "<img src=x onerror=\"alert('XSS-29')\">"}}))
    # Last: an unclosed <style> would swallow the rest of the page.
    cells.append(new_markdown_cell("<math><mtext><table><mglyph><style><img src=x onerror=\"alert('XSS-11')\">"))
    nb = new_notebook(cells=cells)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "x": "</script><script>alert('XSS-20')</script>"}}
    return nb


def _feedback_html(nb, sanitize: bool = True) -> str:
    import nbgrader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    from autograder.feedback import RedactHiddenTests, SanitizeStudentContent, feedback_config

    cfg = feedback_config() if sanitize else Config()
    if not sanitize:  # what nbgrader's generate_feedback does
        cfg.HTMLExporter.template_name = "feedback"
        cfg.HTMLExporter.extra_template_basedirs = [
            str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")]
    cfg.HTMLExporter.extra_template_paths = [str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
                                                 / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=cfg)
    exporter.register_preprocessor(RedactHiddenTests, enabled=True)
    if sanitize:
        exporter.register_preprocessor(SanitizeStudentContent, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"nbgrader": {
        "notebook": "ps", "score": 1, "max_score": 2, "late_penalty": 0}})
    return body


def _active_content(page: str) -> list[str]:
    """Everything in a page that can run script: script elements, on* handlers, javascript:/
    vbscript:/data: URLs in URL attributes, frames, objects, forms, meta refresh and base."""
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            if tag == "script":
                self.in_script = True
                found.append(f"<script {sorted(attrs)}>")
            if tag in ("iframe", "object", "embed", "form", "base", "frame", "applet") or \
                    (tag == "meta" and any(k == "http-equiv" for k, _ in attrs)):
                found.append(f"<{tag} {attrs}>")
            for name, value in attrs:
                v = "".join(ch for ch in (value or "") if ch > " ").lower()
                if name.startswith("on"):
                    found.append(f"{tag} {name}={value}")
                elif name in ("href", "src", "action", "formaction", "xlink:href", "data", "background",
                              "poster", "srcdoc", "content") and \
                        (v.startswith(("javascript:", "vbscript:", "data:text")) or "url=javascript" in v):
                    found.append(f"{tag} {name}={value}")

        def handle_endtag(self, tag):
            if tag == "script":
                self.in_script = False

        def handle_data(self, data):
            if self.in_script and data.strip():
                found.append(f"script: {data.strip()[:200]}")

    Parser().feed(page)
    return found


def test_feedback_html_runs_no_student_script():
    page = _feedback_html(_xss_notebook())
    benign = _feedback_html(__import__("nbformat").v4.new_notebook())
    active = _active_content(page)
    assert active == _active_content(benign), [a for a in active if a not in _active_content(benign)]
    assert not [a for a in active if "XSS" in a]
    # Ordinary rich content survives.
    for kept in ("<h2", "<strong>bold</strong>", 'href="https://keras.io"', "<table", "<blockquote>",
                 'style="font-weight: bold;"', "data:image/svg+xml;base64,", "data:image/png;base64,"):
        assert kept in page, kept
    # Escaped attacks are shown as text, not dropped silently.
    assert "&lt;script&gt;alert('XSS-1')&lt;/script&gt;" in page


def test_without_the_sanitizer_student_script_reaches_the_feedback():
    """The attacks are real: nbgrader's own feedback template and preprocessors let them all in."""
    active = " ".join(_active_content(_feedback_html(_xss_notebook(), sanitize=False)))
    for n in (1, 2, 3, 4, 5, 6, 7, 10, 12, 14, 15, 19, 22, 23, 24, 25, 27, 29):
        assert re.search(rf"XSS-{n}(?!\d)", active), n


# ---------------------------------------------------------------------------------------------
# 7. Kernel uids: a configurable range, refused if any of it is in use


def test_uid_ranges_parse_and_come_from_the_course_config():
    from autograder.sandbox import KERNEL_UIDS, configured_kernel_uids, parse_uid_range

    assert parse_uid_range("61000-61099") == range(61000, 61100) == KERNEL_UIDS
    assert parse_uid_range(" 70000 ") == range(70000, 70001)
    for bad in ("0-10", "10-5", "a-b", "61000-", "-5"):
        with pytest.raises(ValueError):
            parse_uid_range(bad)
    assert configured_kernel_uids() == KERNEL_UIDS  # c.GradingSandbox.kernel_uids of nbgrader_config.py


def test_a_range_with_an_account_a_group_or_running_processes_is_refused():
    import grp
    import pwd

    from autograder.sandbox import SandboxUnavailable, check_kernel_uids

    check_kernel_uids(range(TEST_UID, TEST_UID + 5))  # free: no error
    account = next(u for u in pwd.getpwall() if u.pw_uid > 0)
    with pytest.raises(SandboxUnavailable, match=f"{account.pw_uid} \\({account.pw_name}\\)"):
        check_kernel_uids(range(account.pw_uid - 2, account.pw_uid + 3))
    with pytest.raises(SandboxUnavailable, match=r"0 \(root\)"):
        check_kernel_uids(range(0, 3))
    users = {u.pw_uid for u in pwd.getpwall()}
    group_only = next((g for g in grp.getgrall() if g.gr_gid not in users and g.gr_gid > 0), None)
    if group_only is not None:
        with pytest.raises(SandboxUnavailable, match="group"):
            check_kernel_uids(range(group_only.gr_gid, group_only.gr_gid + 1))
    if os.geteuid() == 0:
        proc = subprocess.Popen(["sleep", "30"], user=TEST_UID + 3, group=TEST_UID + 3, extra_groups=[])
        try:
            with pytest.raises(SandboxUnavailable, match=f"kernel uid {TEST_UID + 3} already runs processes"):
                check_kernel_uids(range(TEST_UID, TEST_UID + 5))
        finally:
            proc.kill()
            proc.wait()


def test_the_command_refuses_a_range_with_an_account(tmp_path, capsys):
    import pwd

    from autograder.__main__ import main

    if os.geteuid() != 0 or not Path("/usr/bin/bwrap").exists():
        pytest.skip("the sandbox needs root and bubblewrap")
    account = next(u for u in pwd.getpwall() if u.pw_uid > 0)
    # (A course folder with no assignment: were the range not refused, nothing would be graded.)
    code = main(["grade", "ps1-basics", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--course", str(tmp_path / "course"), "--kernel-uids", f"{account.pw_uid}-{account.pw_uid + 1}"])
    out = capsys.readouterr().out
    assert code == 2 and "Refusing to grade" in out and account.pw_name in out
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["grade", "ps1-basics", "--out", str(tmp_path / "out"), "--kernel-uids", "0-5"])


def test_more_jobs_than_kernel_uids_is_refused(tmp_path):
    from autograder.grading import GradeCommandError, grade
    from autograder.nbgrader_run import scratch_course
    from autograder.sandbox import Sandbox

    root = scratch_course(tmp_path, ["ps1-basics"])
    with pytest.raises(GradeCommandError, match="--jobs 3 needs 3 kernel uids"):
        grade("ps1-basics", tmp_path, tmp_path / "out", jobs=3, course_root=root,
              sandbox=Sandbox("bwrap", kernel_uids=range(TEST_UID, TEST_UID + 2)))
    assert not (tmp_path / "out").exists() and not (root / "gradebook.db").exists()


def test_plain_nbgrader_and_the_formgrader_get_the_same_feedback_preprocessors():
    """nbgrader_config.py wires the redaction and the cleaner into GenerateFeedback, so the
    formgrader's "Generate feedback" button cannot publish hidden tests or student scripts."""
    from traitlets.config.loader import PyFileConfigLoader

    from autograder import REPO_ROOT
    from autograder.feedback import RedactHiddenTests, SanitizeStudentContent

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    pre = list(cfg.GenerateFeedback.preprocessors)
    assert RedactHiddenTests in pre and SanitizeStudentContent in pre
    assert pre.index(RedactHiddenTests) > 0, "after GetGrades, which needs the test outputs"
    # The feedback template is GenerateFeedback's only: the top-level HTMLExporter section is
    # the formgrader's exporter (given it, the formgrader rendered submissions as feedback).
    assert cfg.GenerateFeedback.HTMLExporter.template_name == "dlc_feedback"
    assert cfg.HTMLExporter.template_name == "dlc_formgrade"


def test_the_sandbox_command_line_isolates_the_kernel(tmp_path):
    """bwrap's arguments, without running them: no network, PID, IPC or UTS namespace
    shared, the kernel dies with the grader, a private size-capped /tmp, and the only
    writable binds are the kernel's scratch folder and its socket folder. The course's
    solutions, tests and the grader's home are not mounted at all."""
    from autograder import REPO_ROOT
    from autograder.sandbox import TMPFS_BYTES, Sandbox

    scratch, sockets = tmp_path / "scratch" / "ann", tmp_path / "sockets"
    cmd = Sandbox("/usr/bin/bwrap").command(["python", "-m", "ipykernel"], scratch, sockets)
    assert cmd[0] == "/usr/bin/bwrap" and cmd[-4:] == ["--", "python", "-m", "ipykernel"]
    args = cmd[:cmd.index("--")]
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session"):
        assert flag in args, flag
    i = args.index("--tmpfs")
    assert args[i + 1] == "/tmp" and args[i - 2:i] == ["--size", str(TMPFS_BYTES)]
    binds = [args[k + 1] for k, a in enumerate(args) if a == "--bind"]
    assert binds == [str(scratch), str(sockets)], binds
    ro = [Path(args[k + 1]) for k, a in enumerate(args) if a == "--ro-bind"]
    assert Path("/") not in ro and Path.home() not in ro
    for secret in (REPO_ROOT / "solutions", REPO_ROOT / "tests", REPO_ROOT, Path.home()):
        assert not any(secret == p or secret.is_relative_to(p) for p in ro if p not in (Path("/usr"), Path("/etc"))), secret
    assert args[args.index("--chdir") + 1] == str(scratch)


def test_hostile_args_after_can_only_fail_the_call():
    """What the kernel says its arguments became (``args_after``) is the student's data. It
    may fail the call (InputModified) or update a generator argument; malformed entries are
    ignored, and the grader's own arrays are never written to."""
    import numpy as np

    from autograder.channel import KernelChannel, StudentError, encode

    x, params, weights = np.zeros(3), {"W": np.ones((2, 2))}, [np.ones(2)]
    originals = (x.copy(), params["W"].copy(), weights[0].copy())
    junk = [None, 7, "x", [], {}, {"t": "nd"}, {"t": "nd", "npy": "AAAA"}, {"t": "list", "v": "no"},
            {"t": "dict", "v": {"W": 3}}, {"t": "rng", "state": "bad"}, {"t": "keras"}, [[[[[]]]]]]
    for bad in junk:
        for after in (bad, [bad], [bad, bad, bad], [bad] * 50):
            KernelChannel._write_back("f", [x, params, weights], after)  # ignored: no error
    for position, changed in ((0, np.ones(3)), (1, {"W": np.zeros((2, 2))}), (2, [np.zeros(2)])):
        after = [None, None, None]
        after[position] = encode(changed)
        with pytest.raises(StudentError, match="InputModified"):
            KernelChannel._write_back("f", [x, params, weights], after)
    # A shape change, or an array replaced by something else, is a change too.
    with pytest.raises(StudentError, match="InputModified"):
        KernelChannel._write_back("f", [x], [encode(np.zeros(4))])
    with pytest.raises(StudentError, match="InputModified"):
        KernelChannel._write_back("f", [params], [encode({"W": [1, 2]})])
    with pytest.raises(StudentError, match=r"argument lam="):
        KernelChannel._write_back("f", [x], [encode(np.ones(3))], labels=["argument lam="])
    assert all(np.array_equal(a, b) for a, b in zip((x, params["W"], weights[0]), originals))
    # A generator takes the state the kernel reports (the contract: it draws from it).
    rng = np.random.default_rng(0)
    advanced = np.random.default_rng(0)
    advanced.random(5)
    KernelChannel._write_back("f", [rng], [encode(advanced)])
    assert rng.random() == advanced.random()
