"""Shared fixtures: the built book (built once per test session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "_build"

# Any HTTP(S) request during the build goes to a closed port and fails at once: the book
# must build from data that ships with installed packages.
OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "", "no_proxy": "", "DLCOURSE_OFFLINE": "1",
    # Every figure the chapters show is checked for a title and axis labels.
    "DLCOURSE_CHECK_FIGURES": "1",
}


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the whole book with -W --all (warnings are errors, every page re-read)."""
    jb = Path(sys.executable).parent / "jupyter-book"
    env = dict(os.environ, **OFFLINE_ENV)
    # --all re-reads every page but leaves stale pages of older builds; the execution cache
    # (_build/.jupyter_cache) stays.
    shutil.rmtree(BUILD / "html", ignore_errors=True)
    proc = subprocess.run([str(jb), "build", str(REPO), "-W", "--all", "--keep-going"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build failed ({proc.returncode}):\n"
                    f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return BUILD


@pytest.fixture(scope="session")
def html_dir(request) -> Path:
    """The built site: another build's with DLCOURSE_SITE_BUILD=/path/to/_build (a
    ``--path-output`` build) or DLCOURSE_SITE=/path/to/html, else this run's ``built_book``."""
    if os.environ.get("DLCOURSE_SITE"):
        site = Path(os.environ["DLCOURSE_SITE"])
    elif os.environ.get("DLCOURSE_SITE_BUILD"):
        site = Path(os.environ["DLCOURSE_SITE_BUILD"]) / "html"
    else:
        site = request.getfixturevalue("built_book") / "html"
    assert (site / "index.html").exists(), f"no built site at {site}"
    return site


# Markers, to choose what to run (`make test-fast` runs `-m "not slow"`): set here by module,
# so that a new test in a slow file is slow too, and every test that needs the built book is.
SLOW_MODULES = {  # each starts TensorFlow kernels, grades notebooks or builds the book
    "test_assignments", "test_book", "test_browser", "test_grade", "test_grade_postgres",
    "test_grader_adversarial", "test_grader_hardening", "test_grader_judge", "test_grading_power",
    "test_readiness", "test_site", "test_student", "test_exchange", "test_accessibility",
    "test_feedback_page", "test_lab_browser",
}
SANDBOX_MODULES = {"test_grade", "test_grade_postgres", "test_grader_adversarial", "test_grader_hardening",
                   "test_exchange"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        # html_dir builds the book too (through request.getfixturevalue, which fixturenames
        # cannot see): a test that asks for either is slow.
        if module in SLOW_MODULES or {"built_book", "html_dir"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if module in SANDBOX_MODULES:
            item.add_marker(pytest.mark.sandbox)
        if module in ("test_browser", "test_accessibility", "test_feedback_page", "test_lab_browser"):
            item.add_marker(pytest.mark.browser)
        if module == "test_grade_postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _restore_working_directory():
    """Give every test the folder pytest started in, and say which test moved it.

    CI once ran test_publishing's yamllint (whose config names ``.gitignore`` relative to the
    current folder) somewhere else than the repository, after 50 minutes of other tests; no
    test in the fast suite moves it. A test that leaves the process in another folder makes
    later relative paths silently wrong, so it is put back and named in a warning.
    """
    before = os.getcwd()
    yield
    try:
        after = os.getcwd()
    except FileNotFoundError:  # the folder the test moved into was deleted
        after = "<deleted folder>"
    if after != before:
        os.chdir(before)
        import warnings
        warnings.warn(f"this test left the working directory at {after} (restored to {before})")
