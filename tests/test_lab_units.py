"""The chapters as notebooks in JupyterLab, without a browser (issue #15; the browser tests are
test_lab_browser.py): each chapter's header is already what jupytext writes back and names the
course kernel, the environment has the lab settings that ``make env`` writes (dlcourse.lab), and
the server's contents manager gives a chapter the language_info its kernel will report and
saves an unchanged chapter byte for byte.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import shutil
import sys
from pathlib import Path

import jupytext
import pytest
from jupytext.config import load_jupytext_config

from conftest import REPO
from dlcourse import lab
from dlcourse.kernel import DISPLAY_NAME, KERNEL_NAME

CHAPTERS = sorted((REPO / "book").glob("0*.md"))
COURSE_KERNELSPEC = {"name": KERNEL_NAME, "display_name": DISPLAY_NAME, "language": "python"}
ETC = Path(sys.prefix) / "etc" / "jupyter"


def test_there_are_chapters():
    assert len(CHAPTERS) == 5, CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_header_is_jupytexts_round_trip_and_names_the_course_kernel(chapter):
    """What JupyterLab saves is jupytext's writes() of what it read, with the repository's
    jupytext config (pyproject.toml): an unchanged chapter must come back byte for byte. The
    kernelspec is the exercises' (test_student.py), "language" being the fallback elsewhere."""
    text = chapter.read_bytes()
    config = load_jupytext_config(str(chapter))
    nb = jupytext.reads(text.decode("utf-8"), fmt="md:myst", config=config)
    assert nb.metadata.get("kernelspec") == COURSE_KERNELSPEC, f"{chapter.name}: {nb.metadata.get('kernelspec')}"
    again = jupytext.writes(nb, fmt="md:myst", config=config).encode("utf-8")
    if again != text:
        diff = "".join(difflib.unified_diff(text.decode().splitlines(True), again.decode().splitlines(True),
                                            "chapter", "jupytext's round trip", n=1))
        pytest.fail(f"{chapter.name}: jupytext writes another header back (pyproject.toml's [tool.jupytext] "
                    f"must leave out jupytext_version; `.venv/bin/jupytext --set-kernel {KERNEL_NAME} "
                    f"{chapter.relative_to(REPO)}` rewrites a header in jupytext's form):\n{diff[:2000]}")


def test_environment_opens_markdown_as_a_notebook_and_uses_the_course_contents_manager():
    """What `make env` (python -m dlcourse.kernel install) writes into .venv/etc/jupyter."""
    viewers = json.loads((ETC / "labconfig" / "default_setting_overrides.json").read_text())
    assert viewers[lab.DOCMANAGER]["defaultViewers"]["markdown"] == "Jupytext Notebook", viewers
    server = json.loads((ETC / "jupyter_server_config.json").read_text())
    assert server["ServerApp"]["contents_manager_class"] == lab.CONTENTS_MANAGER, server


def test_install_keeps_other_settings(tmp_path):
    target = tmp_path / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({lab.DOCMANAGER: {"autosave": False, "defaultViewers": {"python": "Editor"}},
                                  "other:plugin": {"x": 1}}))
    lab.install(str(tmp_path))
    lab.install(str(tmp_path))  # twice: the same result
    data = json.loads(target.read_text())
    assert data == {lab.DOCMANAGER: {"autosave": False, "defaultViewers": {"python": "Editor", **lab.DEFAULT_VIEWERS}},
                    "other:plugin": {"x": 1}}


def test_the_course_kernels_language_info_is_ipykernels():
    from ipykernel.ipkernel import IPythonKernel

    assert lab.language_info(KERNEL_NAME) == IPythonKernel.language_info
    assert lab.language_info("no-such-kernel") is None
    assert lab.language_info(None) is None


def _manager(root: Path):
    return lab.CourseContentsManager(root_dir=str(root))


def test_contents_manager_round_trip_of_a_chapter(tmp_path):
    """The server's own get + save (as JupyterLab's open + Ctrl+S) leaves a chapter unchanged,
    and the model it serves has the language_info JupyterLab would otherwise add (marking the tab
    modified)."""
    from ipykernel.ipkernel import IPythonKernel

    shutil.copy(REPO / "pyproject.toml", tmp_path)  # the jupytext config
    (tmp_path / "book").mkdir()
    chapter = tmp_path / "book" / CHAPTERS[0].name
    shutil.copy(CHAPTERS[0], chapter)
    cm = _manager(tmp_path)
    path = f"book/{chapter.name}"

    async def open_and_save():
        model = await cm.get(path, content=True, type="notebook")
        await cm.save({"type": "notebook", "format": "json", "content": model["content"]}, path)
        return model

    model = asyncio.run(open_and_save())
    assert model["content"]["metadata"]["language_info"] == IPythonKernel.language_info
    assert chapter.read_bytes() == CHAPTERS[0].read_bytes()


def test_contents_manager_adds_language_info_only_where_it_is_known(tmp_path):
    """Not to an .ipynb (which stores its own), nor to a text notebook whose kernel is not an
    ipykernel of this interpreter (what it would report is not known before it starts)."""
    (tmp_path / "other.md").write_text(CHAPTERS[0].read_text().replace(f"name: {KERNEL_NAME}", "name: no-such-kernel"))
    ipynb = tmp_path / "n.ipynb"
    ipynb.write_text(json.dumps({"cells": [], "metadata": {"kernelspec": COURSE_KERNELSPEC},
                                 "nbformat": 4, "nbformat_minor": 5}))
    cm = _manager(tmp_path)
    other = asyncio.run(cm.get("other.md", content=True, type="notebook"))
    assert other["content"]["metadata"]["kernelspec"]["name"] == "no-such-kernel"
    assert "language_info" not in other["content"]["metadata"]
    nb = asyncio.run(cm.get("n.ipynb", content=True, type="notebook"))
    assert "language_info" not in nb["content"]["metadata"]
    listing = asyncio.run(cm.get("", content=True))
    assert {item["name"] for item in listing["content"]} == {"other.md", "n.ipynb"}
