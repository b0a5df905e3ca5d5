"""Kernel uids are claimed per grading run (autograder.sandbox.claimed_kernel_uids, issue #11).

Two runs on the same uids would kill each other's kernels (each run's cleanup kills every
process of a uid), so a second run must fail at once, naming the first. The holder here is a
real second process; the uids are far from every range a real run or another test uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from autograder.sandbox import SandboxUnavailable, claimed_kernel_uids

UIDS = range(62900, 62910)      # held by the other process
OVERLAP = range(62905, 62915)
DISJOINT = range(62910, 62920)

HOLDER = """
import sys, time
from autograder.sandbox import claimed_kernel_uids
with claimed_kernel_uids(range({start}, {stop})):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder():
    """Another process (another grading run) holding UIDS."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(start=UIDS.start, stop=UIDS.stop)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_an_overlapping_claim_fails_naming_the_other_run(holder):
    with pytest.raises(SandboxUnavailable, match=rf"(?s)in use by another grading run: process {holder.pid} "
                                                 r"\(.*claimed_kernel_uids"):
        with claimed_kernel_uids(OVERLAP):
            pass
    with claimed_kernel_uids(DISJOINT):  # a disjoint range is free
        pass


def test_the_claim_ends_with_the_run_even_when_it_is_killed(holder):
    holder.send_signal(signal.SIGKILL)  # a grader killed mid-run: the kernel frees its locks
    holder.wait(timeout=30)
    with claimed_kernel_uids(UIDS):
        pass


def test_runs_in_one_process_share_a_claim_and_release_it():
    with claimed_kernel_uids(UIDS), claimed_kernel_uids(UIDS):  # e.g. two grade() calls in the test suite
        pass
    probe = subprocess.run([sys.executable, "-c", HOLDER.format(start=UIDS.start, stop=UIDS.stop)
                            .replace("time.sleep(120)", "pass")], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and "held" in probe.stdout, probe.stderr


def test_grading_refuses_uids_another_run_holds(holder, tmp_path):
    from autograder.grading import GradeCommandError, _start_kernels

    run = SimpleNamespace(kernel_env={}, judge=False)
    sandbox = SimpleNamespace(kernel_uids=OVERLAP,
                              start_zygote=lambda *a: pytest.fail("kernels started on claimed uids"))
    with pytest.raises(GradeCommandError, match=f"grading sandbox cannot start: .*process {holder.pid}"):
        with _start_kernels(run, sandbox, tmp_path):
            pass
