"""Benchmark: one grader against two ``--shard K/2`` graders on one class, one PostgreSQL gradebook.

The class is bench_grading.py's (``make_class``: s00 the solution, s01 the release, the rest a
deterministic mix of solutions, plausible wrong answers and blanks), N students (default 12).
A throw-away PostgreSQL server (tests/postgres_server.py) holds two gradebooks:

  (a) one ``python -m autograder grade`` with ``--jobs 1``: the cost of one submission on
      one core;
  (b) ``register``, then two shards at once, ``--jobs 1`` each, each with its own course
      folder and kernel uids, as two one-core machines would run them; then ``export``.

It prints both wall times, the speed-up (a)/(b), the cost per submission and the load
average, and checks that (b)'s exported grades.csv is (a)'s byte for byte (exit 1 if not).
On this 2-core machine the two shards share the cores, the disk and the memory: the speed-up
is what one machine gives; two machines were not measured.

    .venv/bin/python benchmarks/bench_shards.py [--n 12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bench_grading import ASSIGNMENT, make_class  # noqa: E402
from postgres_server import postgres_server  # noqa: E402

from autograder.gradebook import shard_share  # noqa: E402
from autograder.nbgrader_run import release, scratch_course  # noqa: E402


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(proc.args)} exited {proc.returncode}:\n{out[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12, help="students in the class")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlc-bench-shards-") as tmp_name, \
            postgres_server(("single", "sharded")) as urls:
        tmp = Path(tmp_name)
        released = release(ASSIGNMENT, root=scratch_course(tmp / "release-course", [ASSIGNMENT]),
                           release_dir=tmp / "release") / f"{ASSIGNMENT}.ipynb"
        make_class(released, args.n, tmp / "class")
        shares = [len(shard_share([f"s{k:02d}" for k in range(args.n)], j, 2)) for j in (0, 1)]
        print(f"{args.n} submissions of {ASSIGNMENT}; shards of {shares[0]} and {shares[1]}; "
              f"load average before: {os.getloadavg()[0]:.2f}")

        start = time.monotonic()
        finish(cli("grade", ASSIGNMENT, str(tmp / "class"), "--out", str(tmp / "single"), "--jobs", "1",
                   "--db", urls["single"], "--course", str(scratch_course(tmp / "single-course", [ASSIGNMENT]))))
        single = time.monotonic() - start

        machines = [scratch_course(tmp / f"machine-{k}", [ASSIGNMENT]) for k in (0, 1)]
        start = time.monotonic()
        finish(cli("register", ASSIGNMENT, "--db", urls["sharded"], "--course", str(machines[0])))
        shards = [cli("grade", ASSIGNMENT, str(tmp / "class"), "--out", str(tmp / f"shard-{k}"), "--jobs", "1",
                      "--shard", f"{k}/2", "--db", urls["sharded"], "--course", str(machines[k]),
                      "--kernel-uids", f"{61080 + 10 * k}-{61089 + 10 * k}") for k in (0, 1)]
        for proc in shards:
            finish(proc)
        finish(cli("export", ASSIGNMENT, "--db", urls["sharded"], "--out", str(tmp / "export"),
                   "--course", str(machines[0]), "--feedback", str(tmp / "shard-0"), str(tmp / "shard-1")))
        sharded = time.monotonic() - start

        same = (tmp / "export" / "grades.csv").read_bytes() == (tmp / "single" / "grades.csv").read_bytes()
        print(f"(a) one grader, --jobs 1:          {single:7.1f} s  ({single / args.n:.1f} s per submission)")
        print(f"(b) two shards, --jobs 1 each:     {sharded:7.1f} s  (register + shards + export)")
        print(f"speed-up (a)/(b): {single / sharded:.2f}x; load average after: {os.getloadavg()[0]:.2f}")
        print(f"exported grades.csv identical to the single grader's: {same}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
