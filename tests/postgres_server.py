"""A throw-away PostgreSQL server from Debian's packages, for the tests and the benchmarks.

A fresh cluster in a temporary folder, listening only on a Unix socket there (no TCP), run as
an unprivileged user (the server refuses to run as root), stopped and deleted on exit.
``make sysdeps`` installs the ``postgresql`` package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class NoPostgres(RuntimeError):
    """The server binaries are not installed."""


def pg_bindir() -> Path | None:
    """The newest Debian PostgreSQL server install (/usr/lib/postgresql/<major>/bin)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if Path(p).with_name("pg_ctl").exists() and Path(p).with_name("postgres").exists()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def _server_user() -> pwd.struct_passwd:
    """Who runs the server: ourselves, or when we are root the package's `postgres` user."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no `postgres` or `nobody` user to run the server as")


@contextlib.contextmanager
def postgres_server(databases: tuple[str, ...] = ("gradebook",)) -> Iterator[dict[str, str]]:
    """Start a server; yield {database name: SQLAlchemy URL}; stop and delete it afterwards."""
    bindir = pg_bindir()
    if bindir is None:
        raise NoPostgres("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin/initdb; "
                         "apt-get install postgresql, or `make sysdeps`)")
    user = _server_user()

    def as_server_user(cmd: list[str]) -> subprocess.CompletedProcess:
        switch = {} if os.geteuid() != 0 else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(base)}
        return subprocess.run([str(bindir / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                              env=env, timeout=120, **switch)

    # Not under pytest's tmp_path (nor $TMPDIR, as root): its parents are private to us, and
    # the server user must reach its data directory and socket.
    base = Path(tempfile.mkdtemp(prefix="dlc-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    started = False
    try:
        proc = as_server_user(["initdb", "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8",
                               "--no-locale", "--no-sync"])
        assert proc.returncode == 0, f"initdb failed:\n{proc.stdout}\n{proc.stderr}"
        with open(data / "postgresql.conf", "a") as conf:
            # No TCP at all: the socket in `base` is the only way in. fsync off: a test cluster.
            conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{base}'\nfsync = off\n")
        proc = as_server_user(["pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w",
                               "-t", "60", "start"])
        started = proc.returncode == 0
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        assert started, f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{log}"
        for name in databases:
            proc = subprocess.run([str(bindir / "createdb"), "-h", str(base), "-U", "grader", name],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, f"createdb failed:\n{proc.stdout}\n{proc.stderr}"
        yield {name: f"postgresql://grader@/{name}?host={base}" for name in databases}
    finally:
        if started and as_server_user(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]).returncode:
            as_server_user(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
