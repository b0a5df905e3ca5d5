"""Benchmark: grading a class of ps1-basics with plain nbgrader vs ``python -m autograder grade``.

Makes N submissions (default 40) from the released ps1-basics notebook: student s00 hands in
the solution, s01 the untouched release, every other student a deterministic mix, per graded
function, of the solution, a plausible wrong version (the MUTANTS of tests/mutants/ps1_basics.py)
and the blank stub, and for each written question the model answer, nothing, or an answer of
their own (which waits for manual grading). The same class is then graded twice, each in its
own scratch course and SQLite gradebook:

  (a) one sequential ``nbgrader autograde`` over all N students (a fresh kernel per notebook);
  (b) ``autograder.grading.grade`` (the ``grade`` command: parallel jobs, warm forked kernels,
      feedback and grades.csv included in its time).

It prints both wall times, the ratio (a)/(b) and the cost per submission, then checks that every
student's score on every graded cell is identical in (a)'s gradebook and (b)'s grades.csv;
on a mismatch it prints a table of the differing cells and exits with status 1.

    .venv/bin/python benchmarks/bench_grading.py [--n 40] [--jobs N] [--no-sandbox]

(b) runs in the grading sandbox (autograder/sandbox.py) when that module exists, as the
command does by default; --no-sandbox grades without it. (a) always runs nbgrader as is.
The machine's load average is printed before and after: the times mean little on a busy CPU.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the mutant tables: tests/mutants/

from autograder import notebook as nbtools  # noqa: E402
from autograder.nbgrader_run import _course_args, _nbgrader, release, scratch_course  # noqa: E402

ASSIGNMENT = "ps1-basics"
SOLUTION_MARKER_RE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
OWN_ANSWER = "I think it is about numerical stability and keeping the test set separate.\n"


# ---------------------------------------------------------------------------------------------
# The class


def make_class(released_nb: Path, n: int, out: Path) -> dict[str, dict[str, str]]:
    """Write out/<student>.ipynb for n students; return what each student put in each cell."""
    from mutants import ps1_basics

    import nbformat

    solution = nbtools.cells_by_grade_id(nbtools.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
    functions = nbtools.graded_functions(nbtools.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
    written = [gid for gid in solution if gid.startswith("written_")]
    out.mkdir(parents=True, exist_ok=True)
    plan: dict[str, dict[str, str]] = {}
    for k in range(n):
        student = f"s{k:02d}"
        nb = nbtools.read(released_nb)
        cells = nbtools.cells_by_grade_id(nb)
        rng = random.Random(1000 + k)  # int seeds: the same sequence on every Python 3
        choices = {}
        for fn in functions:
            if k == 0:
                kind = "solution"
            elif k == 1:
                kind = "blank"
            else:
                r = rng.random()
                kind = "solution" if r < 0.55 else "mutant" if r < 0.85 else "blank"
            if kind == "solution":
                cells[fn].source = SOLUTION_MARKER_RE.sub("", solution[fn].source)
            elif kind == "mutant":
                name = rng.choice(sorted(ps1_basics.MUTANTS[fn]))
                cells[fn].source = textwrap.dedent(ps1_basics.MUTANTS[fn][name]).strip() + "\n"
                kind = f"mutant: {name}"
            choices[fn] = kind
        for gid in written:
            kind = "model" if k == 0 else "blank" if k == 1 else rng.choice(["model", "blank", "own"])
            if kind == "model":
                cells[gid].source = SOLUTION_MARKER_RE.sub("", solution[gid].source)
            elif kind == "own":
                cells[gid].source = OWN_ANSWER
            choices[gid] = kind
        nbformat.write(nb, str(out / f"{student}.ipynb"))
        plan[student] = choices
    return plan


# ---------------------------------------------------------------------------------------------
# Scores in the form of grades.csv: "" for a cell that waits for manual grading, else the score.


def _fmt(x: float) -> str:
    return f"{float(x):g}"


def gradebook_scores(db_path: Path) -> dict[str, dict[str, str]]:
    """{student: {grade_id: score}} read from an nbgrader gradebook (the sequential run)."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, str]] = {}
    with Gradebook(f"sqlite:///{db_path}") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            cells = out.setdefault(sub.student_id, {})
            for nb in sub.notebooks:
                for grade in nb.grades:
                    pending = grade.manual_score is None and grade.needs_manual_grade
                    cells[grade.name] = "" if pending else _fmt(grade.score)
    return out


def csv_scores(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """({student: {grade_id: score}}, {student: status}) from the command's grades.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    fixed = {"student_id", "status", "score", "max_score"}
    return ({r["student_id"]: {k: v for k, v in r.items() if k not in fixed} for r in rows},
            {r["student_id"]: r["status"] for r in rows})


# ---------------------------------------------------------------------------------------------


def sandbox_for(course: Path, no_sandbox: bool):
    """The grading sandbox, as the command uses it by default; None without it."""
    if no_sandbox:
        return None, "off (--no-sandbox)"
    try:
        from autograder.sandbox import Sandbox
    except ImportError:
        return None, "off (autograder/sandbox.py does not exist yet)"
    return Sandbox.for_course(course), "on"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="number of submissions (default 40)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs of the grade command (default: cores)")
    parser.add_argument("--no-sandbox", action="store_true", help="run (b) without the grading sandbox")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep both scratch courses and the class in this folder (for debugging)")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2")

    from autograder.grading import grade

    # Both runs see the same offline environment as the tests.
    os.environ["DLCOURSE_OFFLINE"] = "1"
    tmp_ctx = tempfile.TemporaryDirectory(prefix="dlc-bench-grading-")
    tmp = Path(tmp_ctx.name) if args.keep is None else args.keep.resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        root_a = scratch_course(tmp / "a", [ASSIGNMENT])
        root_b = scratch_course(tmp / "b", [ASSIGNMENT])
        # Both gradebooks get the assignment before the clocks start (release is not grading).
        released = release(ASSIGNMENT, root=root_a, release_dir=tmp / "release") / f"{ASSIGNMENT}.ipynb"
        release(ASSIGNMENT, root=root_b, release_dir=tmp / "release-b")
        plan = make_class(released, args.n, tmp / "class")
        sandbox, sandbox_note = sandbox_for(root_b, args.no_sandbox)
        jobs = args.jobs or os.cpu_count() or 1
        load_before = os.getloadavg()
        print(f"{args.n} submissions of {ASSIGNMENT}; {os.cpu_count()} cores; "
              f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}", flush=True)

        # (a) plain nbgrader: one `nbgrader autograde` over the whole class.
        for student in plan:
            dest = root_a / "submitted" / student / ASSIGNMENT
            dest.mkdir(parents=True)
            shutil.copyfile(tmp / "class" / f"{student}.ipynb", dest / f"{ASSIGNMENT}.ipynb")
        start = time.perf_counter()
        _nbgrader(["autograde", ASSIGNMENT, "--force", *_course_args(root_a)], cwd=REPO, timeout=None)
        seconds_a = time.perf_counter() - start
        print(f"(a) done in {seconds_a:.1f} s", flush=True)

        # (b) the grade command.
        last_result = [0.0]
        start = time.perf_counter()

        def progress(result):
            last_result[0] = time.perf_counter() - start

        results = grade(ASSIGNMENT, tmp / "class", tmp / "out-b", course_root=root_b, jobs=jobs,
                        sandbox=sandbox, progress=progress)
        seconds_b = time.perf_counter() - start
        load_after = os.getloadavg()

        scores_a = gradebook_scores(root_a / "gradebook.db")
        scores_b, statuses_b = csv_scores(tmp / "out-b" / "grades.csv")
    finally:
        if args.keep is None:
            tmp_ctx.cleanup()

    n = args.n
    width = 58
    print()
    print(f"{'':<{width}} {'wall s':>8} {'s/submission':>13}")
    print(f"{'(a) nbgrader autograde, sequential':<{width}} {seconds_a:8.1f} {seconds_a / n:13.1f}")
    print(f"{f'(b) grade command, jobs={jobs}, sandbox {sandbox_note}':<{width}} "
          f"{seconds_b:8.1f} {seconds_b / n:13.1f}")
    print(f"{'    of which: last submission graded at':<{width}} {last_result[0]:8.1f}")
    print(f"{'    of which: feedback + grades.csv':<{width}} {seconds_b - last_result[0]:8.1f}")
    print(f"ratio (a)/(b): {seconds_a / seconds_b:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")

    # Same scores, cell by cell.
    mismatches = []
    for student in sorted(set(plan) | set(scores_a) | set(scores_b)):
        a, b = scores_a.get(student), scores_b.get(student)
        if a is None or b is None:
            mismatches.append((student, "(whole submission)", "missing" if a is None else "present",
                               "missing" if b is None else "present", ""))
            continue
        for gid in sorted(set(a) | set(b)):
            if a.get(gid) != b.get(gid):
                mismatches.append((student, gid, repr(a.get(gid)), repr(b.get(gid)),
                                   plan.get(student, {}).get(gid.removeprefix("test_"), "")))
    not_ok = {s: st for s, st in statuses_b.items() if st != "ok"}
    full = sum(1 for s in scores_a.values() if all(v not in ("", "0") for k, v in s.items()
                                                   if k.startswith("test_")))
    print(f"students with every autograded cell passed (a): {full} of {len(scores_a)}; "
          f"cells compared: {sum(len(s) for s in scores_a.values())}")
    if not_ok:
        print(f"(b) statuses other than ok: {not_ok}")
    if mismatches:
        print(f"\nMISMATCH: {len(mismatches)} cells differ between (a) nbgrader and (b) the grade command")
        header = ("student", "cell", "(a) nbgrader", "(b) grade", "answer")
        widths = [max(len(str(r[i])) for r in [header, *mismatches]) for i in range(5)]
        for row in [header, *mismatches]:
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
        return 1
    if not_ok:
        return 1
    print("per-student per-cell scores: identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
