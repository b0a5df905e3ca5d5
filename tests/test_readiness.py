"""The readiness script (autograder/readiness.py), run for real on a cheap subset.

One run with the `small` profile, offline: chapter 1, the cheapest chapter (about 2 minutes
on 2 CPU cores), the ps1-basics solution (about 35 s) and a notebook made here that fails on
purpose. The whole check costs about 3 minutes; the full run (every chapter and solution, ~15 min on a
CPU) is the instructor's job on a GPU kernel before a term.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys

import nbformat
import pytest

from autograder import readiness
from autograder.notebook import nbgrader_meta, read
from conftest import OFFLINE_ENV, REPO

CHAPTER = "01-basics"
SOLUTION = "ps1-basics"

# Its first cell checks what the script promises a kernel (profile, offline setting, working
# folder); its second fails on purpose. A ValueError in the report proves the first passed.
BROKEN_CELLS = [
    "import os\n"
    "assert os.environ['DLCOURSE_PROFILE'] == 'small', os.environ.get('DLCOURSE_PROFILE')\n"
    "assert os.environ['DLCOURSE_OFFLINE'] == '1'\n"
    "assert os.path.exists('broken.ipynb'), os.getcwd()",
    "raise ValueError('deliberate failure')",
    "print('never reached')",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readiness")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in BROKEN_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp / "broken.ipynb")
    out = tmp / "report.md"
    # Run from another folder, so nothing depends on the caller's working directory.
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.readiness", "--profile", "small",
         "--only", CHAPTER, SOLUTION, "--out", str(out), str(tmp / "broken.ipynb")],
        cwd=tmp, env=dict(os.environ, **OFFLINE_ENV),
        capture_output=True, text=True, timeout=900)
    report = json.loads(out.with_suffix(".json").read_text()) if out.exists() else None
    return proc, out, report


def _by_name(report) -> dict:
    return {r["name"]: r for r in report["notebooks"]}


def test_failure_is_reported_and_the_run_goes_on(run):
    proc, out, report = run
    assert report is not None, f"no report:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 1, (proc.returncode, proc.stdout)
    nbs = _by_name(report)
    assert list(nbs) == [CHAPTER, SOLUTION, "broken"], "all three run, in order"
    broken = nbs["broken"]
    assert broken["status"] == "failed"
    assert broken["error"]["ename"] == "ValueError", broken["error"]
    assert "deliberate failure" in broken["error"]["evalue"]
    assert report["failed"] == ["broken"]
    text = out.read_text()
    assert "failed (ValueError)" in text and "deliberate failure" in text


def test_chapter_and_solution_run_cleanly(run):
    proc, _, report = run
    nbs = _by_name(report)
    assert nbs[CHAPTER]["status"] == "ok", nbs[CHAPTER]["error"]
    assert nbs[SOLUTION]["status"] == "ok", nbs[SOLUTION]["error"]
    assert report["profile"] == "small"


def test_report_lists_the_device(run):
    _, out, report = run
    device = report["device"]
    assert device.get("kind") in ("CPU", "GPU"), device
    assert device["name"] and device["tensorflow"] and device["keras"]
    text = out.read_text()
    assert "## Device" in text and f"| kind | {device['kind']} |" in text


def test_report_times_every_notebook(run):
    proc, out, report = run
    text = out.read_text()
    for nb in report["notebooks"]:
        assert nb["seconds"] > 0, nb["name"]
        row = next(line for line in text.splitlines() if line.startswith(f"| `{nb['path']}`"))
        assert readiness._fmt_time(nb["seconds"]) in row, row
        # Progress: one line when a notebook starts and one when it ends.
        assert f"{nb['name']}: started" in proc.stdout
        assert f"{nb['name']}: {nb['status']}" in proc.stdout


def test_report_has_final_accuracies_of_the_chapter(run):
    _, out, report = run
    chapter = _by_name(report)[CHAPTER]
    assert chapter["histories"], "no Keras History found in the chapter's namespace"
    for h in chapter["histories"]:
        for key, value in h["final"].items():
            if "acc" in key:
                assert 0.0 <= value <= 1.0, (h["name"], key, value)
    best = chapter["final_accuracy"]
    assert best and best["metric"] == "val_accuracy" and 0.0 < best["value"] <= 1.0, best
    assert f"{best['value']:.4f} (val_accuracy, `{best['history']}`)" in out.read_text()


def test_solution_test_cells_are_reported_one_by_one(run):
    _, out, report = run
    solution = _by_name(report)[SOLUTION]
    nb = read(REPO / "solutions" / SOLUTION / f"{SOLUTION}.ipynb")
    expected = [nbgrader_meta(c)["grade_id"] for c in nb.cells
                if nbgrader_meta(c).get("grade") and c.cell_type == "code"
                and nbgrader_meta(c).get("grade_id", "").startswith("test_")]
    assert expected, "the solution has no test cells"
    assert [t["grade_id"] for t in solution["tests"]] == expected
    assert all(t["status"] == "passed" for t in solution["tests"]), solution["tests"]
    assert f"{len(expected)}/{len(expected)}" in out.read_text()


# --- Cheap checks without kernels --------------------------------------------------------------

def test_unknown_only_pattern_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        readiness.main(["--only", "no-such-chapter", "--list"])
    assert exc.value.code == 2
    assert "no-such-chapter" in capsys.readouterr().err


def test_every_chapter_and_solution_is_a_target(capsys):
    assert readiness.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for path in sorted((REPO / "book").glob("[0-9][0-9]-*.md")):
        assert f"book/{path.name}" in listed
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        assert path.relative_to(REPO).as_posix() in listed


class _Shell:
    def __init__(self, ns):
        self.user_ns, self.user_ns_hidden = ns, {"In": [], "Out": {}}


def test_probe_finds_histories_one_level_deep():
    shared = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.75], "val_accuracy": [0.4, 0.7]}
    ns = {
        "In": [], "Out": {},
        "hist": shared,
        "again": {"first": shared},  # the same history under a second name: listed once
        "runs": {"a": {"loss": [2.0], "val_loss": [2.5], "val_accuracy": [float("nan")]}},
        "curves": [{"loss": [0.3], "binary_accuracy": [0.9]}],
        "config": {"loss": "mse"},  # not a history
        "_private": {"loss": [0.0]},
    }
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(readiness.PROBE, {"get_ipython": lambda: _Shell(ns)})
    found = json.loads(buf.getvalue().split(readiness.MARK, 1)[1])["histories"]
    assert [h["name"] for h in found] == ["hist", "runs['a']", "curves[0]"]
    assert found[0] == {"name": "hist", "epochs": 2,
                        "final": {"loss": 0.5, "accuracy": 0.75, "val_accuracy": 0.7}}
    assert math.isnan(found[1]["final"]["val_accuracy"])
    # NaN is skipped; validation accuracy outranks a higher training accuracy.
    assert readiness.best_final_accuracy(found) == \
        {"history": "hist", "metric": "val_accuracy", "value": 0.7}
