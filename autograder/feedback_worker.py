"""Run feedback generation in worker processes, one student at a time, with a time limit.

:class:`FeedbackWorker` starts ``python -m autograder.feedback_worker TARGET``: a process that
reads a config line, then one student per line, calls ``TARGET(config, student)``
(:func:`autograder.feedback.generate_one` when grading) and answers one JSON line each. If an
answer takes longer than the limit, the worker is killed and the next call starts a new one.
This module uses only the standard library, so that a worker starts fast; the target imports
what it needs.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class FeedbackTimeout(RuntimeError):
    pass


class FeedbackWorker:
    """A ``python -m autograder.feedback_worker`` process that makes feedback pages one student at a
    time; :meth:`run` waits at most ``timeout`` seconds, then kills the worker (the next call
    starts a fresh one). ``config`` (course root, gradebook URL, assignment) goes over its stdin,
    never on a command line. ``target`` (``module:function``, called as ``f(config, student)``)
    is :func:`generate_one` except in tests."""

    def __init__(self, config: dict, log_path: Path | None = None, target: str = "autograder.feedback:generate_one",
                 python_path: list[str] | None = None):
        self.config, self.log_path, self.target = config, log_path, target
        self.python_path = python_path or []
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        from autograder import REPO_ROOT

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *self.python_path, env.get("PYTHONPATH", "")])
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.feedback_worker", self.target],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=env, cwd=str(REPO_ROOT), start_new_session=True)
        self.proc.stdin.write(json.dumps(self.config).encode() + b"\n")
        self.proc.stdin.flush()
        self._buffer = b""

    def run(self, student: str, timeout: float) -> dict:
        """{"ok": True} or {"ok": False, "error": ...}; raises :class:`FeedbackTimeout`."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps({"student": student}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.close()
            return {"ok": False, "error": "the feedback worker exited"}
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise FeedbackTimeout(f"feedback took more than {timeout:g} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    self.close()
                    return {"ok": False, "error": "the feedback worker died"}
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            if self._log is not subprocess.DEVNULL:
                self._log.close()
            self.proc = None


def _worker(target: str) -> None:
    """The worker's loop: a config line, then one {"student": ...} line per page to make."""
    import importlib
    import traceback

    # The protocol has stdout to itself; anything the libraries print goes to stderr (the log).
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s feedback %(message)s"))
    logger = logging.getLogger("autograder.grade")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    config = json.loads(sys.stdin.readline())
    for line in sys.stdin:
        student = json.loads(line)["student"]
        try:
            fn(config, student)
            answer = {"ok": True}
        except Exception as exc:  # nbgrader reports any failure as an exception
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


if __name__ == "__main__":
    _worker(sys.argv[1])
