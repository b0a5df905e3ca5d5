"""The instructor's commands.

``python -m autograder release [ASSIGNMENT]``
    regenerate exercises/ASSIGNMENT (all by default) with nbgrader generate_assignment.
``python -m autograder grade ASSIGNMENT [SUBMISSIONS] --out DIR [--jobs N]``
    grade a class: SUBMISSIONS is a folder of <student>.ipynb files, a folder of <student>/
    folders, a .zip of either, or nothing (what nbgrader collect put in submitted/). Writes
    DIR/grades.csv (a column per graded cell) and DIR/feedback/<student>/ASSIGNMENT.html.
    The exit code is non-zero only when the command itself could not run.
    ``--shard K/N --db URL``: grade only shard K (0 .. N-1) of the class, so that N graders on
    N machines share the work and one gradebook.
``python -m autograder register ASSIGNMENT --db URL``
    record the assignment in a shared gradebook, once, before sharded graders start.
``python -m autograder export ASSIGNMENT --db URL --out DIR [--feedback SHARD_OUT ...]``
    the whole class's DIR/grades.csv from the gradebook alone, and the shards' feedback
    gathered into DIR/feedback/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from autograder import EXERCISES, REPO_ROOT, assignments
from autograder.nbgrader_run import GradingError, release
from autograder.release_checks import write_checks


def _release(parser, assignment: str | None) -> int:
    known = assignments()
    todo = [assignment] if assignment else known
    unknown = [a for a in todo if a not in known]
    if unknown:
        parser.error(f"no instructor source for {unknown}; known assignments: {known}")
    for a in todo:
        # Release into a scratch gradebook: regenerating the student copy must not
        # touch the instructor's real gradebook.db.
        with tempfile.TemporaryDirectory() as tmp:
            try:
                out = release(a, root=REPO_ROOT, release_dir=Path(tmp) / "release",
                              db=Path(tmp) / "gradebook.db")
            except GradingError as exc:
                print(exc, file=sys.stderr)
                return 1
            target = EXERCISES / a
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(out, target)
        write_checks(a)  # dlcourse/checks/<a>.json: the visible tests dlcourse.check() runs
        print(f"released {a} -> {target.relative_to(EXERCISES.parent)}")
    return 0


def _grade(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from autograder.grading import GradeCommandError, Limits, grade

    console = Console(stderr=False)
    limits = Limits()
    for name in ("notebook_seconds", "cell_seconds", "output_bytes", "memory_bytes", "cpu_seconds",
                 "processes", "disk_bytes"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(limits, name, value)
    sandbox = None
    if args.no_sandbox:
        console.print("[yellow]--no-sandbox: student code runs with your permissions, "
                      "network and files.[/yellow]")
    else:
        from autograder.sandbox import Sandbox, SandboxUnavailable

        try:
            sandbox = Sandbox.for_course(Path(args.course), kernel_uids=args.kernel_uids)
        except SandboxUnavailable as exc:
            console.print(f"[red]Refusing to grade: the sandbox cannot start: {exc}[/red]\n"
                          "Install bubblewrap (apt-get install bubblewrap) or rerun with --no-sandbox.")
            return 2

    with Progress(TextColumn("grading {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(args.assignment, total=None)

        def progress(result):
            if bar.tasks[task].total is None:
                bar.update(task, total=0)
            bar.advance(task)
            bar.console.log(f"{result.student}: {result.status} ({result.seconds:.0f} s)")

        try:
            results = grade(args.assignment, Path(args.submissions) if args.submissions else None,
                            Path(args.out), course_root=Path(args.course), db_url=args.db,
                            jobs=args.jobs, force=args.force, limits=limits, sandbox=sandbox,
                            progress=progress, shard=args.shard)
        except GradeCommandError as exc:
            console.print(f"[red]{exc}[/red]", soft_wrap=True)
            return 2
        bar.update(task, total=len(results), completed=len(results))

    rows = {r[0]: r for r in _read_csv(Path(args.out) / "grades.csv")}
    awaiting = _awaiting_points(Path(args.course), args.assignment, Path(args.out) / "grades.csv")
    table = Table(title=f"{args.assignment}: {len(results)} students")
    for col in ("student", "status", "score", "max", "awaiting"):
        table.add_column(col, justify="left" if col in ("student", "status") else "right")
    for r in results:
        row = rows.get(r.student, [r.student, r.status, "", ""])
        style = None if r.status == "ok" else "yellow"
        waits = awaiting.get(r.student, 0.0)
        table.add_row(r.student, r.status, row[2], row[3], f"{waits:g}" if waits else "", style=style)
    console.print(table)
    console.print(f"grades: {Path(args.out) / 'grades.csv'}; feedback: {Path(args.out) / 'feedback'}/")
    waiting = [s for s in awaiting if awaiting[s]]
    if waiting:
        console.print(f"{len(waiting)} student(s) have written answers awaiting manual grading "
                      f"({sum(awaiting.values()):g} points, not in their score yet): grade them in the "
                      "formgrader, then run this command again.")
    return 0


def _awaiting_points(course: Path, assignment: str, grades_csv: Path) -> dict[str, float]:
    """Points of each student's cells that wait for the formgrader: the empty cells of
    grades.csv (a graded cell is never empty), counted with the points of the instructor's
    source. A student without a submission (max_score 0: every cell empty) waits for nothing."""
    import csv

    from autograder import notebook as nbtools

    source = nbtools.read(course / "solutions" / assignment / f"{assignment}.ipynb")
    points = {m["grade_id"]: float(m.get("points") or 0) for m in map(nbtools.nbgrader_meta, source.cells)
              if m.get("grade") and m.get("grade_id")}
    with open(grades_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["student_id"]: sum(p for g, p in points.items() if r.get(g) == "")
            for r in rows if float(r.get("max_score") or 0) > 0}


def _register(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from autograder.gradebook import GradebookError, register_assignment

    known = assignments(Path(args.course))
    if args.assignment not in known:
        print(f"no instructor source for {args.assignment!r} in {args.course}/solutions; known assignments: {known}")
        return 2
    try:
        recorded = register_assignment(args.assignment, Path(args.course).resolve(), args.db)
    except (GradebookError, SQLAlchemyError, ImportError) as exc:
        print(f"cannot register {args.assignment} in {_shown(args.db)}: {exc}")
        return 2
    print(f"{args.assignment}: {'registered in' if recorded else 'already in'} {_shown(args.db)}")
    return 0


def _export(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from autograder.gradebook import GradebookError, export_class

    try:
        done = export_class(args.assignment, args.db, Path(args.out), course_root=Path(args.course),
                            feedback_from=[Path(p) for p in args.feedback])
    except (GradebookError, SQLAlchemyError, ImportError, OSError) as exc:
        print(f"cannot export {args.assignment} from {_shown(args.db)}: {exc}")
        return 2
    print(f"{args.assignment}: {done['students']} students -> {Path(args.out) / 'grades.csv'}")
    if done["not_graded"]:
        print(f"on the shards' roster but not graded yet (status 'not graded'): {', '.join(done['not_graded'])}")
        return 1
    if args.feedback:
        print(f"feedback of {done['feedback']} students -> {Path(args.out) / 'feedback'}/")
        if done["missing_feedback"]:
            print(f"no feedback page in the given folders for: {', '.join(done['missing_feedback'])}")
            return 1
    return 0


def _shown(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db_url).render_as_string(hide_password=True)


def _shard(text: str) -> tuple[int, int]:
    from autograder.gradebook import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _uid_range(text: str) -> range:
    from autograder.sandbox import parse_uid_range

    try:
        return parse_uid_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _read_csv(path: Path) -> list[list[str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate the student copy in exercises/")
    rel.add_argument("assignment", nargs="?", help="assignment id (default: all)")

    g = sub.add_parser("grade", help="grade a class's submissions")
    g.add_argument("assignment")
    g.add_argument("submissions", nargs="?", help="folder or .zip (default: the course's submitted/)")
    g.add_argument("--out", required=True, help="folder for grades.csv and feedback/")
    g.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores)")
    g.add_argument("--force", action="store_true", help="grade again students already graded")
    g.add_argument("--course", default=str(REPO_ROOT),
                   help="nbgrader course folder: solutions/, submitted/, autograded/ (default: this repo)")
    g.add_argument("--db", default=None,
                   help="gradebook URL (default sqlite:///COURSE/gradebook.db; e.g. postgresql://user@host/db)")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run student code without the sandbox (logged; trusted code only)")
    g.add_argument("--notebook-seconds", dest="notebook_seconds", type=float,
                   help="wall-clock limit per notebook (default 600)")
    g.add_argument("--cell-seconds", dest="cell_seconds", type=int, help="limit per cell (default 120)")
    g.add_argument("--memory-mb", dest="memory_bytes", type=lambda v: int(float(v) * 2**20),
                   help="memory per kernel, on top of the preloaded libraries (default 4096)")
    g.add_argument("--output-mb", dest="output_bytes", type=lambda v: int(float(v) * 2**20),
                   help="all outputs of one notebook (default 5)")
    g.add_argument("--cpu-seconds", dest="cpu_seconds", type=int, help="CPU time per kernel (default 1200)")
    g.add_argument("--disk-mb", dest="disk_bytes", type=lambda v: int(float(v) * 2**20),
                   help="all files one kernel writes to its scratch folder (default 1024)")
    g.add_argument("--processes", type=int, help="processes per kernel user (sandbox only; default 64)")
    g.add_argument("--kernel-uids", dest="kernel_uids", type=_uid_range, default=None, metavar="FIRST-LAST",
                   help="user ids the sandboxed kernels run as, none of them an account or group of this "
                        "machine (default: c.GradingSandbox.kernel_uids in nbgrader_config.py, 61000-61099)")
    g.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="grade only shard K of N (K = 0 .. N-1, as Kubernetes' JOB_COMPLETION_INDEX); "
                        "needs --db, shared by all shards, and `register` first")

    r = sub.add_parser("register", help="record an assignment in a shared gradebook before sharded grading")
    r.add_argument("assignment")
    r.add_argument("--db", required=True, help="gradebook URL, e.g. postgresql://user@host/db")
    r.add_argument("--course", default=str(REPO_ROOT), help="nbgrader course folder with solutions/")

    e = sub.add_parser("export", help="the class's grades.csv from the gradebook; gather the shards' feedback")
    e.add_argument("assignment")
    e.add_argument("--db", required=True, help="gradebook URL, e.g. postgresql://user@host/db")
    e.add_argument("--out", required=True, help="folder for grades.csv and feedback/")
    e.add_argument("--course", default=str(REPO_ROOT), help="nbgrader course folder with solutions/")
    e.add_argument("--feedback", nargs="*", default=[], metavar="SHARD_OUT",
                   help="the shards' --out folders, whose feedback/ is gathered into OUT/feedback")
    args = parser.parse_args(argv)

    if args.command == "release":
        return _release(parser, args.assignment)
    if args.command == "register":
        return _register(args)
    if args.command == "export":
        return _export(args)
    return _grade(args)


if __name__ == "__main__":
    sys.exit(main())
