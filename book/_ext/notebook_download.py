"""A ".ipynb" download button on chapter pages written as MyST Markdown notebooks.

sphinx-book-theme shows that button when the page context has ``ipynb_source``, but
nothing in Jupyter Book 1 sets it for text notebooks, so readers could only download the
``.md``. We point it at the executed notebook, copied next to the other page sources.

With ``execute_notebooks: cache``, myst-nb 1.4 writes ``<build>/jupyter_execute/<doc>.ipynb``
*without* outputs (it renders the outputs merged from jupyter-cache but saves the
unmerged notebook). After the build we merge the cached outputs back into that file, so
that it, and the download, hold exactly what the page shows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat


def _executed(app, pagename: str) -> Path:
    # myst-nb writes every notebook it renders to <build>/jupyter_execute/<docname>.ipynb
    return Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"


def _is_text_notebook(app, docname: str) -> bool:
    return Path(app.env.doc2path(docname)).suffix == ".md" and _executed(app, docname).exists()


def add_ipynb_source(app, pagename, templatename, context, doctree):
    if pagename in app.env.found_docs and _is_text_notebook(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def merge_outputs_and_copy(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    config = app.env.mystnb_config
    cache = None
    if config.execution_mode == "cache":
        from jupyter_cache import get_cache

        cache = get_cache(config.execution_cache_path)
    for docname in sorted(app.env.found_docs):
        if not _is_text_notebook(app, docname):
            continue
        path = _executed(app, docname)
        if cache is not None:
            nb = nbformat.read(path, as_version=4)
            try:
                _, nb = cache.merge_match_into_notebook(nb)
            except KeyError:
                pass  # not in the cache (e.g. no code cells): leave it as written
            else:
                nbformat.write(nb, path)
        dest = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)


def setup(app):
    # Before sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", add_ipynb_source, priority=400)
    app.connect("build-finished", merge_outputs_and_copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
