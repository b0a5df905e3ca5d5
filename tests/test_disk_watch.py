"""The disk cap of a kernel's scratch folder (autograder.grading.DiskWatch, issue #11).

RLIMIT_FSIZE caps one file; a kernel that writes many files could still fill the grader's disk
under the other students and the gradebook. These run in milliseconds on a temporary folder;
the hostile class of test_grade.py has a student (h_disk) who meets the cap in the sandbox.
"""

from __future__ import annotations

import os
import threading

from autograder.grading import DiskWatch, Limits, scratch_usage


def test_usage_counts_allocated_bytes_and_entries_without_following_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_bytes(b"x" * 100_000)
    (tmp_path / "two").write_bytes(b"y" * 50_000)
    os.symlink("/usr", tmp_path / "link")  # not followed: /usr is not the kernel's to count
    with open(tmp_path / "sparse", "wb") as f:  # 1 GB apparent size, almost nothing allocated
        f.truncate(2**30)
    used, entries = scratch_usage(tmp_path)
    assert entries == 5
    assert 150_000 <= used < 1_000_000, used


def test_usage_of_a_folder_that_is_gone_is_zero(tmp_path):
    assert scratch_usage(tmp_path / "missing") == (0, 0)


def _watch(folder, **limits):
    fired = threading.Event()
    details = []
    watch = DiskWatch(folder, limits.get("max_bytes"), limits.get("max_entries"),
                      lambda detail: (details.append(detail), fired.set()), interval=0.02)
    watch.start()
    return watch, fired, details


def test_the_watch_fires_once_over_the_byte_limit(tmp_path):
    watch, fired, details = _watch(tmp_path, max_bytes=2**20, max_entries=None)
    try:
        (tmp_path / "small").write_bytes(b"x" * 100_000)
        assert not fired.wait(0.2), "fired under the limit"
        for i in range(3):
            (tmp_path / f"big{i}").write_bytes(b"x" * 2**19)
        assert fired.wait(5), "did not fire over the limit"
    finally:
        watch.stop()
    assert details == ["more than 1 MB written to its folder"]


def test_the_watch_fires_over_the_entry_limit(tmp_path):
    watch, fired, details = _watch(tmp_path, max_bytes=None, max_entries=50)
    try:
        for i in range(60):
            (tmp_path / f"f{i}").touch()
        assert fired.wait(5)
    finally:
        watch.stop()
    assert details == ["more than 50 files and folders written to its folder"]


def test_a_stopped_watch_never_fires(tmp_path):
    watch, fired, _ = _watch(tmp_path, max_bytes=1000, max_entries=None)
    watch.stop()
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    assert not fired.wait(0.2)
    assert not watch.is_alive()


def test_the_default_limits():
    assert Limits().disk_bytes == 2**30 and Limits().disk_entries == 100_000
