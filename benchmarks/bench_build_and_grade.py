"""Benchmark: cold book build, each chapter's execution time, and grading one ps1 submission.

Prints wall times and their ratio to a baseline measured in the same run (a bare
`python -c "import tensorflow"`, the fixed cost every kernel pays), so that the numbers
compare across machines. The chapter times are read from the build's execution cache
(jupyter-cache records each notebook's execution seconds); each chapter's budget is 4 minutes
on a quiet 2-core CPU. Nothing here is asserted; run it with `make bench`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.nbgrader_run import autograde, release, scratch_course  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def run(cmd, **kw):
    subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def chapter_times(cache_path: Path) -> list[tuple[str, float]]:
    """Execution seconds per chapter, as jupyter-cache recorded them in the cold build."""
    from jupyter_cache import get_cache

    rows = []
    for record in get_cache(str(cache_path)).list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        uri = Path(record.uri)
        if seconds is not None and uri.parent.name == "book":
            rows.append((f"  execute {uri.name} (budget 240 s)", float(seconds)))
    return sorted(rows)


def main() -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    baseline, _ = timed(run, [sys.executable, "-c", "import tensorflow"], env=env)
    rows = [("baseline: import tensorflow", baseline)]

    with tempfile.TemporaryDirectory() as tmp:
        jb = str(Path(sys.executable).parent / "jupyter-book")
        cold, _ = timed(run, [jb, "build", str(REPO), "--all", "--path-output", tmp], env=env)
        rows.append(("book build, cold (no execution cache)", cold))
        rows += chapter_times(Path(tmp) / ".jupyter_cache")
        warm, _ = timed(run, [jb, "build", str(REPO), "--all", "--path-output", tmp], env=env)
        rows.append(("book build, warm (jupyter-cache hit)", warm))

    with tempfile.TemporaryDirectory() as tmp:
        root = scratch_course(Path(tmp), ["ps1-basics"])
        release("ps1-basics", root=root)
        solution = REPO / "solutions" / "ps1-basics" / "ps1-basics.ipynb"
        one, _ = timed(autograde, root, "ps1-basics", {"s1": solution})
        rows.append(("nbgrader autograde, 1 ps1 submission", one))

    width = max(len(name) for name, _ in rows)
    print(f"{'':<{width}}  {'seconds':>8}  {'x baseline':>10}")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {seconds / baseline:10.1f}")


if __name__ == "__main__":
    main()
