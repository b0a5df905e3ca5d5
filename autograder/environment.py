"""The environment of the grading kernels: built from an allowlist, never inherited.

The grader's own environment may hold secrets (``PGPASSWORD`` for the gradebook, cloud keys,
tokens). None of it reaches student code. A kernel's environment is made of exactly:

- **copied from the grader, if set**: :data:`FROM_GRADER` (``PATH``, ``LANG``, ``LANGUAGE``,
  ``MPLBACKEND``, ``PYTHONPATH``) and names that start with :data:`FROM_GRADER_PREFIXES`
  (``LC_*`` locale, ``TF_*`` TensorFlow, ``DLCOURSE_*`` the course package), except
  Terraform's ``TF_VAR_*``, ``TF_TOKEN_*`` and ``TF_CLI_*`` (:data:`NOT_FROM_GRADER_PREFIXES`);
- **set by the grader** (:data:`SET_BY_GRADER`; their values never come from the grader's
  environment): ``HOME``, ``TMPDIR``, ``IPYTHONDIR`` and ``MPLCONFIGDIR``, all inside the
  kernel's scratch folder; ``NBGRADER_EXECUTION=autograde`` (nbgrader's documented marker,
  which plain ``nbgrader autograde`` sets too); ``PYTHONHASHSEED=0`` (the same hashing in any
  process the kernel starts, as in the zygote).

ipykernel itself needs nothing from the environment: its connection file comes as ``-f FILE``
on its command line. The ``JPY_*`` variables that jupyter_client's own launcher adds are not
needed either: ``JPY_PARENT_PID`` only turns on a poller that exits when the parent dies (the
zygote, the kernel's parent, kills its kernels itself), ``JPY_SESSION_NAME`` only names the
notebook in ``__session__``, and ``JPY_INTERRUPT_EVENT`` is Windows-only. They are dropped.

The allowlist is applied three times: to the zygote's environment (a forked kernel's
``/proc/self/environ`` and ``posix.environ`` still show the environment its parent was started
with), by the provisioner after jupyter_client has built its launch environment (the allowlist
wins over anything jupyter_client or a kernelspec adds), and by the zygote in the forked child
before the kernel starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

FROM_GRADER = ("PATH", "LANG", "LANGUAGE", "MPLBACKEND", "PYTHONPATH")
FROM_GRADER_PREFIXES = ("LC_", "TF_", "DLCOURSE_")
# TF_* also matches Terraform's variables, which do hold secrets (TF_VAR_db_password,
# TF_TOKEN_app_terraform_io) or name the instructor's files (TF_CLI_CONFIG_FILE): never copied.
NOT_FROM_GRADER_PREFIXES = ("TF_VAR_", "TF_TOKEN_", "TF_CLI_")
SET_BY_GRADER = ("HOME", "TMPDIR", "IPYTHONDIR", "MPLCONFIGDIR", "NBGRADER_EXECUTION", "PYTHONHASHSEED")

# What the course's kernels get whatever the grader's environment says.
COURSE_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",          # TensorFlow's C++ logging writes to stderr
    "DLCOURSE_OFFLINE": "1",              # no download is even tried (there is no network)
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONHASHSEED": "0",
}


def copied_from_grader(name: str) -> bool:
    """Whether a variable of the grader's environment may be passed to a kernel."""
    return (name in FROM_GRADER or name.startswith(FROM_GRADER_PREFIXES)) \
        and not name.startswith(NOT_FROM_GRADER_PREFIXES)


def allowed(name: str) -> bool:
    """Whether a kernel's environment may hold ``name`` at all."""
    return copied_from_grader(name) or name in SET_BY_GRADER


def restrict(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any variable the allowlist does not name."""
    return {k: v for k, v in env.items() if allowed(k) and isinstance(v, str)}


def base_environment(source: Mapping[str, str] | None = None, *, home: str | Path,
                     python_path: list[str] | None = None, bindir: str | None = None) -> dict[str, str]:
    """The zygote's environment, which every kernel starts from.

    ``source`` is the grader's environment (``os.environ``); only allowlisted names are read
    from it. ``home`` is the zygote's own ``HOME`` (a folder of the grading run, never the
    instructor's home); ``python_path`` goes in front of ``PYTHONPATH`` and ``bindir`` in front
    of ``PATH``.
    """
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if copied_from_grader(k)}
    env.update(COURSE_DEFAULTS)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [*(python_path or []), source.get("PYTHONPATH", "")] if p)
    path = [bindir or "", *(source.get("PATH") or os.defpath).split(os.pathsep)]
    env["PATH"] = os.pathsep.join(dict.fromkeys(p for p in path if p))
    env["HOME"] = str(home)
    return restrict(env)


def kernel_environment(base: Mapping[str, str], scratch: str | Path) -> dict[str, str]:
    """One kernel's environment: ``base`` (see :func:`base_environment`) with its scratch folder."""
    scratch = Path(scratch)
    env = {k: v for k, v in base.items() if copied_from_grader(k)}
    env.update(HOME=str(scratch), TMPDIR=str(scratch), IPYTHONDIR=str(scratch / ".ipython"),
               MPLCONFIGDIR=str(scratch / ".matplotlib"), NBGRADER_EXECUTION="autograde",
               PYTHONHASHSEED=base.get("PYTHONHASHSEED", "0"))
    return restrict(env)
