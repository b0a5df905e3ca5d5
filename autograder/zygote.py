"""A fork server for grading kernels: import the course's libraries once, fork a kernel per notebook.

Starting a fresh IPython kernel and importing TensorFlow costs 10-25 s of CPU on the grading
machine, more than running most assignments. This process (the "zygote") imports the
libraries once, then forks one kernel per submission on request. Each forked kernel is a
fresh process that is used for one notebook only: it shares nothing with the others but the
read-only, copy-on-write memory of the imports.

Protocol, over a Unix socket given by ``--socket``: the client sends one JSON line
``{"argv": [...], "cwd": ..., "env": {...}, "limits": {...}, "uid": int|null, "log": path}``;
the zygote forks, answers ``{"pid": N}``, and keeps the connection open until the kernel
exits, then sends ``{"exit": CODE}`` (negative: killed by that signal) and closes it.
``autograder.kernels`` is the client side (a jupyter_client provisioner).

Run with ``python -m autograder.zygote --socket PATH [--preload MODULE ...]``; it prints
``ready`` on stdout once the imports are done.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys

# The modules a grading kernel imports anyway. TensorFlow's runtime (thread pools, devices) is
# created lazily on the first op, after the fork, so each kernel gets its own.
DEFAULT_PRELOAD = ["ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "numpy", "matplotlib",
                   "matplotlib.pyplot", "matplotlib_inline.backend_inline", "tensorflow", "keras",
                   "sklearn.datasets", "dlcourse", "dlcourse.data", "dlcourse.plots"]

LIMITS = {  # JSON key -> resource limit
    "cpu_seconds": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_DATA,   # heap + anonymous mappings: NumPy/TF allocations
    "processes": resource.RLIMIT_NPROC,     # per user id: needs a uid of the kernel's own
    "file_bytes": resource.RLIMIT_FSIZE,    # any single file the kernel writes
}


def _apply_limits(limits: dict) -> None:
    for key, value in (limits or {}).items():
        if value is None:
            continue
        which = LIMITS[key]
        if key == "memory_bytes":
            # Data already mapped by the imports counts too: the cap is on top of it.
            value += _data_bytes_in_use()
        resource.setrlimit(which, (int(value), int(value)))


def _data_bytes_in_use() -> int:
    """The process's current data segment size (VmData), which RLIMIT_DATA is checked against."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_kernel(request: dict) -> None:
    """In the forked child: become a fresh kernel process and run until shut down."""
    os.setsid()  # own process group: the client signals the kernel and anything it started
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the kernel's interrupt
    log = os.open(request.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from autograder.environment import restrict

    os.environ.clear()
    os.environ.update(restrict(request.get("env") or {}))
    os.chdir(request.get("cwd") or "/")
    uid = request.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _apply_limits(request.get("limits"))
    sys.argv = ["ipykernel_launcher", *request["argv"]]
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(request["argv"])
    _retarget_log_handlers()
    app.start()


def _retarget_log_handlers() -> None:
    """Log handlers made during the preload write to the zygote's own stdout/stderr; point them
    at the kernel's streams, where they would be had the library been imported in the kernel."""
    import logging

    loggers = [logging.getLogger()] + [l for l in logging.Logger.manager.loggerDict.values()
                                       if isinstance(l, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                if handler.stream is sys.__stdout__:
                    handler.setStream(sys.stdout)
                elif handler.stream is sys.__stderr__:
                    handler.setStream(sys.stderr)


def serve(sock_path: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(64)
    print("ready", flush=True)
    children: dict[int, socket.socket] = {}
    while True:
        readable, _, _ = select.select([server, *children.values()], [], [], 0.1)
        # {"signal": N} from a kernel's client: signal that kernel's process group.
        for pid, conn in list(children.items()):
            if conn in readable:
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                for line in data.splitlines():
                    try:
                        os.killpg(pid, int(json.loads(line)["signal"]))
                    except (OSError, ValueError, KeyError):
                        pass
        if server in readable:
            conn, _ = server.accept()
            with conn.makefile("r") as f:
                line = f.readline()
            if not line:
                conn.close()
                continue
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                for other in children.values():
                    other.close()
                code = 0
                try:
                    _run_kernel(request)
                except BaseException:
                    import traceback

                    traceback.print_exc()  # into the kernel's log
                    sys.stderr.flush()
                    code = 1
                finally:
                    os._exit(code)
            children[pid] = conn
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        # Reap finished kernels and tell their clients how they ended.
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                try:
                    conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
                except OSError:
                    pass
                conn.close()
        # The client went away (grading finished or was killed): stop, and take the kernels
        # with us. stdin is a pipe from the client; EOF on it means the client is gone.
        if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.buffer.read1(1):
            for pid in list(children):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.zygote", description=__doc__)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--preload", nargs="*", default=DEFAULT_PRELOAD)
    args = parser.parse_args(argv)
    # A kernel's environment: what ipykernel sets before user code runs, set before the imports
    # so that matplotlib picks the inline backend exactly as in a normal kernel.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # An IPython kernel is interactive (it sets sys.ps1); TensorFlow reads that on import and
    # then logs to stdout, not stderr (nbgrader zeroes a test cell that writes to stderr).
    sys.ps1 = "In : "
    for name in args.preload:
        importlib.import_module(name)
    serve(args.socket)


if __name__ == "__main__":
    main()
