"""Feedback pages that do not present a missing grade as a 0 (issue #15), without kernels.

A tiny course made with nbgrader's own API: a gradebook and one student's autograded notebook
with an autograded test cell and three written answers (one waiting for the formgrader, one
graded by hand, one left as released), rendered by the grading command's own feedback function
(:func:`autograder.feedback.generate_one`, what each feedback worker calls) and by plain
``nbgrader generate_feedback`` with the course's config.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.api import Gradebook

from autograder import REPO_ROOT
from autograder.feedback import page_text
from autograder.grading import course_id

A, STUDENT = "ps0", "ann"
POINTS = {"test_f": 2, "test_g": 1, "written_pending": 3, "written_graded": 2, "written_blank": 2}


def _nbgrader(cell, grade_id, solution):
    cell.metadata["nbgrader"] = {"grade": True, "solution": solution, "locked": not solution,
                                 "grade_id": grade_id, "points": POINTS[grade_id], "schema_version": 3}
    return cell


def _autograded_notebook():
    passed = _nbgrader(new_code_cell("assert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2\n"
                                     "### END HIDDEN TESTS\n"), "test_f", False)
    unanswered = _nbgrader(new_code_cell("assert g(1) == 1\n### BEGIN HIDDEN TESTS\nassert g(2) == 2\n"
                                         "### END HIDDEN TESTS\n"), "test_g", False)
    # The release's `raise NotImplementedError()`, run by nbgrader in the student's kernel.
    unanswered.outputs = [new_output("error", ename="NotImplementedError", evalue="",
                                     traceback=["Cell In[3], line 1", "NotImplementedError: "])]
    # Math: in the question (a plain markdown cell), in a written answer and in its grader's
    # comment (COMMENT), never in code (a code span, a fenced block, a code cell's source and output).
    question = new_markdown_cell("Why is $\\mathrm{softmax}(z + c) = \\mathrm{softmax}(z)$ for every "
                                 "$c \\in \\mathbb{R}$? (dlc-question) Not `$x$` in code:\n\n```\n$$y$$\n```\n")
    prices = new_code_cell('print("$5 or $6")', outputs=[new_output("stream", name="stdout", text="$5 or $6\n")])
    cells = [new_code_cell("def f(x):\n    return x\n"), passed,
             new_code_cell("def g(x):\n    raise NotImplementedError()\n"), unanswered, question, prices,
             _nbgrader(new_markdown_cell("Because exp overflows (dlc-pending-answer)."), "written_pending", True),
             _nbgrader(new_markdown_cell("The shift cancels in the ratio.\n\n$$\\frac{e^{z_i + c}}{\\sum_j e^{z_j + c}}"
                                         " = \\frac{e^{z_i}}{\\sum_j e^{z_j}}$$\n\n(dlc-graded-answer)"),
                       "written_graded", True),
             _nbgrader(new_markdown_cell("YOUR ANSWER HERE"), "written_blank", True)]
    return new_notebook(cells=cells)


COMMENT = "Right: $e^c$ cancels (dlc-comment)."


@pytest.fixture(scope="module")
def course_template(tmp_path_factory):
    # nbgrader runs its environment's `alembic` by name when it creates a gradebook.
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    root = tmp_path_factory.mktemp("feedback") / "course"
    graded = root / "autograded" / STUDENT / A / f"{A}.ipynb"
    graded.parent.mkdir(parents=True)
    nbformat.write(_autograded_notebook(), str(graded))
    try:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id()) as gb:
            gb.add_assignment(A)
            gb.add_notebook(A, A)
            for gid, points in POINTS.items():
                gb.add_grade_cell(gid, A, A, max_score=points,
                                  cell_type="code" if gid.startswith("test_") else "markdown")
                if gid.startswith("written_"):
                    gb.add_solution_cell(gid, A, A)
            gb.add_student(STUDENT)
            gb.add_submission(A, STUDENT)
            # As nbgrader's SaveAutoGrades leaves them (needs_manual_grade = auto_score is None),
            # then the formgrader for written_graded.
            for gid, auto, manual, pending in [("test_f", 2, None, False), ("test_g", 0, None, False),
                                               ("written_pending", None, None, True),
                                               ("written_graded", None, 1.5, False),
                                               ("written_blank", 0, None, False)]:
                g = gb.find_grade(gid, A, A, STUDENT)
                g.auto_score, g.manual_score, g.needs_manual_grade = auto, manual, pending
            gb.find_comment("written_graded", A, A, STUDENT).manual_comment = COMMENT
            gb.db.commit()
    finally:
        os.environ["PATH"] = path
    return root


@pytest.fixture
def course(course_template, tmp_path):
    """A fresh copy of the course (creating a gradebook takes seconds: alembic)."""
    root = tmp_path / "course"
    shutil.copytree(course_template, root)
    return {"root": root, "url": f"sqlite:///{root / 'gradebook.db'}"}


def _feedback(course) -> str:
    from autograder.feedback import generate_one

    generate_one({"course_root": str(course["root"]), "db_url": course["url"], "assignment": A}, STUDENT)
    return (course["root"] / "feedback" / STUDENT / A / f"{A}.html").read_text()


def _section(text: str, start: str, end: str) -> str:
    """The text of the page from `start` to the next `end` (a cell's heading, say)."""
    i = text.index(start)
    return text[i:text.index(end, i + len(start))]


def test_a_written_answer_waiting_for_the_formgrader_is_not_a_zero(course):
    text = page_text(_feedback(course))
    toc = _section(text, f"{A} (Score:", "Because exp overflows")
    # Table of contents, in notebook order: test_f, test_g, then the three written answers.
    assert "Written response (awaiting manual grading, 3 points)" in toc
    assert "Score: 0.0 / 3.0" not in text
    # The cell's own heading.
    assert "awaiting manual grading, 3 points (Top)" in _section(text, "Student's answer", "dlc-pending-answer")


def test_the_total_leaves_out_the_points_that_wait(course):
    text = page_text(_feedback(course))
    # 2 + 0 + 1.5 + 0 of 2 + 1 + 2 + 2: written_pending's 3 points are in neither.
    assert f"{A} (Score: 3.5 / 7.0; 3 points awaiting manual grading)" in text
    assert "/ 10.0" not in text


def test_a_graded_written_answer_shows_its_score_and_a_blank_one_says_not_answered(course):
    text = page_text(_feedback(course))
    assert "Written response (Score: 1.5 / 2.0)" in text
    assert "Written response (Score: 0.0 / 2.0, not answered)" in text
    blank = _section(text, "The shift cancels in the ratio.", "YOUR ANSWER HERE")
    assert "Score: 0.0 / 2.0, not answered (Top)" in blank
    assert "not answered" not in _section(text, "Written response (Score: 1.5", "\n")


@pytest.mark.parametrize("needs_manual_grade", [False, True], ids=["formgrader", "regraded"])
def test_a_manual_score_replaces_awaiting(course, needs_manual_grade):
    # The formgrader clears needs_manual_grade when it saves a score; nbgrader's SaveAutoGrades
    # sets it again on a regrade (--force) because a manual score exists.
    with Gradebook(course["url"], course_id()) as gb:
        for gid, score in [("written_pending", 2.5), ("written_blank", 1.0)]:
            grade = gb.find_grade(gid, A, A, STUDENT)
            grade.manual_score, grade.needs_manual_grade = score, needs_manual_grade
        gb.db.commit()
    text = page_text(_feedback(course))
    assert "awaiting" not in text.lower()
    assert "Written response (Score: 2.5 / 3.0)" in text
    # A person's score for a blank answer (the answer was elsewhere, say) is a grade.
    assert "Written response (Score: 1.0 / 2.0)" in text and "not answered" not in text
    assert f"{A} (Score: 7.0 / 10.0)" in text


def test_the_preprocessor_marks_only_what_the_gradebook_says(course):
    """FeedbackGrades' own output: the flags on each cell, the totals; flags a notebook
    brings itself (a student's edited metadata) are dropped."""
    from autograder.feedback import FeedbackGrades

    nb = _autograded_notebook()
    forged = new_markdown_cell("I wrote nothing", metadata={"nbgrader": {
        "grade": False, "solution": False, "awaiting_manual_grade": True, "not_answered": True}})
    nb.cells.append(forged)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "student": STUDENT, "db_url": course["url"]}}
    nb, resources = FeedbackGrades().preprocess(nb, resources)
    flags = {c.metadata.nbgrader.get("grade_id", "forged"): (c.metadata.nbgrader.get("awaiting_manual_grade"),
                                                              c.metadata.nbgrader.get("not_answered"))
             for c in nb.cells if "nbgrader" in c.metadata}
    assert flags == {"test_f": (False, False), "test_g": (False, False), "written_pending": (True, False),
                     "written_graded": (False, False), "written_blank": (False, True), "forged": (None, None)}
    assert (resources["nbgrader"]["score"], resources["nbgrader"]["max_score"],
            resources["nbgrader"]["awaiting_points"]) == (3.5, 7.0, 3.0)


def test_an_unanswered_function_reads_not_answered_in_its_test_cell(course):
    text = page_text(_feedback(course))
    assert "test_g: failed, 0 of 1 points" in text
    assert "Not answered: g still raises NotImplementedError (the release's placeholder)." in text
    assert "A visible test failed" not in text


def test_plain_nbgrader_generate_feedback_with_the_course_config_says_the_same(course):
    """nbgrader_config.py wires the same preprocessors and template into GenerateFeedback: the
    formgrader's "Generate feedback" button and `nbgrader generate_feedback` agree."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", A, "--force",
                           f"--CourseDirectory.root={course['root']}", f"--CourseDirectory.db_url={course['url']}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = page_text((course["root"] / "feedback" / STUDENT / A / f"{A}.html").read_text())
    assert f"{A} (Score: 3.5 / 7.0; 3 points awaiting manual grading)" in text
    assert "Written response (Score: 0.0 / 2.0, not answered)" in text


# ---------------------------------------------------------------------------------------------
# The test cell's line for a function that still raises the release's NotImplementedError


def test_not_answered_line_names_the_function_that_still_raises():
    from autograder.feedback import not_answered_line

    placeholder = "Not answered: softmax still raises NotImplementedError (the release's placeholder)."
    # Run in the student's kernel (nbgrader alone): the bare exception; the name is the test's.
    assert not_answered_line({"ename": "NotImplementedError", "evalue": ""}, "test_softmax", True) == placeholder
    assert not_answered_line({"ename": "NotImplementedError", "evalue": ""}, "test_softmax", False) == placeholder
    # Re-raised by the judge (autograder.channel.student_error): the name is the function's own.
    from autograder.channel import student_error

    judged = student_error("softmax", "NotImplementedError", "")
    out = {"ename": type(judged).__name__, "evalue": str(judged)}
    assert out["ename"] == "StudentNotImplementedError"
    assert not_answered_line(out, "test_two_layer_net", False) == placeholder
    assert not_answered_line({"ename": "StudentNotImplementedError",
                              "evalue": "softmax(...) raised NotImplementedError: batches"}, "test_softmax",
                             True) == "Not answered: softmax raises NotImplementedError: batches"
    # Anything else is a failure, not a missing answer; a hidden line's own message is never shown.
    assert not_answered_line({"ename": "AssertionError", "evalue": ""}, "test_softmax", True) is None
    assert not_answered_line({"ename": "NotImplementedError", "evalue": "secret"}, "test_softmax", False) is None


def test_redaction_says_not_answered_instead_of_a_visible_failure():
    from autograder.feedback import RedactHiddenTests

    test = new_code_cell("p = softmax([1.0])\nassert p == 1\n### BEGIN HIDDEN TESTS\nassert softmax([2.0]) == 1\n"
                         "### END HIDDEN TESTS\n",
                         metadata={"nbgrader": {"grade": True, "grade_id": "test_softmax", "points": 2, "score": 0}})
    test.outputs = [new_output("error", ename="NotImplementedError", evalue="",
                               traceback=["Cell In[7], line 1", "Cell In[5], line 9", "NotImplementedError: "])]
    nb, _ = RedactHiddenTests().preprocess(new_notebook(cells=[test]), {})
    assert nb.cells[0].outputs[0]["text"] == (
        "test_softmax: failed, 0 of 2 points\n"
        "Not answered: softmax still raises NotImplementedError (the release's placeholder).\n")


def test_the_feedback_preprocessors_take_the_config_nbgrader_gives_them(caplog):
    """nbgrader's feedback command sets display_data_priority for each preprocessor: one that
    lacks the trait logs 'Config option ... not recognized' for every student (issue #15)."""
    import logging

    from traitlets.config import Config

    from autograder.feedback import RedactHiddenTests, SanitizeStudentContent

    for cls in (RedactHiddenTests, SanitizeStudentContent):
        cfg = Config()
        cfg[cls.__name__].display_data_priority = ["text/html", "text/plain"]
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            cls(config=cfg)
        assert not [r for r in caplog.records if "not recognized" in r.getMessage()], cls.__name__


# ---------------------------------------------------------------------------------------------
# Math without MathJax (issue #15): MathML written into the page, nothing loaded when it is read


def _mathml_in(page: str, start: str, end: str) -> list[str]:
    return re.findall(r'<math display="(inline|block)">', _section(page, start, end))


def test_math_in_the_question_the_answer_and_the_comment_becomes_mathml(course):
    page = _feedback(course)
    # The question (a plain markdown cell): two inline formulas, the code span left as it is.
    question = _section(page, "Why is", "dlc-question")
    assert _mathml_in(page, "Why is", "dlc-question") == ["inline", "inline"]
    assert "<mi>ℝ</mi>" in question and "$" not in page_text(question)
    assert "<code>$x$</code>" in page and "<pre><code>$$y$$\n</code></pre>" in page
    # A written answer's display math, and the grader's comment under it.
    assert _mathml_in(page, "The shift cancels", "dlc-graded-answer") == ["block"]
    assert "<mfrac>" in _section(page, "The shift cancels", "dlc-graded-answer")
    assert _mathml_in(page, "Right:", "dlc-comment") == ["inline"]
    assert "$" not in page_text(_section(page, "The shift cancels", "dlc-comment"))


def test_math_in_code_cells_is_left_alone(course):
    page = _feedback(course)
    code = _section(page, 'print', "</div>\n</div>\n</div>")
    assert "<math" not in code
    assert "$5 or $6" in page_text(page)  # the source and the printed line
    assert page_text(page).count("$5 or $6") == 2


def test_a_feedback_page_loads_no_script_and_nothing_from_the_network(course):
    """nbgrader's feedback header loads MathJax from cdnjs; the page must not depend on the
    network when it is read (and JupyterLab's viewer would not run it anyway)."""
    page = _feedback(course)
    assert not re.findall(r"<script\b", page, re.I), "no script at all"
    assert not re.findall(r"<(?:link|img|iframe)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//", page, re.I)
    assert "MathJax" not in page and "cdnjs" not in page


HOSTILE_TEX = [
    r"$\text{<script>alert('XSS-m1')</script>}$",
    r"$\href{javascript:alert('XSS-m2')}{x}$",
    r"$\style{background:url(javascript:alert('XSS-m3'))}{x}$",
    r"""$\color{red" onmouseover="alert('XSS-m4')}{x}$""",
    r"$\text{&lt;img src=x onerror=alert('XSS-m5')&gt;}$",
    r"$\mathrm{</math><img src=x onerror=alert('XSS-m6')>}$",
    r"$$\begin{matrix} \text{<iframe src=javascript:alert('XSS-m7')>} \end{matrix}$$",
]
HOSTILE_MATHML = [
    "<math><mi href=\"javascript:alert('XSS-m8')\" onclick=\"alert('XSS-m9')\">x</mi></math>",
    "<math><annotation-xml encoding=\"text/html\"><img src=x onerror=\"alert('XSS-m10')\"></annotation-xml></math>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"alert('XSS-m11')\">",
    # The renderer's placeholder names hold a random token; a guessed one is just text.
    "<dlc-math-0>x</dlc-math-0><dlc-math-0-0>y</dlc-math-0-0>",
]


def _elements(fragment: str) -> list[tuple[str, list]]:
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Parser().feed(fragment)
    return found


@pytest.mark.parametrize("source", HOSTILE_TEX + HOSTILE_MATHML)
def test_hostile_tex_and_a_students_own_mathml_are_cleaned(source):
    from autograder.feedback import SAFE_TAGS, markdown_to_html
    from autograder.mathml import MATHML_ATTRIBUTES, MATHML_TAGS

    out = markdown_to_html(source)
    for tag, attrs in _elements(out):
        assert tag in SAFE_TAGS | MATHML_TAGS, (tag, out)
        for name, value in attrs:
            assert not name.startswith("on") and name not in ("href", "src", "style"), (tag, name, out)
            if tag in MATHML_TAGS:
                assert name in MATHML_ATTRIBUTES, (tag, name, out)
    assert "XSS" not in " ".join(f"{n}={v}" for _, attrs in _elements(out) for n, v in attrs)
    if source in HOSTILE_MATHML:  # a student's raw MathML is shown as text, as any unknown tag
        assert "<math" not in out and "&lt;" in out
    else:  # TeX becomes MathML (or its source, as code); what it says is shown as text
        assert "<math" in out or '<code class="dlc-tex">' in out


def test_tex_text_is_shown_as_text():
    from autograder.feedback import markdown_to_html

    out = markdown_to_html(r"$\text{<b>a & b</b>}$")
    assert "<mtext>&lt;b&gt;a\xa0&amp;\xa0b&lt;/b&gt;</mtext>" in out  # latex2mathml's spaces: no-break


def test_tex_that_latex2mathml_cannot_read_is_shown_as_its_source():
    from autograder.feedback import markdown_to_html

    assert markdown_to_html(r"Broken: $\frac{$ end") == '<p>Broken: <code class="dlc-tex">$\\frac{$</code> end</p>\n'


def test_an_image_alt_and_a_heading_anchor_read_the_tex():
    from autograder.feedback import markdown_to_html

    out = markdown_to_html("## Softmax $\\sigma$\n\n![$x<y$](https://example.org/a.png)")
    assert 'id="Softmax-%5Csigma"' in out and 'alt="x&lt;y"' in out
    assert "dlc-math-" not in out


def test_a_display_math_output_becomes_mathml_and_other_latex_is_dropped():
    from autograder.feedback import SanitizeStudentContent

    formula = new_output("display_data", data={"text/latex": "$\\displaystyle \\frac{1}{2}$",
                                               "text/plain": "<IPython.core.display.Math object>"})
    table = new_output("display_data", data={"text/latex": "\\begin{tabular}{l}</div><script>x</script>\\end{tabular}",
                                             "text/plain": "table"})
    cell = new_code_cell("display(Math(...))", outputs=[formula, table])
    nb, _ = SanitizeStudentContent().preprocess(new_notebook(cells=[cell]), {})
    first, second = nb.cells[0].outputs
    assert first["data"]["text/html"].startswith('<math display="block">') and "<mfrac>" in first["data"]["text/html"]
    assert set(second["data"]) == {"text/plain"}


def test_the_formgrader_loads_mathjax_from_the_jupyter_server_under_any_base_url():
    """The course's config gives the formgrader's exporter (top-level HTMLExporter, no parent)
    the dlc_formgrade template: MathJax from jupyter-server-mathjax under the server's base URL
    (a JupyterHub user's /user/<name>/), no CDN; GenerateFeedback keeps the feedback template."""
    from pathlib import Path

    import jupyter_server_mathjax
    from nbconvert.exporters import HTMLExporter
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    exporter = HTMLExporter(config=cfg)
    nb = new_notebook(cells=[new_markdown_cell("$x^2$")])
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "s1", "index": 0, "total": 1,
                 "base_url": "/user/alice", "student": STUDENT, "last_name": None, "first_name": None,
                 "notebook_path": "x"}
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]*)\"", page)
    mathjax = [s for s in scripts if "MathJax" in s]
    assert mathjax == ["/user/alice/static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"]
    assert not [s for s in scripts if not s.startswith("/user/alice/")], scripts
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    assert (static / "MathJax.js").is_file() and (static / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert "formgrade.js" in page and "$x^2$" in page  # nbgrader's formgrade page; MathJax typesets


def test_a_figure_gets_its_text_as_alt_text_escaped():
    import base64

    import nbgrader
    from nbconvert import HTMLExporter

    from autograder.feedback import SanitizeStudentContent, feedback_config

    png = base64.b64encode(b"\x89PNG fake").decode()
    cell = new_code_cell("plt.show()", outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 300x200 with 1 Axes>"}),
        new_output("display_data", data={"image/png": png, "text/plain": "\" onerror=\"alert('XSS-alt')"}),
        new_output("display_data", data={"image/png": png}, metadata={"image/png": {"alt": "\" onload=\"x"}})])
    cfg = feedback_config()
    cfg.HTMLExporter.extra_template_paths = [str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
                                                 / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=cfg)
    exporter.register_preprocessor(SanitizeStudentContent, enabled=True)
    page, _ = exporter.from_notebook_node(new_notebook(cells=[cell]), resources={"nbgrader": {
        "notebook": A, "score": 0, "max_score": 0, "late_penalty": 0}})
    alts = [dict(attrs).get("alt") for tag, attrs in _elements(page) if tag == "img"]
    assert alts == ["<Figure size 300x200 with 1 Axes>", "\" onerror=\"alert('XSS-alt')", "figure"]
    assert not [a for tag, attrs in _elements(page) for a, _ in attrs if a.startswith("on")]


def test_the_formgrade_header_is_nbgraders_but_for_mathjax():
    """templates/dlc_formgrade copies the header block of nbgrader's formgrade template
    (nbgrader 0.9.6) with the local MathJax in place of `mathjax()`: an nbgrader whose header
    differs fails here, so the copy is redone rather than silently left behind."""
    from pathlib import Path

    import nbgrader

    def header(path: Path) -> list[str]:
        text = path.read_text()
        block = text[text.index("{%- block header -%}"):text.index("{%- endblock header -%}")]
        return [line.strip() for line in block.splitlines() if line.strip()]

    theirs = header(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
                    / "formgrade" / "index.html.j2")
    ours = header(REPO_ROOT / "autograder" / "templates" / "dlc_formgrade" / "dlc_formgrade.html.j2")
    assert "{{ mathjax() }}" in theirs
    missing = [line for line in theirs if line not in ours and line not in ("{{ mathjax() }}", "<!-- Loading mathjax macro -->")]
    assert missing == []


# --- a hostile student's review of the feedback page (issue #15, this session) ---------------

def _hrefs(fragment: str) -> list[str]:
    """Every href and src as a browser reads its scheme: entities decoded, controls dropped."""
    import html

    return [re.sub(r"[\x00-\x20\x7f]", "", html.unescape(v)).lower()
            for v in re.findall(r'(?:href|src)="([^"]*)"', fragment)]


@pytest.mark.parametrize("link", ["da&#9;ta:text/html,<script>alert(1)</script>", "data&#9;:text/html,x",
                                  "DaTa&#x0A;:text/html,x", "&#1;data:text/html,x", "java&#9;script:alert(1)",
                                  " javascript:alert(1)", "vbscript:x"])
def test_a_link_scheme_hidden_behind_control_characters_is_dropped(link):
    from autograder.feedback import clean_html, markdown_to_html

    for page in (clean_html(f'<a href="{link}">x</a>'), markdown_to_html(f'<a href="{link}">x</a>')):
        assert not [h for h in _hrefs(page) if h.startswith(("data:", "javascript:", "vbscript:"))], page
    assert _hrefs(clean_html('<a href="https://example.org/a">x</a>')) == ["https://example.org/a"]


def test_a_graders_comment_cannot_turn_a_files_link_into_javascript(course):
    with Gradebook(course["url"], course_id()) as gb:
        gb.find_comment("written_graded", A, A, STUDENT).manual_comment = (
            "See [notes](/files/files/javascript:alert(20)) and "
            '<a href="/files/files/data:text/html,<script>alert(21)</script>">here</a>')
        gb.db.commit()
    page = _feedback(course)
    assert not [h for h in _hrefs(page) if h.startswith(("data:", "javascript:"))], _hrefs(page)


def test_student_html_cannot_use_the_pages_positioning_classes():
    from autograder.feedback import clean_html

    for cls in ("modal", "navbar-fixed-top", "affix", "modal-backdrop", "highlight modal"):
        page = clean_html(f'<div class="{cls}" style="display:block">Score: 10.0 / 10.0</div>')
        assert "class=" not in page, page
    # what nbconvert's markdown and Pygments write is kept
    kept = clean_html('<div class="highlight hl-ipython3"><pre><span class="kn">import</span></pre></div>')
    assert 'class="highlight hl-ipython3"' in kept and 'class="kn"' in kept


@pytest.mark.parametrize("source", ["![x](attachment:nope.png)",
                                    "## " + "<b>" * 1200 + "x" + "</b>" * 1200])
def test_markdown_nbconvert_cannot_render_is_shown_as_text(source):
    from autograder.feedback import markdown_to_html

    page = markdown_to_html(source)
    assert "Shown as text (it could not be rendered" in page and "<b>" not in page


@pytest.mark.parametrize("source", ["\\\\( " * 50_000, "[a](" * 50_000, "<div>" * 50_000])
def test_markdown_and_html_over_the_size_cap_are_shown_as_text(source):
    """These take quadratic time in nbconvert's math regex, mistune and html5lib (50-60 s at
    200 kB, measured by the review); over the cap they are escaped, which is linear."""
    from autograder.feedback import MAX_RENDERED_CHARS, SanitizeStudentContent, markdown_to_html

    assert len(source) > MAX_RENDERED_CHARS
    assert markdown_to_html(source).startswith("<p><em>Shown as text (over 20,000 characters)")
    out = SanitizeStudentContent._output(new_output("display_data", data={"text/html": source}))
    assert out["data"]["text/html"].startswith("<p><em>Shown as text") and "<div>" not in out["data"]["text/html"]
