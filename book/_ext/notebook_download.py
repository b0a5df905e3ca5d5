"""A ".ipynb" download button on chapter pages written as MyST Markdown notebooks.

sphinx-book-theme shows that button when the page context has ``ipynb_source``, but
nothing in Jupyter Book 1 sets it for text notebooks, so readers could only download the
``.md``. We point it at the notebook the build executed (with its outputs) and copy that
notebook next to the other page sources.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _executed(app, pagename: str) -> Path:
    # myst-nb writes every executed notebook to <build>/jupyter_execute/<docname>.ipynb
    return Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"


def add_ipynb_source(app, pagename, templatename, context, doctree):
    if context.get("page_source_suffix") == ".md" and _executed(app, pagename).exists():
        context["ipynb_source"] = f"{pagename}.ipynb"


def copy_executed_notebooks(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for docname in app.env.found_docs:
        src = _executed(app, docname)
        if src.exists() and Path(app.env.doc2path(docname)).suffix == ".md":
            dest = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


def setup(app):
    # Before sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", add_ipynb_source, priority=400)
    app.connect("build-finished", copy_executed_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
