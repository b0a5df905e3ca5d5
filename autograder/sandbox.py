"""The grading sandbox: bubblewrap around the kernel server, a user id per student's kernel.

``bwrap`` (Debian package ``bubblewrap``) starts the zygote (:mod:`autograder.zygote`) in new
network, PID, IPC and UTS namespaces, with a filesystem made only of what a kernel needs:

- read-only: ``/usr`` (and the ``/bin``, ``/lib`` links), ``/etc``, the Python installation,
  the course's virtual environment, and the course packages ``dlcourse/`` and ``autograder/``;
- read-write: the grading run's scratch folder (a sub-folder per student, owned by that
  student's kernel user, mode 0700) and the socket folder, in which each kernel has a private
  folder for its ZeroMQ ``ipc`` sockets and connection file (:meth:`Sandbox.socket_dir`: 0700,
  owned by its uid, a random name; with no network, a kernel cannot use the grader's TCP
  loopback ports);
- a private ``/tmp`` (tmpfs, size-capped), ``/proc`` and ``/dev``;
- nothing else: not ``solutions/`` (hidden tests), not the gradebook, not ``submitted/`` or
  ``autograded/`` (other students), not the instructor's home.

Each forked kernel then drops from root to a user id of its own (``setuid``; the zygote keeps
only ``CAP_SETUID``/``CAP_SETGID`` for that), so kernels cannot read each other's scratch
folders and ``RLIMIT_NPROC`` caps each kernel's processes. The user ids come from a pool
(``--jobs`` of them are in use at a time). When a notebook ends, the grader shuts its kernel
down and then kills every process left under its user id (:meth:`Sandbox.kill_uid`: a helper
that runs as that uid calls ``kill(-1, SIGKILL)``, which reaches every process of the uid at
once, even those that double-forked, called ``setsid`` or left the process group, and lets none
of them fork in between); it checks in ``/proc`` that none is left, and only then removes the
scratch folder and gives the uid back to the pool. So nothing of one student still runs when the
next student's kernel starts on the same uid. Memory, CPU time and file size are
``setrlimit`` caps set by the zygote; the notebook's wall clock and its output size are watched
by the grader (:mod:`autograder.grading`). ``--die-with-parent`` takes every kernel down with
the grader if it is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from autograder import REPO_ROOT

FIRST_KERNEL_UID = 61000   # kernels run as uids from FIRST_KERNEL_UID on (no passwd entry needed)
KERNEL_UIDS = range(FIRST_KERNEL_UID, FIRST_KERNEL_UID + 100)
TMPFS_BYTES = 256 * 2**20
SHELL = "/bin/sh"          # runs `kill -s KILL -- -1` as a kernel's uid
KILL_SECONDS = 10          # how long the processes of a uid may take to die

log = logging.getLogger("autograder.grade")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create the namespaces on this machine."""


class KernelCleanupError(RuntimeError):
    """Processes of a kernel's uid survived SIGKILL (the uid is then never used again)."""


def processes_of(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes with ``uid`` as a real, effective or saved uid."""
    return processes_by_uid(range(uid, uid + 1))[uid]


def processes_by_uid(uids: range) -> dict[int, list[int]]:
    """{uid: pids of its live processes} for every uid in ``uids`` (one pass over /proc)."""
    found: dict[int, list[int]] = {uid: [] for uid in uids}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        state = fields.get("State", "").split()
        uids_of = fields.get("Uid", "").split()
        if state and state[0] in ("Z", "X"):
            continue
        for uid in {int(u) for u in uids_of[:3]}:
            if uid in found:
                found[uid].append(int(entry.name))
    return found


def parse_uid_range(text: str) -> range:
    """``"61000-61099"`` (both ends included) -> ``range(61000, 61100)``."""
    first, sep, last = str(text).strip().partition("-")
    try:
        lo, hi = int(first), int(last if sep else first)
    except ValueError:
        raise ValueError(f"kernel uids {text!r}: expected FIRST-LAST, e.g. 61000-61099") from None
    if not 0 < lo <= hi < 2**31 - 1:
        raise ValueError(f"kernel uids {text!r}: expected 0 < FIRST <= LAST < 2147483647")
    return range(lo, hi + 1)


def configured_kernel_uids() -> range:
    """``c.GradingSandbox.kernel_uids`` of the course's nbgrader_config.py, else the default."""
    from traitlets.config.loader import PyFileConfigLoader

    from autograder import REPO_ROOT

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    value = cfg.GradingSandbox.get("kernel_uids") if "GradingSandbox" in cfg else None
    return parse_uid_range(value) if value else KERNEL_UIDS


def check_kernel_uids(uids: range) -> None:
    """Refuse uids that are not free: a kernel must share its uid (files, signals, process
    limit) with nothing else on this machine. Raises :class:`SandboxUnavailable`."""
    import grp
    import pwd

    how = ("choose a free range with --kernel-uids FIRST-LAST or c.GradingSandbox.kernel_uids "
           "in nbgrader_config.py")
    accounts = [f"{u.pw_uid} ({u.pw_name})" for u in pwd.getpwall() if u.pw_uid in uids]
    if accounts:
        raise SandboxUnavailable(f"kernel uids {uids.start}-{uids.stop - 1} include existing accounts: "
                                 f"{', '.join(accounts[:5])}; {how}")
    groups = [f"{g.gr_gid} ({g.gr_name})" for g in grp.getgrall() if g.gr_gid in uids]
    if groups:  # kernels also run as gid == uid
        raise SandboxUnavailable(f"kernel uids {uids.start}-{uids.stop - 1} include existing groups: "
                                 f"{', '.join(groups[:5])}; {how}")
    # getpwall() may not list every source (LDAP, NIS, systemd's dynamic users): ask per uid too.
    for uid in uids:
        for kind, lookup in (("account", lambda: pwd.getpwuid(uid).pw_name), ("group", lambda: grp.getgrgid(uid).gr_name)):
            try:
                name = lookup()
            except KeyError:
                continue
            raise SandboxUnavailable(f"kernel uid {uid} belongs to the {kind} {name!r}; {how}")
    check_no_processes(uids)


def check_no_processes(uids: range) -> None:
    """Refuse uids under which something runs already (another grading run's kernels)."""
    busy = {uid: pids for uid, pids in processes_by_uid(uids).items() if pids}
    if busy:
        uid, pids = next(iter(sorted(busy.items())))
        raise SandboxUnavailable(f"kernel uid {uid} already runs processes {pids[:5]} ({_cmdline(pids[0])}; "
                                 "another grading run with the same uids?); choose a free range with "
                                 "--kernel-uids FIRST-LAST or c.GradingSandbox.kernel_uids in nbgrader_config.py")


# Kernel uids are claimed for the time a run's kernels exist, with POSIX record locks on one
# byte per uid of one machine-wide file: overlapping ranges conflict exactly, the kernel frees
# the claim of a grader that dies (even by SIGKILL), and F_GETLK names the holder. Without it,
# two runs started at once on the same uids both pass the busy check, and each one's cleanup
# (kill every process of the uid) kills the other's kernels: another student's grade changes.
# POSIX locks belong to the process, so runs in one process (the test suite) share a claim;
# the file is opened once per process and never closed (closing any descriptor of it would
# drop every lock the process holds on it).
UID_LOCK_FILE = Path("/run/lock/dlcourse-kernel-uids.lock")
_uid_lock = {"fd": None, "held": {}}   # the process's descriptor; uid range -> how many hold it
_uid_lock_mutex = threading.Lock()


def _uid_lock_fd() -> int:
    if _uid_lock["fd"] is None:
        for path in (UID_LOCK_FILE, Path("/tmp") / UID_LOCK_FILE.name):  # /run/lock may be missing
            try:
                _uid_lock["fd"] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                break
            except OSError:
                continue
        else:
            raise SandboxUnavailable(f"cannot open a lock file for the kernel uids ({UID_LOCK_FILE} or /tmp)")
    return _uid_lock["fd"]


def _lock_holder(fd: int, uids: range) -> int | None:
    """The pid of a process that holds a lock on part of ``uids`` (None if none does now)."""
    import fcntl
    import struct

    # struct flock on Linux: l_type, l_whence (short); l_start, l_len (off_t); l_pid (pid_t).
    query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, uids.start, len(uids), 0)
    l_type, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, query))
    return None if l_type == fcntl.F_UNLCK else pid


@contextlib.contextmanager
def claimed_kernel_uids(uids: range):
    """Hold ``uids`` for this process while the block runs; raise :class:`SandboxUnavailable`,
    naming the other grading run, if another process holds any of them."""
    import fcntl

    with _uid_lock_mutex:
        fd = _uid_lock_fd()
        if not _uid_lock["held"].get(uids):
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, len(uids), uids.start, os.SEEK_SET)
            except OSError:
                pid = _lock_holder(fd, uids)
                who = f"process {pid} ({_cmdline(pid)})" if pid else "another process"
                raise SandboxUnavailable(
                    f"kernel uids {uids.start}-{uids.stop - 1} are in use by another grading run: "
                    f"{who}; wait for it, or choose a free range with --kernel-uids FIRST-LAST or "
                    "c.GradingSandbox.kernel_uids in nbgrader_config.py") from None
        _uid_lock["held"][uids] = _uid_lock["held"].get(uids, 0) + 1
    try:
        yield uids
    finally:
        with _uid_lock_mutex:
            _uid_lock["held"][uids] -= 1
            if not _uid_lock["held"][uids]:
                del _uid_lock["held"][uids]
                fcntl.lockf(fd, fcntl.LOCK_UN, len(uids), uids.start, os.SEEK_SET)


def _cmdline(pid: int) -> str:
    """What a process runs, for an error message (short; "?" once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120] or "?"
    except OSError:
        return "?"


class Sandbox:
    def __init__(self, bwrap: str, processes: int = 64, kernel_uids: range = KERNEL_UIDS):
        self.bwrap = bwrap
        self.processes = processes
        self.kernel_uids = kernel_uids
        self._free = list(kernel_uids)       # lowest first
        self._uids = threading.Condition()
        self._socket_dirs: dict[int, Path] = {}  # uid in use -> its socket folder
        self.sockets: Path | None = None

    @classmethod
    def for_course(cls, course_root: Path | None = None, processes: int = 64,
                   kernel_uids: range | None = None) -> "Sandbox":
        """Check that bubblewrap works here and that the kernel uids are free; raise
        :class:`SandboxUnavailable` with the reason. ``kernel_uids`` defaults to the course's
        ``c.GradingSandbox.kernel_uids`` (nbgrader_config.py), else :data:`KERNEL_UIDS`."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
        if os.geteuid() != 0:
            raise SandboxUnavailable("the sandbox gives each kernel a user id of its own, "
                                     "which needs the grader to run as root")
        if shutil.which(SHELL) is None:
            raise SandboxUnavailable(f"{SHELL} is missing (it kills what a kernel leaves behind)")
        probe = subprocess.run([bwrap, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/",
                                "--proc", "/proc", "--dev", "/dev", "true"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            raise SandboxUnavailable(f"bwrap cannot create namespaces here: {probe.stderr.strip()}")
        uids = kernel_uids if kernel_uids is not None else configured_kernel_uids()
        check_kernel_uids(uids)
        return cls(bwrap, processes=processes, kernel_uids=uids)

    def readable_paths(self) -> list[Path]:
        """What the kernels may read (read-only binds), besides /usr and /etc."""
        paths = {Path(sys.base_prefix), Path(sys.prefix), REPO_ROOT / "dlcourse", REPO_ROOT / "autograder"}
        return sorted(p.resolve() for p in paths if p.exists())

    def command(self, cmd: list[str], scratch: Path, sockets: Path) -> list[str]:
        args = [self.bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--die-with-parent", "--new-session",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
                "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/") / link
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), str(target)]
            elif target.exists():
                args += ["--ro-bind", str(target), str(target)]
        readable = self.readable_paths()
        # bwrap makes missing parent folders of a mount point 0700 (root only): make them
        # 0755 first, or the kernels (other users) could not reach what is mounted there.
        parents = sorted({a for p in [*readable, scratch, sockets] for a in p.parents
                          if a != Path("/") and a not in (Path("/usr"), Path("/etc"), Path("/tmp"))
                          and not any(a == r or a.is_relative_to(r) for r in readable)},
                         key=lambda a: len(a.parts))
        for parent in parents:
            args += ["--perms", "0755", "--dir", str(parent)]
        for path in readable:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(scratch), str(scratch), "--bind", str(sockets), str(sockets),
                 "--chdir", str(scratch)]
        return args + ["--", *cmd]

    def start_zygote(self, run, tmp: Path):
        from autograder.kernels import Zygote

        self.sockets = Path(tmp) / "sockets"
        self.sockets.mkdir(parents=True, exist_ok=True)
        # Each kernel has a private folder in here (socket_dir); kernels can reach their own
        # but cannot list or write this one. The zygote's own socket lives in a root-only
        # folder, so a kernel cannot ask for a kernel.
        os.chmod(self.sockets, 0o711)
        zygote_dir = self.sockets / "zygote"
        zygote_dir.mkdir(exist_ok=True)
        os.chmod(zygote_dir, 0o700)
        os.chmod(run.scratch_root, 0o711)
        os.chmod(Path(tmp), 0o711)
        run.kernel_options = self.kernel_options
        run.kernel_end = self.end_kernel
        return Zygote(run.kernel_env, socket_dir=zygote_dir,
                      wrap=lambda cmd: self.command(cmd, run.scratch_root, self.sockets))

    # -----------------------------------------------------------------------------------------
    # Kernel user ids: a pool, and nothing of one kernel left when the next gets the uid

    def acquire_uid(self) -> int:
        with self._uids:
            while not self._free:
                self._uids.wait()
            return self._free.pop(0)

    def release_uid(self, uid: int) -> None:
        with self._uids:
            self._free.append(uid)
            self._free.sort()
            self._uids.notify()

    @staticmethod
    def kill_uid(uid: int, timeout: float = KILL_SECONDS) -> int:
        """Kill every process of ``uid``; return how many there were. Raises
        :class:`KernelCleanupError` if some are still alive after ``timeout`` seconds."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while True:
            alive = processes_of(uid)
            if not alive:
                return len(seen)
            seen.update(alive)
            if time.monotonic() > deadline:
                raise KernelCleanupError(f"processes of kernel uid {uid} survived SIGKILL: {alive}")
            # kill(-1) from a process of that uid: every process it may signal, but itself.
            subprocess.run([SHELL, "-c", "kill -s KILL -- -1"], user=uid, group=uid, extra_groups=[],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout, check=False)
            time.sleep(0.02)

    def end_kernel(self, student: str, uid: int, scratch: Path) -> int:
        """After a notebook (its kernel already shut down): kill what is left under its uid,
        remove its scratch folder, give the uid back. Returns the number of processes killed."""
        sockets = self._socket_dirs.pop(uid, None)
        try:
            killed = self.kill_uid(uid)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if sockets is not None:
                shutil.rmtree(sockets, ignore_errors=True)
        self.release_uid(uid)  # not reached if processes survived: the uid is not given back
        return killed

    def socket_dir(self, uid: int) -> Path:
        """A kernel's own folder for its ZeroMQ ipc sockets and connection file: made by the
        grader, named with 64 random bits (nothing to predict and squat on), mode 0700 and
        owned by the kernel's uid, in a folder that kernels can cross but not list or write."""
        path = self.sockets / f"k-{secrets.token_hex(8)}"
        path.mkdir(mode=0o700)
        os.chown(path, uid, uid)
        os.chmod(path, 0o700)
        self._socket_dirs[uid] = path
        return path

    def kernel_options(self, student: str, scratch: Path) -> dict:
        """ForkKernelManager settings for one student's kernel (called by the grading run)."""
        uid = self.acquire_uid()
        self.kill_uid(uid)  # nothing of an earlier run runs as this uid (if it fails: not released)
        os.chown(scratch, uid, uid)
        os.chmod(scratch, 0o700)
        sockets = self.socket_dir(uid)
        return {"uid": uid, "transport": "ipc", "ip": str(sockets / "kernel"),
                "connection_file": str(sockets / "kernel.json")}
