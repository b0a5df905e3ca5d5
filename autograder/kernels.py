"""Grading kernels forked from a warm zygote (see :mod:`autograder.zygote`), as a jupyter_client
kernel manager that nbgrader's ``Execute`` preprocessor (nbclient) drives like any other.

- :class:`Zygote` starts the fork server (optionally inside the sandbox) and hands out kernels.
- :class:`ForkProvisioner` is a jupyter_client provisioner whose ``launch_kernel`` asks the
  zygote for a kernel instead of spawning ``python -m ipykernel``; everything else (ports,
  connection files, signals, shutdown) is jupyter_client's own ``LocalProvisioner``.
- :class:`ForkKernelManager` is an ``AsyncKernelManager`` that uses that provisioner.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Any as AnyTrait

from autograder.environment import restrict


class KernelStartError(RuntimeError):
    """The zygote could not be started or did not fork a kernel."""


class ForkedProcess:
    """A Popen look-alike for a kernel forked by the zygote (its parent), for LocalProvisioner."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, conn: socket.socket):
        self.pid = pid
        self._conn = conn
        self._buffer = b""
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._conn], [], [], 0)
            if ready:
                self._read_exit()
        return self.returncode

    def _read_exit(self) -> None:
        chunk = self._conn.recv(4096)
        self._buffer += chunk
        if b"\n" in self._buffer:
            self.returncode = json.loads(self._buffer.split(b"\n")[0])["exit"]
        elif not chunk:  # the zygote is gone, and the kernel with it
            self.returncode = -signal.SIGKILL
        if self.returncode is not None:
            self._conn.close()

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        # Through the zygote: it is the kernel's parent, and inside a sandbox the kernel's pid
        # is a pid of the sandbox's namespace, not one of ours. It signals the whole process
        # group, so whatever the kernel started gets the signal too.
        if self.poll() is None:
            try:
                self._conn.sendall(json.dumps({"signal": int(signum)}).encode() + b"\n")
            except OSError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The fork server process and its client. Use as a context manager.

    ``wrap`` is a function from the zygote's command line to the command that runs it (the
    sandbox); ``env`` is the environment of the zygote and of every kernel.
    """

    def __init__(self, env: dict[str, str], preload: list[str] | None = None,
                 wrap=None, socket_dir: Path | None = None, startup_timeout: float = 300):
        self._own_dir = socket_dir is None
        self.socket_dir = Path(socket_dir or tempfile.mkdtemp(prefix="dlc-zygote-"))
        self.socket_path = self.socket_dir / "zygote.sock"
        self.env = restrict(env)  # a forked kernel's /proc/self/environ shows this one
        cmd = [sys.executable, "-m", "autograder.zygote", "--socket", str(self.socket_path)]
        if preload is not None:
            cmd += ["--preload", *preload]
        if wrap is not None:
            cmd = wrap(cmd)
        self.log_path = self.socket_dir / "zygote.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        self._lock = threading.Lock()
        ready = self._wait_ready(startup_timeout)
        if not ready:
            self.close()
            raise KernelStartError(f"the grading kernel server did not start:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                return self.proc.stdout.readline().strip() == b"ready"
            if self.proc.poll() is not None:
                return False
        return False

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str], limits: dict | None = None,
              uid: int | None = None, log: str | None = None) -> ForkedProcess:
        """Fork a kernel that runs ``ipykernel`` with ``argv`` (``-f CONNECTION_FILE ...``)."""
        if self.proc.poll() is not None:
            raise KernelStartError(f"the grading kernel server has exited:\n{self.log_tail()}")
        request = {"argv": argv, "cwd": cwd, "env": env, "limits": limits or {}, "uid": uid, "log": log}
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(60)
        conn.connect(str(self.socket_path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                raise KernelStartError(f"the grading kernel server did not answer:\n{self.log_tail()}")
            line += chunk
        conn.settimeout(None)
        return ForkedProcess(json.loads(line)["pid"], conn)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: the zygote kills its kernels and exits
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        if self._own_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ForkProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernel process comes from the zygote instead of Popen."""

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        km = self.parent
        # cmd is the kernelspec's argv: [python, -m, ipykernel_launcher, -f, FILE, extra...];
        # the zygote runs the kernel app itself, so only the arguments after the module matter.
        argv = cmd[cmd.index("-f"):] if "-f" in cmd else cmd[3:]
        # Only the manager's own environment, from the allowlist: not the launch environment
        # jupyter_client built (a copy of ours, with the kernelspec's and its JPY_* variables).
        env = restrict(km.kernel_env or {})
        cwd = str(km.kernel_cwd or kwargs.get("cwd") or os.getcwd())
        if km.uid is not None:
            # jupyter_client wrote it 0600 for us; the kernel runs as its own user.
            os.chown(km.connection_file, km.uid, km.uid)
        self.process = km.zygote.spawn(argv, cwd=cwd, env=env, limits=km.limits, uid=km.uid,
                                       log=km.kernel_log)
        self.pid = self.process.pid
        self.pgid = None  # signals go through ForkedProcess (the zygote), never os.killpg here
        self.cwd = cwd
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        if self.process:
            self.process.send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        if self.process:
            self.process.kill()

    async def terminate(self, restart: bool = False) -> None:
        if self.process:
            self.process.terminate()


class ForkKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernels are forked by a :class:`Zygote`."""

    zygote = AnyTrait(help="the Zygote that forks this manager's kernels")
    limits = AnyTrait(None, allow_none=True, help="resource limits of the kernel (see zygote.LIMITS)")
    uid = AnyTrait(None, allow_none=True, help="user id the kernel runs as")
    kernel_env = AnyTrait(None, allow_none=True, help="environment of the kernel")
    kernel_cwd = AnyTrait(None, allow_none=True, help="working directory of the kernel")
    kernel_log = AnyTrait(None, allow_none=True, help="file for the kernel's own stdout/stderr")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Every notebook is run by the same Python kernel, whatever kernelspec it names (a
        # student's notebook may name a kernel this machine does not have).
        self.kernel_name = "python3"
        self._kernel_spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                             "{connection_file}"],
                                       display_name="Python 3 (grading)", language="python")

    @property
    def kernel_spec(self):
        return self._kernel_spec

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.get("kernel_id") or os.urandom(8).hex()
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self._kernel_spec,
                                               parent=self)
        return await super()._async_pre_start_kernel(**kw)
