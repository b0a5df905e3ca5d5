"""``python -m autograder release ASSIGNMENT``: regenerate exercises/ASSIGNMENT with nbgrader."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from autograder import EXERCISES, REPO_ROOT, assignments
from autograder.nbgrader_run import GradingError, release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate the student copy in exercises/")
    rel.add_argument("assignment", nargs="?", help="assignment id (default: all)")
    args = parser.parse_args(argv)

    if args.command == "release":
        known = assignments()
        todo = [args.assignment] if args.assignment else known
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
            print(f"released {a} -> {target.relative_to(EXERCISES.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
