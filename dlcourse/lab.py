"""The chapters (MyST Markdown notebooks, ``book/*.md``) in JupyterLab: opened as notebooks with
the course kernel, and left byte-identical by opening and saving them unchanged (issue #15).

``python -m dlcourse.kernel install`` (``make env``, Binder's ``postBuild``, the Docker image)
calls :func:`install` to write two settings into this environment (``sys.prefix``):

- ``etc/jupyter/labconfig/default_setting_overrides.json``: JupyterLab's default viewer of
  Markdown and MyST files is jupytext's "Jupytext Notebook", so a double-click opens a chapter
  as a notebook (jupytext's documented way; ``jupytext-config set-default-viewer`` writes the
  same setting into the user's folder). Every ``.md`` file then opens as a notebook on a
  double-click; right-click → Open With → Editor or Markdown Preview still shows it as text.
  JupyterLab reads this file from every Jupyter config folder; a user's own setting wins.
- ``etc/jupyter/jupyter_server_config.json``: ``ServerApp.contents_manager_class`` is
  :class:`CourseContentsManager`, jupytext's contents manager (which jupytext's server
  extension would otherwise derive at start-up, and leaves alone when it is configured) plus
  one change, below. (A plain config file: Jupyter Server reads only ``jpserver_extensions``
  from the ``jupyter_server_config.d`` folder.)

Why the contents manager: JupyterLab marks a notebook modified as soon as its metadata changes,
and it writes the kernel's ``language_info`` into the metadata when the kernel starts (and
``{"name": ""}`` at once if there is none). An ``.ipynb`` keeps that ``language_info``; a text
notebook does not (jupytext writes only ``kernelspec`` and ``jupytext`` into its header), so
every chapter was marked modified on opening, although saving it changed nothing. The manager
adds to a text notebook it reads the ``language_info`` that its kernel will report, when that
kernel is ipykernel running this very interpreter (the course kernel and ``python3`` of
``make env``): JupyterLab then finds nothing to change. Saving drops it again, as always.

The rest of byte-identity lives in the files themselves: each chapter's header is what jupytext
writes back (``tests/test_lab_browser.py`` checks it), and ``[tool.jupytext]`` in pyproject.toml
keeps jupytext from adding its version to the header on save.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from jupytext import AsyncTextFileContentsManager

CONTENTS_MANAGER = "dlcourse.lab.CourseContentsManager"
JUPYTEXT_VIEWER = "Jupytext Notebook"  # the widget factory of jupytext's lab extension
# JupyterLab's file types: "markdown" is .md (the chapters), "myst" is jupytext's .myst/.mystnb.
DEFAULT_VIEWERS = {"markdown": JUPYTEXT_VIEWER, "myst": JUPYTEXT_VIEWER}
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"


def _same_interpreter(program: str) -> bool:
    found = shutil.which(program) if os.sep not in program else program
    return bool(found) and os.path.realpath(found) == os.path.realpath(sys.executable)


@lru_cache(maxsize=None)
def _ipykernel_language_info() -> dict:
    from ipykernel.ipkernel import IPythonKernel  # what the kernel sends in its kernel_info_reply

    return IPythonKernel.language_info


def language_info(kernel_name: str | None) -> dict | None:
    """The ``language_info`` that kernel ``kernel_name`` reports, or ``None`` if it cannot be
    known without starting it (not an ipykernel of this interpreter, or no such kernel)."""
    if not kernel_name:
        return None
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        return None
    if not argv or not _same_interpreter(argv[0]) or not any(a.startswith("ipykernel") for a in argv):
        return None
    return copy.deepcopy(_ipykernel_language_info())


class CourseContentsManager(AsyncTextFileContentsManager):
    """jupytext's contents manager; a text notebook it reads gets its kernel's ``language_info``
    (see the module's docstring), so that JupyterLab does not mark it modified on opening."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if (model.get("type") == "notebook" and isinstance(model.get("content"), dict)
                and not path.endswith(".ipynb")):
            metadata = model["content"].setdefault("metadata", {})
            if "language_info" not in metadata:
                info = language_info((metadata.get("kernelspec") or {}).get("name"))
                if info is not None:
                    metadata["language_info"] = info
        return model


def _merge_json(path: Path, update: dict) -> None:
    """Write ``update`` into the JSON object in ``path`` (two levels deep), keeping other keys."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict) and isinstance(data[key].get(inner), dict):
                    data[key][inner].update(inner_value)
                else:
                    data[key][inner] = inner_value
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def install(prefix: str | None = None) -> list[Path]:
    """Write the two settings of the module's docstring under ``prefix`` (default: this
    environment); return the files written."""
    etc = Path(sys.prefix if prefix is None else prefix) / "etc" / "jupyter"
    viewers = etc / "labconfig" / "default_setting_overrides.json"
    _merge_json(viewers, {DOCMANAGER: {"defaultViewers": DEFAULT_VIEWERS}})
    server = etc / "jupyter_server_config.json"
    _merge_json(server, {"ServerApp": {"contents_manager_class": CONTENTS_MANAGER}})
    return [viewers, server]
