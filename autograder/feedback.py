"""Feedback for students that does not give the hidden tests away, and cannot stall the class.

nbgrader's ``generate_feedback`` renders the autograded notebook, hidden tests and their
assert messages included. :class:`RedactHiddenTests` is an nbgrader preprocessor that runs
after ``GetGrades`` and rewrites every test cell that has hidden tests: its visible part
stays, the hidden part becomes one comment line, and its outputs become one line with the
cell's name, points and pass or fail. A failure of a visible assert keeps its message (the
student can see that assert anyway); anything from the hidden part is dropped. Finding the
hidden blocks is one pass over the lines (:func:`autograder.notebook.hidden_blocks`), so linear
in the size of the notebook whatever a student puts in it.

The grading command writes ``grades.csv`` first, then the feedback, one student at a time per
worker process (:mod:`autograder.feedback_worker`, target :func:`generate_one`) with a time limit:
a notebook whose rendering hangs costs only its own feedback (a short page says why), never
the grades or the feedback of others. Before a page is written, :func:`leaked_lines` scans it
for every hidden-test line of the instructor's source (:func:`secret_lines`); a page that
shows one is replaced by a page that withholds the feedback.

Grades that are not grades yet (issue #15): :class:`FeedbackGrades` is nbgrader's ``GetGrades``
that also marks every graded cell still waiting for the formgrader
(``cell.metadata.nbgrader.awaiting_manual_grade``) and every answer left as released
(``not_answered``), and leaves the waiting cells out of the notebook's score and total
(``resources["nbgrader"]["awaiting_points"]`` says how many points wait). The template
(``templates/dlc_feedback``) reads "awaiting manual grading" and "not answered" from them; a
test cell that failed because a function still raises the release's ``NotImplementedError``
reads "Not answered" (:func:`not_answered_line`).

Math (issue #15): the pages carry it as MathML, written when they are generated
(:mod:`autograder.mathml`), and load no MathJax: students read them offline, or in JupyterLab's
HTML viewer, which runs no script. The same module's :func:`nbgrader_settings`, which
nbgrader_config.py applies, also points the formgrader at the MathJax of the Jupyter server.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from jinja2 import pass_context
from nbformat.v4 import new_output
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor

from autograder.notebook import hidden_blocks, nbgrader_meta, split_hidden

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CELL_LINE_RE = re.compile(r"Cell In\[\d+\], line (\d+)")
TAG_RE = re.compile(r"<[^>]*>")
MIN_SECRET_CHARS = 13  # shorter hidden lines (`x = 3`) are too likely to be written by anyone


def _failing_line(output) -> int | None:
    """The line of the test cell that raised, from an IPython traceback (None if unknown)."""
    for entry in output.get("traceback", []):
        m = CELL_LINE_RE.search(ANSI_RE.sub("", str(entry)))
        if m:
            return int(m.group(1))
    return None


# What the release's answer cells raise (``raise NotImplementedError()``): as run in the student's
# kernel, or as the judge re-raises it (autograder.channel.student_error: "name(...) raised ...").
NOT_IMPLEMENTED = "NotImplementedError"
JUDGED_NOT_IMPLEMENTED = "StudentNotImplementedError"
JUDGED_RAISED_RE = re.compile(r"(?P<name>[A-Za-z_][\w.:]*)\(\.\.\.\) raised NotImplementedError(?:: ?(?P<msg>.*))?\Z",
                              re.S)


def not_answered_line(error, grade_id: str, visible: bool) -> str | None:
    """The feedback line of a test cell's error output when it means the question is not
    answered: a graded function still raises ``NotImplementedError``, the release's placeholder.
    None for any other error. ``visible``: the error came from a visible line of the test (a
    hidden line's own message is never shown; only the judge's, which carries the student's
    exception, is)."""
    ename, evalue = error.get("ename"), str(error.get("evalue") or "")
    default = grade_id[len("test_"):] if grade_id.startswith("test_") and len(grade_id) > 5 else "your function"
    if ename == JUDGED_NOT_IMPLEMENTED:
        m = JUDGED_RAISED_RE.match(evalue)
        name, message = (m["name"], m["msg"] or "") if m else (default, "")
    elif ename == NOT_IMPLEMENTED and (visible or not evalue.strip()):
        name, message = default, evalue
    else:
        return None
    if message.strip():
        return f"Not answered: {name} raises NotImplementedError: {message.strip()}"
    return f"Not answered: {name} still raises NotImplementedError (the release's placeholder)."


def redact_test_cell(cell) -> None:
    """Rewrite one autograded test cell in place (see the module's docstring)."""
    source = cell.source
    blocks = hidden_blocks(source)
    if not blocks:
        return
    hidden_starts_at = blocks[0][0] + 1  # 1-based line of the first BEGIN marker
    visible = split_hidden(source, "# (hidden tests: not shown)")[0].rstrip() + "\n"
    meta = nbgrader_meta(cell)
    score, points = cell.metadata.get("nbgrader", {}).get("score"), meta.get("points", 0)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    passed = not errors
    try:
        lines = [f"{meta.get('grade_id', 'test')}: {'passed' if passed else 'failed'}"
                 + (f", {float(score):g} of {float(points):g} points" if score is not None
                    else f" ({float(points):g} points)")]
    except (TypeError, ValueError):
        lines = [f"{meta.get('grade_id', 'test')}: {'passed' if passed else 'failed'}"]
    for err in errors:
        line = _failing_line(err)
        from_visible = line is not None and line < hidden_starts_at
        unanswered = not_answered_line(err, str(meta.get("grade_id", "")), from_visible)
        if unanswered:
            lines.append(unanswered)
        elif from_visible:
            lines.append(f"A visible test failed: {err.get('ename')}: {err.get('evalue')}")
        else:
            lines.append("A hidden test failed (or the cell could not run to the end).")
    cell.source = visible
    cell.outputs = [new_output("stream", name="stdout", text="\n".join(lines) + "\n")]


class FeedbackGrades(GetGrades):
    """nbgrader's ``GetGrades`` (scores and comments from the gradebook into the notebook),
    and what the feedback must not present as a grade:

    - a graded cell whose grade still needs the formgrader (``needs_manual_grade`` and no
      ``manual_score``: a written answer nobody has graded yet) gets
      ``metadata.nbgrader.awaiting_manual_grade = True`` and counts neither in
      ``resources["nbgrader"]["score"]`` nor in ``["max_score"]``; its points are in
      ``["awaiting_points"]`` (0 when nothing waits);
    - an answer cell left as released (nbgrader's checksum: it scored 0 automatically, no manual
      score) gets ``metadata.nbgrader.not_answered = True``; its 0 counts as usual.

    Both keys are set on every graded cell and removed from every other one, so a notebook
    cannot bring its own.
    """

    FLAGS = ("awaiting_manual_grade", "not_answered")

    def preprocess(self, nb, resources):
        self._awaiting_score, self._awaiting_points = 0.0, 0.0
        nb, resources = super().preprocess(nb, resources)
        grades = resources["nbgrader"]
        grades["score"] = grades["score"] - self._awaiting_score
        grades["max_score"] = grades["max_score"] - self._awaiting_points
        grades["awaiting_points"] = self._awaiting_points
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict):
            for key in self.FLAGS:
                meta.pop(key, None)
        return super().preprocess_cell(cell, resources, cell_index)

    def _get_score(self, cell, resources) -> None:
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        awaiting = grade.manual_score is None and bool(grade.needs_manual_grade)
        cell.metadata.nbgrader["awaiting_manual_grade"] = awaiting
        # nbgrader scores an answer cell 0 by itself only when it is unchanged from the release
        # (its checksum); a person's score, even for a blank answer, is a grade.
        cell.metadata.nbgrader["not_answered"] = bool(
            nbgrader_utils.is_solution(cell) and grade.manual_score is None
            and grade.auto_score is not None and float(grade.auto_score) == 0.0)
        if awaiting:
            self._awaiting_score += float(grade.score or 0)
            self._awaiting_points += float(grade.max_score or 0)


class _FeedbackPreprocessor(NbGraderPreprocessor):
    # nbgrader's feedback command configures display_data_priority for every preprocessor it
    # runs; without the trait, traitlets logs "Config option `display_data_priority` not
    # recognized" once per student. nbgrader's own GetGrades declares it for the same reason
    # (jupyter/nbgrader#683, fixed in #687); the value is not used here.
    display_data_priority = GetGrades.display_data_priority


class RedactHiddenTests(_FeedbackPreprocessor):
    """Hide the hidden tests (code, messages, output) of every autograded test cell."""

    def preprocess_cell(self, cell, resources, index):
        # Any code cell with a hidden-test block: a test cell, or a copy of one that lost its
        # nbgrader metadata (a duplicated cell).
        if cell.cell_type == "code" and hidden_blocks(cell.source):
            redact_test_cell(cell)
        return cell, resources


# ---------------------------------------------------------------------------------------------
# Student HTML and markdown: an allowlist, so that nothing runs in a reader's browser

SAFE_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
             "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
             "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
             "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
             "thead", "tr", "tt", "u", "ul", "var"}
SAFE_PROTOCOLS = {"http", "https", "mailto"}
DATA_IMAGE_RE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z")
BASE64_RE = re.compile(r"[A-Za-z0-9+/=\s]*\Z")
SAFE_OUTPUT_TYPES = {"text/plain", "image/png", "image/jpeg"}  # the templates escape these
SAFE_ID_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
# Classes a student's HTML may carry: what nbconvert's markdown and Pygments write. Any other,
# and the page's own Bootstrap classes (modal, navbar-fixed-top, affix: position:fixed over the
# whole page) would let a student draw a fake score over the page.
SAFE_CLASS_RE = re.compile(r"(?:highlight|hll|anchor-link|dlc-tex|hl-[a-z0-9_-]+|[a-z]{1,2}[a-z0-9]?)\Z")
# What a browser ignores in a URL's scheme: C0 controls and spaces (tabs and newlines anywhere).
URL_IGNORED_RE = re.compile(r"[\x00-\x20\x7f]+")
# Larger markdown cells and HTML outputs are shown as text: the markdown and HTML parsers take
# quadratic time on some inputs (unclosed "\\(" or "[", thousands of "<div>"), and the
# feedback worker's time limit would then cost that student the whole page.
MAX_RENDERED_CHARS = 20_000


def _scheme(url: str) -> str:
    """A URL's scheme as a browser reads it ("" for a relative URL). bleach hands attribute
    values over with their character references (``&#9;``) still in them."""
    import html

    before, colon, _ = URL_IGNORED_RE.sub("", html.unescape(url)).partition(":")
    return before.lower() if colon and "/" not in before else ""


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name == "class":
        return all(SAFE_CLASS_RE.match(c) for c in value.split())
    if name in ("title", "align", "style"):
        return True
    if tag == "a":  # bleach then checks the protocol: http(s), mailto, or a relative link
        return name == "href" and _scheme(value) not in ("data", "javascript", "vbscript")
    if tag == "img":
        if name == "src":  # bleach checks http(s); an inline image is fine (scripts never run in <img>)
            return bool(DATA_IMAGE_RE.match(value)) or value.split(":", 1)[0].lower() in ("http", "https")
        return name in ("alt", "width", "height")
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return name == "id"  # the headings' anchors
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan")
    return False


def _cleaner(extra_tags=frozenset()):
    import bleach
    from bleach.css_sanitizer import CSSSanitizer

    def allowed(tag, name, value):  # the extra tags (math placeholders) keep no attribute
        return tag not in extra_tags and _allowed_attribute(tag, name, value)

    return bleach.Cleaner(tags=SAFE_TAGS | set(extra_tags), attributes=allowed,
                          protocols=SAFE_PROTOCOLS | {"data"}, strip=False, strip_comments=True,
                          css_sanitizer=CSSSanitizer())


def clean_html(fragment, extra_tags=frozenset()) -> str:
    """A student's HTML with only :data:`SAFE_TAGS` and safe attributes left: no ``<script>``,
    ``<style>``, ``<iframe>``, ``<svg>``, ``<math>``, ``<form>`` (escaped, so shown as text), no
    ``on*=`` handler, no ``javascript:`` or ``data:`` URL but inline images, CSS properties from
    bleach's allowlist. ``extra_tags`` are kept too, without attributes (the math placeholders
    of :func:`student_markdown`). Also a Jinja filter (``clean_student_html``)."""
    fragment = fragment.decode() if isinstance(fragment, bytes) else str(fragment)
    return _cleaner(frozenset(extra_tags)).clean(fragment)


def markdown_to_html(source, attachments=None, path: str = "") -> str:
    """Markdown a student (or a grader's comment) wrote, as clean HTML with its math as MathML
    (:func:`autograder.mathml.markdown_html`: the MathML is put in after cleaning, so it needs
    no MathML in :data:`SAFE_TAGS`, and a student's own ``<math>`` stays escaped)."""
    from autograder.mathml import markdown_html

    source = str(source)
    if len(source) > MAX_RENDERED_CHARS:
        return shown_as_text(source, f"over {MAX_RENDERED_CHARS:,d} characters")
    try:
        return markdown_html(source, clean_html, attachments=attachments, path=path)
    except Exception as exc:  # nbconvert's own errors: a missing attachment, RecursionError...
        return shown_as_text(source, f"it could not be rendered: {type(exc).__name__}")


def shown_as_text(source: str, why: str) -> str:
    """Markdown or HTML shown as its escaped text, with the reason (linear in its size)."""
    import html

    return (f'<p><em>Shown as text ({html.escape(why)}).</em></p>'
            f"<pre>{html.escape(source, quote=False)}</pre>")


def already_stripped(fragment) -> str:
    """The feedback template's ``strip_files_prefix``: the identity. :func:`markdown_to_html`
    strips ``files/`` before cleaning; stripping again after cleaning, as nbgrader's template
    does, turned a cleaned ``/files/files/javascript:...`` link back into ``javascript:``."""
    return fragment


@pass_context
def student_markdown(context, source) -> str:
    """The feedback template's markdown filter (``student_markdown``, and ``markdown2html`` in
    place of nbconvert's, for nbgrader's comment footer): :func:`markdown_to_html` with the
    cell's attachments, as nbconvert's own ``markdown2html`` reads them."""
    cell = context.get("cell") or {}
    path = (context.get("resources") or {}).get("metadata", {}).get("path", "")
    return markdown_to_html(source, attachments=cell.get("attachments") or {}, path=path)


class SanitizeStudentContent(_FeedbackPreprocessor):
    """Make what a student wrote or printed safe to render (after ``RedactHiddenTests``):

    - outputs: ``text/html`` cleaned (:func:`clean_html`); ``text/markdown`` rendered, then
      cleaned, as ``text/html`` (math as MathML, :func:`markdown_to_html`); a ``text/latex``
      that is one formula (``display(Math(...))``) as MathML; ``image/svg+xml`` shown as an
      ``<img>`` (where SVG scripts never run); ``text/plain`` and base64 PNG/JPEG kept; every
      other type dropped (``application/javascript``, widget views, other ``text/latex``...);
      output metadata dropped (``isolated`` iframes, image sizes) but a figure's alt text;
    - raw cells: cleaned; markdown cells and graders' comments: rendered and cleaned by the
      feedback template's markdown filter (:func:`student_markdown`);
    - nbgrader metadata: a cell whose ``grade_id`` is not plain ``[A-Za-z0-9_-]`` loses it
      (the template puts it in attributes unescaped);
    - notebook metadata: widget state dropped (the template would put it in a ``<script>``).

    (Execution counts and cell types, which the template also writes unescaped, are checked
    by nbformat's schema validation: nbconvert refuses such a notebook.)
    """

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict):
            if "grade_id" in meta and not SAFE_ID_RE.match(str(meta["grade_id"])):
                del cell.metadata["nbgrader"]
        if cell.cell_type == "raw":
            cell.source = clean_html(cell.source)
        elif cell.cell_type == "code":
            cell.outputs = [self._output(o) for o in cell.get("outputs", [])]
        return cell, resources

    @staticmethod
    def _output(output):
        if output.get("output_type") not in ("display_data", "execute_result"):
            return output  # stream and error: plain text, escaped by the template
        from autograder.mathml import latex_output_html

        data = output.get("data", {})
        safe = {k: v for k, v in data.items() if k in SAFE_OUTPUT_TYPES and isinstance(v, str)}
        for key in ("image/png", "image/jpeg"):
            if key in safe and not BASE64_RE.match(safe[key]):
                del safe[key]
        formula = latex_output_html(data["text/latex"]) if isinstance(data.get("text/latex"), str) else None
        if isinstance(data.get("text/html"), str):
            fragment = data["text/html"]
            safe["text/html"] = (clean_html(fragment) if len(fragment) <= MAX_RENDERED_CHARS else
                                 shown_as_text(fragment, f"over {MAX_RENDERED_CHARS:,d} characters"))
        elif isinstance(data.get("text/markdown"), str):
            safe["text/html"] = markdown_to_html(data["text/markdown"])
        elif formula:  # display(Math(...))
            safe["text/html"] = formula
        elif isinstance(data.get("image/svg+xml"), str):
            import base64

            svg = base64.b64encode(data["image/svg+xml"].encode()).decode()
            safe["text/html"] = f'<img src="data:image/svg+xml;base64,{svg}" alt="figure">'
        output["data"] = safe
        # Only an alt text for figures (the template escapes it): matplotlib's text/plain
        # ("<Figure size 300x200 with 1 Axes>"), else "figure". Without one, nbconvert logs
        # "Alternative text is missing" for every figure of every student.
        alt = (safe.get("text/plain") or "").strip().splitlines()[:1] or ["figure"]
        output["metadata"] = {k: {"alt": alt[0][:200]} for k in ("image/png", "image/jpeg") if k in safe}
        return output


# ---------------------------------------------------------------------------------------------
# The last check: no hidden-test line in a page


def secret_lines(source_nb) -> set[str]:
    """The hidden-test lines of an instructor's notebook that a student cannot know: every
    line inside a hidden block (stripped, at least :data:`MIN_SECRET_CHARS` long) that appears
    nowhere else in the source (visible tests, solutions, set-up and text)."""
    hidden, elsewhere = set(), set()
    for cell in source_nb.cells:
        visible, inside = split_hidden(cell.source, None)
        hidden |= {ln.strip() for ln in inside.splitlines() if len(ln.strip()) >= MIN_SECRET_CHARS}
        elsewhere |= {ln.strip() for ln in visible.splitlines()}
    return hidden - elsewhere


def page_text(page: str) -> str:
    """What a reader of an HTML page sees: tags removed (code is split into highlighting
    spans), entities decoded."""
    return html.unescape(TAG_RE.sub("", page))


def leaked_lines(page: str, secrets: set[str]) -> list[str]:
    """The secret lines that ``page`` (HTML) shows, in any form (highlighted code, output)."""
    flat = " ".join(page_text(page).split())
    return sorted(s for s in secrets if " ".join(s.split()) in flat)


def withhold_if_leaking(page: str, secrets: set[str], assignment: str) -> tuple[str, list[str]]:
    """``(page, [])`` when the page shows no secret line; otherwise a short page that says the
    feedback is withheld, and the secret lines it would have shown. Since the judge runs the
    hidden tests outside the student's kernel this should never trigger; it is the last check
    in case a future template or judge output shows test source."""
    leaked = leaked_lines(page, secrets)
    if not leaked:
        return page, []
    return not_shown_page(assignment, "feedback withheld",
                          "Your feedback page would show parts of the hidden tests, so it is withheld; "
                          "your grade is not affected. Ask your instructor."), leaked


def not_shown_page(assignment: str, title: str, reason: str) -> str:
    a = html.escape(assignment)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{a}</title></head><body>"
            f"<h1>{a}: {html.escape(title)}</h1><p>{html.escape(reason)}</p></body></html>\n")


# ---------------------------------------------------------------------------------------------
# One student's feedback, in a worker process with a time limit


TEMPLATES = Path(__file__).resolve().parent / "templates"


def feedback_config():
    """HTMLExporter settings of the feedback pages (a Config with an ``HTMLExporter`` section):
    nbgrader's feedback template with markdown cleaned and math as MathML, and no MathJax
    (``templates/dlc_feedback``). :func:`nbgrader_settings` puts them under ``GenerateFeedback``."""
    import nbgrader
    from traitlets.config import Config

    cfg = Config()
    cfg.HTMLExporter.template_name = "dlc_feedback"
    cfg.HTMLExporter.template_file = "dlc_feedback.html.j2"
    cfg.HTMLExporter.extra_template_basedirs = [
        str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"), str(TEMPLATES)]
    cfg.HTMLExporter.filters = {"clean_student_html": "autograder.feedback.clean_html",
                                "student_markdown": "autograder.feedback.student_markdown",
                                # nbgrader's comment footer calls markdown2html by name
                                "markdown2html": "autograder.feedback.student_markdown",
                                "strip_files_prefix": "autograder.feedback.already_stripped"}
    return cfg


def formgrader_config():
    """HTMLExporter settings of the formgrader's page of a submission: nbgrader's, with MathJax
    from the Jupyter server (jupyter-server-mathjax) instead of a CDN (``templates/dlc_formgrade``)."""
    import nbgrader
    from traitlets.config import Config

    cfg = Config()
    cfg.HTMLExporter.template_name = "dlc_formgrade"
    cfg.HTMLExporter.template_file = "dlc_formgrade.html.j2"
    cfg.HTMLExporter.extra_template_basedirs = [
        str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"), str(TEMPLATES)]
    return cfg


def nbgrader_settings():
    """What nbgrader_config.py adds to nbgrader's configuration, for every nbgrader that reads it
    (the formgrader's buttons, ``nbgrader generate_feedback``, the grading command).

    The formgrader builds its exporter as ``HTMLExporter(config=...)``, with no parent, so it
    can only be configured through the top-level ``HTMLExporter`` section: that one is the
    formgrader's. ``GenerateFeedback`` makes its exporter with itself as parent, so
    ``GenerateFeedback.HTMLExporter`` (which traitlets ranks above ``HTMLExporter``) holds the
    feedback's settings, and the two pages cannot get each other's template."""
    from traitlets.config import Config

    cfg = Config()
    cfg.merge(formgrader_config())
    cfg.GenerateFeedback.HTMLExporter = feedback_config().HTMLExporter
    cfg.GenerateFeedback.preprocessors = feedback_preprocessors()
    return cfg


def feedback_preprocessors() -> list:
    """GenerateFeedback's preprocessors: nbgrader's, with grades awaiting the formgrader left
    out of the score (:class:`FeedbackGrades` in place of ``GetGrades``), hidden tests redacted
    and student content cleaned. nbgrader_config.py sets them, so the formgrader's "Generate
    feedback" button and plain ``nbgrader generate_feedback`` get them too."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    return [FeedbackGrades, RedactHiddenTests, SanitizeStudentContent, CSSHTMLHeaderPreprocessor]


def generate_one(config: dict, student: str) -> None:
    """nbgrader generate_feedback for one student (in the worker process): the course's
    config, hidden tests redacted."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from autograder.grading import course_config

    cfg = course_config(Path(config["course_root"]), config["db_url"])
    cfg.merge(nbgrader_settings())
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = config["assignment"], student
    converter = GenerateFeedback(coursedir=coursedir, config=cfg, log=logging.getLogger("autograder.grade"))
    converter.force = True
    converter.start()
