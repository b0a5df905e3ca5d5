"""The feedback page and the formgrader in a real browser, offline (issue #15).

An outside review found that both pages rendered no math offline (MathJax from a CDN, so the
derivation a written question asks for showed as raw ``$…$``) and asked for a check of what a
student sees: math typeset, figures loaded, the manual-grading wording, no hidden tests.

A tiny course is made with nbgrader's own commands, unsandboxed (the fixture is trusted and
pure Python, no TensorFlow): a question with math, an autograded function whose test cell has
hidden tests, a written answer (a derivation with ``$…$`` and ``$$…$$``, not graded by hand
yet) and a matplotlib figure. ``nbgrader generate_assignment`` releases it, a student's copy
is filled in, ``nbgrader autograde`` grades it, and the page is written by the grading
command's own function (:func:`autograder.feedback.generate_one`).

Chromium opens the page from the disk. Every request that is not a file (or, for the
formgrader, the local Jupyter server) is aborted and fails the test, and the browser's proxy
is a closed port besides. The formgrader test starts a Jupyter server with nbgrader's
formgrader under a JupyterHub-like base URL (/user/alice/) and opens the submission there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from playwright.sync_api import sync_playwright

from autograder import REPO_ROOT
from lab_session import free_port

CHROMIUM = "/usr/bin/chromium"
A, STUDENT = "ps0", "ann"
HIDDEN = 'assert double(21) == 42, "dlc hidden check of double"'
DERIVATION = ("With $p_i = e^{z_i} / \\sum_j e^{z_j}$ and $L = -\\sum_j y_j \\log p_j$,\n\n"
              "$$\\frac{\\partial L}{\\partial z_i} = -\\sum_j \\frac{y_j}{p_j} \\frac{\\partial p_j}{\\partial z_i}"
              " = p_i - y_i.$$\n\n(dlc-derivation)")
BIN = str(Path(sys.executable).parent)


def _meta(cell, grade_id, *, grade=False, solution=False, points=0):
    cell.metadata["nbgrader"] = {"grade": grade, "solution": solution, "locked": not solution,
                                 "grade_id": grade_id, "points": points, "schema_version": 3}
    return cell


def _source_notebook():
    figure = ("import matplotlib.pyplot as plt\n"
              "fig, ax = plt.subplots(figsize=(3, 2))\n"
              "ax.plot([0, 1, 2], [0, 1, 4])\n"
              "ax.set(title='dlc figure', xlabel='x', ylabel='x squared')\n"
              "plt.show()\n")
    nb = new_notebook(cells=[
        new_markdown_cell("# Softmax\n\nShow that $\\frac{\\partial L}{\\partial z_i} = p_i - y_i$ for the "
                          "cross-entropy $$L = -\\sum_j y_j \\log p_j.$$\n\n(dlc-question)"),
        _meta(new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"),
              "double", solution=True),
        _meta(new_code_cell(f"assert double(1) == 2\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n"),
              "test_double", grade=True, points=2),
        _meta(new_markdown_cell("The derivative is p - y."), "derivation", grade=True, solution=True, points=3),
        new_code_cell(figure),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JUPYTER_CONFIG_DIR", "PYTHONPATH")}
    # nbgrader runs alembic by name; the kernels' matplotlib uses ipykernel's inline backend.
    env.update(PATH=os.pathsep.join([BIN, env.get("PATH", "")]), HOME=str(home),
               JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               PYTHONPATH=str(REPO_ROOT))
    return env


def _nbgrader(root: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, env=_env(root.parent),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"nbgrader {args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    """The graded course: {"root", "url", "page"} (the feedback page's path)."""
    root = tmp_path_factory.mktemp("feedback-page") / "course"
    (root / "solutions" / A).mkdir(parents=True)
    nbformat.write(_source_notebook(), str(root / "solutions" / A / f"{A}.ipynb"))
    url = f"sqlite:///{root / 'gradebook.db'}"
    # The course's own configuration (feedback and formgrader settings), pointed at this folder.
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(REPO_ROOT / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {url!r}\n")
    _nbgrader(root, "generate_assignment", A)
    student = nbformat.read(str(root / "exercises" / A / f"{A}.ipynb"), as_version=4)
    for cell in student.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "double":
            cell.source = "def double(x):\n    return 2 * x\n"
        elif grade_id == "derivation":
            cell.source = DERIVATION
    (root / "submitted" / STUDENT / A).mkdir(parents=True)
    nbformat.write(student, str(root / "submitted" / STUDENT / A / f"{A}.ipynb"))
    _nbgrader(root, "autograde", A)

    from autograder.feedback import generate_one

    generate_one({"course_root": str(root), "db_url": url, "assignment": A}, STUDENT)
    page = root / "feedback" / STUDENT / A / f"{A}.html"
    assert page.exists()
    return {"root": root, "url": url, "page": page}


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make sysdeps` installs Debian's chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--disable-quic"],
                                     proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1"})
        try:
            yield browser
        finally:
            browser.close()


class Offline:
    """A browser context that lets through only file: URLs and ``allowed_host``; it records
    (and aborts) every other request, and records page errors and failed responses."""

    def __init__(self, browser, allowed_host: str | None = None):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.allowed_host, self.blocked, self.errors, self.bad = allowed_host, [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("response", lambda r: self.bad.append(f"{r.status} {r.url}")
                     if r.status >= 400 and not urlparse(r.url).path.endswith("favicon.ico") else None)

    def _route(self, route):
        url = urlparse(route.request.url)
        if url.scheme in ("file", "data", "blob") or (self.allowed_host and url.netloc == self.allowed_host):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


# Runs in the feedback page once it has loaded: what a student sees.
FEEDBACK_JS = r"""
() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const maths = Array.from(document.querySelectorAll('math'));
  const fractions = Array.from(document.querySelectorAll('mfrac')).map((f) => {
    const [num, den] = Array.from(f.children).map((c) => c.getBoundingClientRect());
    return num.bottom <= den.top + 1;  // the numerator is laid out above the denominator
  });
  const cellText = (marker) => {
    const cell = Array.from(document.querySelectorAll('.text_cell_render'))
      .find((c) => c.innerText.includes(marker));
    return cell ? cell.innerText : null;
  };
  return {
    maths: maths.map((m) => ({display: m.getAttribute('display'), css: getComputedStyle(m).display,
                              box: box(m)})),
    fractions,
    question: cellText('dlc-question'),
    derivation: cellText('dlc-derivation'),
    images: Array.from(document.images).map((i) => ({src: i.src.slice(0, 22), alt: i.alt, complete: i.complete,
                                                    width: i.naturalWidth, shown: box(i)})),
    text: document.body.innerText,
  };
}
"""


def test_the_feedback_page_shows_math_figures_and_what_waits_offline(course, chromium):
    browser = Offline(chromium)
    try:
        browser.page.goto(course["page"].as_uri(), wait_until="load")
        seen = browser.page.evaluate(FEEDBACK_JS)
    finally:
        browser.close()
    assert browser.blocked == [], "the page asked the network for something"
    assert browser.errors == [] and browser.bad == []

    # Math typeset: MathML elements that Chromium lays out as math (MathML Core), with a size,
    # fractions stacked, and no TeX delimiter left in the question or the derivation.
    maths = seen["maths"]
    assert len(maths) == 5, maths  # question: 1 inline + 1 display; derivation: 2 inline + 1 display
    assert {m["display"] for m in maths} == {"inline", "block"}
    for m in maths:
        assert m["css"] in ("math", "inline math", "block math"), m
        assert m["box"][0] > 0 and m["box"][1] > 0, m
    assert len(seen["fractions"]) == 4 and all(seen["fractions"]), seen["fractions"]
    for cell in ("question", "derivation"):
        assert seen[cell] is not None, f"no {cell} cell"
        assert "$" not in seen[cell] and "\\frac" not in seen[cell], seen[cell]

    # The figure: matplotlib's PNG, decoded and drawn.
    figures = [i for i in seen["images"] if i["src"].startswith("data:image/png")]
    assert len(figures) == 1 and figures[0]["alt"].startswith("<Figure size"), seen["images"]
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0 and image["shown"][0] > 0, image

    text = seen["text"]
    # No hidden test: neither its line nor its message.
    assert "dlc hidden check" not in text and "double(21)" not in text
    # The written answer waits for the formgrader, and the total leaves its 3 points out.
    assert "Written response (awaiting manual grading, 3 points)" in text
    assert f"{A} (Score: 2.0 / 2.0; 3 points awaiting manual grading)" in text
    assert "Score: 0.0 / 3.0" not in text
    # The autograded test passed; its cell says so in one line, in place of the hidden part.
    assert "test_double: passed, 2 of 2 points" in text and "# (hidden tests: not shown)" in text


@pytest.fixture(scope="module")
def jupyter_server(course):
    """A Jupyter server with nbgrader's formgrader on the course, at /user/alice/ (as a
    JupyterHub single-user server), no authentication; stopped at the end, whatever happens."""
    home = course["root"].parent
    (home / ".jupyter").mkdir(exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}/user/alice/"
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--port_retries=0",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.base_url=/user/alice/", f"--ServerApp.root_dir={course['root']}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
         "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True"],
        cwd=course["root"], env=_env(home), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "api/status", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Jupyter server did not start:\n{(home / 'server.log').read_text()[-4000:]}")
                time.sleep(0.5)
        yield base, f"127.0.0.1:{port}", home / "server.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


FORMGRADE_JS = r"""
() => {
  const cell = Array.from(document.querySelectorAll('.text_cell_render'))
    .find((c) => c.innerText.includes('dlc-derivation'));
  const typeset = cell ? Array.from(cell.querySelectorAll('.MathJax, .MathJax_Display')) : [];
  return {
    derivation: cell ? cell.innerText : null,
    typeset: typeset.map((el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; }),
    tex: cell ? cell.querySelectorAll('script[type^="math/tex"]').length : 0,
    mathjax: Array.from(document.scripts).map((s) => s.src).filter((s) => s.includes('MathJax')),
    scores: document.querySelectorAll('input.score').length,
  };
}
"""


def test_the_formgrader_typesets_math_with_its_own_mathjax_offline(course, jupyter_server, chromium):
    from nbgrader.api import Gradebook

    from autograder.grading import course_id

    base, host, server_log = jupyter_server
    with Gradebook(course["url"], course_id()) as gb:
        submission = gb.find_submission_notebook(A, A, STUDENT).id
    browser = Offline(chromium, allowed_host=host)
    try:
        response = browser.page.goto(f"{base}formgrader/submissions/{submission}/", wait_until="load")
        assert response.ok, f"{response.status} {response.url}"
        # formgrade.js sets MathJax.loaded when MathJax has typeset the page, and its own
        # `loaded` after it has bound its keyboard shortcuts (which MathJax's absence prevented).
        browser.page.wait_for_function("() => window.MathJax && MathJax.loaded === true && "
                                       "window.formgrader && formgrader.loaded === true", timeout=60_000)
        seen = browser.page.evaluate(FORMGRADE_JS)
    except Exception:
        print(server_log.read_text()[-4000:])
        raise
    finally:
        browser.close()
    assert browser.blocked == [], "the formgrader asked the network for something"
    assert browser.errors == [] and browser.bad == []
    assert seen["mathjax"] == [f"{base}static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"]
    assert seen["scores"] >= 2  # the formgrader's own page: a score box per graded cell
    assert seen["tex"] == 3, seen  # MathJax found the derivation's three formulas...
    assert len(seen["typeset"]) >= 3 and all(w > 0 and h > 0 for w, h in seen["typeset"]), seen
    assert "$" not in seen["derivation"] and "\\frac" not in seen["derivation"], seen["derivation"]
