"""Claims: every comparative sentence of the book is recorded in the run and holds.

`dlcourse.claim()` writes an output of MIME type application/vnd.dlcourse.claim+json; the
book's chapters promise their claims in book/claims.yml. A claim that fails never stops the
build, so these tests are where it fails, with every failing claim listed.
"""

from __future__ import annotations

import json

import numpy as np

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from conftest import REPO
from dlcourse import claims

REQUIRED = yaml.safe_load((REPO / "book" / "claims.yml").read_text()) or {}


def _nb_with(payloads):
    outputs = [{"output_type": "display_data", "metadata": {},
                "data": {"text/plain": "x", claims.CLAIM_MIME: p}} for p in payloads]
    return {"cells": [{"cell_type": "code", "source": "", "outputs": outputs,
                       "metadata": {}, "execution_count": 1}]}


# ------------------------------------------------------------- the checker, on synthetic pages

def test_checker_lists_false_missing_and_repeated_claims():
    nb = _nb_with([{"id": "a", "holds": True, "evidence": {}},
                   {"id": "b", "holds": False, "evidence": {"gap": 0.01}},
                   {"id": "a", "holds": True, "evidence": {}}])
    problems = claims.check_claims(nb, required=["a", "b", "c"])
    assert problems == ["b: does not hold (gap=0.01)", "a: recorded twice", "c: never recorded"]
    ok = _nb_with([{"id": "a", "holds": True, "evidence": {}}])
    assert claims.check_claims(ok, required=["a"]) == []


def test_beats_needs_a_margin_beyond_twice_the_spread():
    # Means differ by 0.01, spreads are 0.008: within noise, so the claim must not hold.
    assert not claims.beats("t", [0.90, 0.91, 0.92], [0.89, 0.90, 0.91])
    assert claims.beats("t", [0.90, 0.91, 0.92], [0.80, 0.81, 0.82])
    assert claims.beats("t", [0.1], [0.2], lower_is_better=True)
    assert not claims.beats("t", [0.1], [0.2])
    assert not claims.beats("t", [0.30], [0.29], min_margin=0.02)


def test_claim_output_survives_a_real_kernel_and_nbformat():
    """The MIME bundle as a real kernel emits it and nbformat writes it, read back."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from dlcourse.claims import claim\n"
        "claim('k-true', 1 < 2, {'a': 1.5})\nclaim('k-false', 2 < 1, {'a': 2})")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nb = json.loads(nbformat.writes(nb))
    got = claims.claims_in_notebook(nb)
    assert [(c["id"], c["holds"]) for c in got] == [("k-true", True), ("k-false", False)]
    outputs = nb["cells"][0]["outputs"]
    # Two lines for the reader and no stray "False" as the cell's value.
    assert [o["output_type"] for o in outputs] == ["display_data", "display_data"]
    assert "".join(outputs[1]["data"]["text/plain"]).startswith("[claim k-false: DOES NOT HOLD]")
    assert claims.check_claims(nb) == ["k-false: does not hold (a=2)"]


# ------------------------------------------------------------- the built book

def test_every_claim_of_every_chapter_holds(built_book):
    problems = []
    for stem in REQUIRED:
        path = built_book / "jupyter_execute" / "book" / f"{stem}.ipynb"
        if not path.exists():
            problems.append(f"{stem}: not executed")
            continue
        nb = json.loads(path.read_text())
        problems += [f"{stem}: {p}" for p in claims.check_claims(nb, REQUIRED[stem])]
    for path in sorted((built_book / "jupyter_execute" / "book").glob("*.ipynb")):
        if path.stem not in REQUIRED:  # chapters without a list: what they record must hold
            nb = json.loads(path.read_text())
            problems += [f"{path.stem}: {p}" for p in claims.check_claims(nb)]
    assert not problems, "claims that fail in the executed book:\n" + "\n".join(problems)


@pytest.mark.parametrize("stem", sorted(REQUIRED))
def test_claimed_chapters_exist(stem):
    assert (REPO / "book" / f"{stem}.md").exists(), f"book/claims.yml names {stem}, no such chapter"


# ------------------------------------------------------------- figures: titles and axis labels

def test_figure_problems_name_what_is_missing():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dlcourse.plots import figure_problems, image_grid, plot_history

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    assert figure_problems(fig) == ["the figure has no title (suptitle or an axes title)",
                                    "axes 0 has no x label", "axes 0 has no y label"]
    ax.set_title("t"); ax.set_xlabel("epoch"); ax.set_ylabel("loss")
    assert figure_problems(fig) == []
    # Shared axes: one label per row/column is enough; image panels need the figure's title.
    fig, axes = plt.subplots(1, 2, sharey=True)
    for a in axes:
        a.plot([1, 2]); a.set_xlabel("x")
    axes[0].set_ylabel("y"); fig.suptitle("two panels")
    assert figure_problems(fig) == []
    grid = np.zeros((4, 5, 5))
    assert figure_problems(image_grid(grid)) == ["the figure has no title (suptitle or an axes title)"]
    assert figure_problems(image_grid(grid, title="filters")) == []
    assert figure_problems(plot_history({"loss": [1, 0.5], "val_loss": [1.1, 0.7]})) == []
    plt.close("all")


def test_unlabelled_figures_become_failing_claims_in_a_real_kernel():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
        "from dlcourse.plots import check_figures_when_shown\ncheck_figures_when_shown()\n"),
        nbformat.v4.new_code_cell("fig, ax = plt.subplots(); ax.plot([1, 2]); ax.set_title('ok')\n"
                                  "ax.set_xlabel('a'); ax.set_ylabel('b')"),
        nbformat.v4.new_code_cell("plt.plot([3, 1])")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nb = json.loads(nbformat.writes(nb))
    problems = claims.check_claims(nb)
    assert len(problems) == 1 and problems[0].startswith("figure-labels:1: does not hold"), problems
    assert "no x label" in problems[0]
    # The figures themselves are still shown.
    assert sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c["outputs"]) == 2


def test_a_grid_labels_x_per_column_and_y_per_row():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dlcourse.plots import figure_problems

    fig, axes = plt.subplots(2, 2)
    for ax in axes.flat:
        ax.plot([1, 2])
    fig.suptitle("grid")
    axes[1, 0].set_xlabel("x"); axes[1, 1].set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    assert figure_problems(fig) == ["axes 2 has no y label", "axes 3 has no y label"]  # row 2
    axes[1, 0].set_ylabel("y")
    assert figure_problems(fig) == []
    plt.close("all")
