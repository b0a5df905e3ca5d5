"""Set up nbgrader's exchange for the course on one machine: ``python -m autograder.exchange setup``.

nbgrader's exchange is a folder that the instructor and every student can reach: the instructor
releases into it (``nbgrader release_assignment``), students fetch from it and submit into it,
the instructor collects from it and returns feedback through it. nbgrader documents that the
folder "must exist before running nbgrader, and it *must* be readable and writable by all users"
(``chmod ugo+rw``; *Managing assignment files*, "Setting up the exchange"); its own code then
gives each course's folders these modes (``nbgrader/exchange/default/release_assignment.py``,
``submit.py`` and ``release_feedback.py``, 0.9.6), which this command creates up front:

========================================  ==========  ==============================================
``ROOT``                                  ``0o1777``  rwx for everyone (nbgrader requires it; the
                                                      sticky bit, as on ``/tmp``, is added here so
                                                      that no student can rename or delete the
                                                      course's folder: nbgrader checks rwx only)
``ROOT/COURSE``                           ``0o755``   the instructor's
``ROOT/COURSE/outbound``                  ``0o755``   released assignments: everyone reads
``ROOT/COURSE/inbound``                   ``0o2733``  submissions: everyone writes, nobody but the
                                                      instructor lists (setgid: the instructor's
                                                      group); each submission is a folder named
                                                      ``student+assignment+timestamp+random``
``ROOT/COURSE/feedback``                  ``0o711``   feedback: one ``<hash>.html`` per notebook,
                                                      the hash of the submission's secret, which
                                                      only the student's own copy holds; nobody but
                                                      the instructor lists
========================================  ==========  ==============================================

What these modes do not do: a submission's own folder is ``0o777`` and its files ``0o644``
(``nbgrader submit``), so whoever knows a submission's full name can read it; what hides it is
that nobody but the instructor can list ``inbound`` and that the name ends in 12 random
characters. Likewise a feedback page is found by the secret in the student's own copy of the
submission (in their ``~/.local/share/jupyter/nbgrader_cache``). So students' home folders
must not be readable by other students (``0o700``; Debian's ``useradd`` makes them ``0o755``
unless ``HOME_MODE 0700`` is set in ``/etc/login.defs``). With everyone under one uid (a
JupyterHub whose servers all run as uid 1000), these modes protect nothing.

It writes the two settings that students and the instructor need, ``c.Exchange.root`` and
``c.CourseDirectory.course_id``, into this environment's Jupyter config
(``sys.prefix/etc/jupyter/nbgrader_config.py``, which every ``nbgrader`` and JupyterLab of the
environment reads, whoever runs it; an earlier block of this command is replaced, the rest of
the file kept), prints them for other environments (a JupyterHub's
``/etc/jupyter/nbgrader_config.py``), and turns on nbgrader's *Assignment List* for students,
which ``python -m dlcourse.kernel install`` leaves off while no usable exchange is configured
(without one it only shows errors). If the environment's config cannot be written (an image's
environment, configured from ``/etc/jupyter``), it says so and succeeds only if the config that
is read already names this exchange. Exit code 2 when the exchange is not usable at the end.

Without ``--root``, the exchange is nbgrader's standard shared folder,
``/usr/local/share/nbgrader/exchange``, which needs root to create. ``--instructor USER`` makes
the course's folders belong to the account that will run ``nbgrader release_assignment`` and
``nbgrader collect`` (nbgrader refuses course folders it does not own); by default, whoever
runs this command.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import stat
import sys
from pathlib import Path

from autograder import REPO_ROOT

ROOT_MODE = 0o1777
COURSE_MODES = {"": 0o755, "outbound": 0o755, "inbound": 0o2733, "feedback": 0o711}
BEGIN = "# BEGIN dlcourse exchange (python -m autograder.exchange setup)"
END = "# END dlcourse exchange"
COURSE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SetupError(RuntimeError):
    """The exchange cannot be set up as asked (the message says why and what to do)."""


def default_root() -> str:
    """nbgrader's own default ``Exchange.root`` (``/usr/local/share/nbgrader/exchange``)."""
    from nbgrader.exchange.default.exchange import Exchange

    return Exchange.root.default_value


def course_id() -> str:
    """``c.CourseDirectory.course_id`` of the course's nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    return cfg.CourseDirectory.get("course_id", "")


def config_file() -> Path:
    """This environment's nbgrader config: read by every nbgrader and Jupyter server of the
    environment (``jupyter --paths``, "config"), like ``--sys-prefix`` in nbgrader's guide."""
    return Path(sys.prefix) / "etc" / "jupyter" / "nbgrader_config.py"


def config_lines(root: Path, course: str) -> list[str]:
    return [f"c.Exchange.root = {str(root)!r}", f"c.CourseDirectory.course_id = {course!r}"]


def write_config(path: Path, lines: list[str]) -> None:
    """Put ``lines`` in ``path`` between the BEGIN/END markers (replacing an earlier block of
    this command, keeping anything else in the file)."""
    block = "\n".join([BEGIN, "c = get_config()  # noqa: F821", *lines, END]) + "\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(BEGIN)}\n.*?^{re.escape(END)}\n?", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ensure_dir(path: Path, mode: int, uid: int, gid: int) -> None:
    """``path`` exists with ``mode``, owned by ``uid``: created if missing, fixed if ours."""
    if not path.exists():
        path.mkdir()
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
    elif not path.is_dir():
        raise SetupError(f"{path} exists and is not a folder")
    st = path.stat()
    if st.st_uid != uid:
        owner = _user_name(st.st_uid)
        raise SetupError(f"{path} belongs to {owner}, not to the instructor {_user_name(uid)}: nbgrader's "
                         f"release_assignment refuses a course folder it does not own. Remove it, or rerun "
                         f"with --instructor {owner}")
    if _mode(path) != mode:
        os.chmod(path, mode)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _unreachable_parents(path: Path) -> list[Path]:
    """Parent folders that other users cannot cross (no o+x): students could not reach ``path``."""
    return [p for p in reversed(path.parents) if not _mode(p) & stat.S_IXOTH]


def setup(root: Path, course: str, instructor: str | None = None) -> Path:
    """Create the exchange root and the course's folders with nbgrader's modes (module docstring).
    Returns the root. Raises :class:`SetupError` with what to do instead."""
    if not COURSE_ID_RE.match(course or ""):
        raise SetupError(f"course id {course!r}: use letters, digits and _.- (nbgrader makes it a folder name); "
                         "set c.CourseDirectory.course_id in nbgrader_config.py or pass --course")
    root = Path(os.path.abspath(os.path.expanduser(str(root))))
    if instructor is None:
        uid, gid = os.geteuid(), os.getegid()
    else:
        try:
            account = pwd.getpwnam(instructor)
        except KeyError:
            raise SetupError(f"--instructor {instructor}: no such account on this machine") from None
        uid, gid = account.pw_uid, account.pw_gid
        if uid != os.geteuid() and os.geteuid() != 0:
            raise SetupError(f"--instructor {instructor}: only root can make folders for another account")
    if not root.exists():
        try:
            root.mkdir(parents=True)
        except PermissionError:
            who = _user_name(os.geteuid())
            raise SetupError(
                f"cannot create the exchange {root}: permission denied ({who} is not root and cannot write "
                f"{next((p for p in root.parents if p.exists()), Path('/'))}). Run this command as root "
                f"(sudo), or choose a folder you can create that every student can reach, e.g. "
                f"--root /srv/nbgrader/exchange as root, or --root ~/nbgrader-exchange on your own machine"
            ) from None
    elif not root.is_dir():
        raise SetupError(f"{root} exists and is not a folder")
    if _mode(root) != ROOT_MODE:
        try:
            os.chmod(root, ROOT_MODE)
        except PermissionError:
            raise SetupError(f"{root} has mode {oct(_mode(root))}, owned by {_user_name(root.stat().st_uid)}; "
                             f"nbgrader needs it readable and writable by all users: run as root or as its "
                             f"owner, or `chmod 1777 {root}`") from None
    course_dir = root / course
    for name, mode in COURSE_MODES.items():
        _ensure_dir(course_dir / name if name else course_dir, mode, uid, gid)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.exchange", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="create the exchange and the course's folders; write the config; "
                                     "turn on the students' Assignment List")
    s.add_argument("--root", default=None,
                   help=f"the exchange folder (default: nbgrader's standard shared folder, {default_root()})")
    s.add_argument("--course", default=None,
                   help="course id (default: c.CourseDirectory.course_id of nbgrader_config.py)")
    s.add_argument("--instructor", default=None, metavar="USER",
                   help="account that releases and collects (owns the course's folders; default: you)")
    args = parser.parse_args(argv)

    course = args.course or course_id()
    root = Path(args.root or default_root())
    try:
        root = setup(root, course, args.instructor)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exchange {root} (mode {oct(_mode(root))}), course {course!r}:")
    for name in COURSE_MODES:
        where = root / course / name if name else root / course
        print(f"  {where}  {oct(_mode(where))}  {_user_name(where.stat().st_uid)}")
    blocked = _unreachable_parents(root)
    if blocked:
        print(f"warning: other users cannot enter {', '.join(map(str, blocked))} (no o+x): students on this "
              "machine cannot reach the exchange; choose a --root elsewhere", file=sys.stderr)
    if course != course_id():
        print(f"warning: nbgrader_config.py sets course_id {course_id()!r}, which the instructor's nbgrader "
              f"commands use (they run from {REPO_ROOT})", file=sys.stderr)

    lines = config_lines(root, course)
    path = config_file()
    try:
        write_config(path, lines)
        print(f"wrote {path}:")
    except PermissionError:  # e.g. a JupyterHub image's environment: its config comes from /etc/jupyter
        print(f"warning: cannot write {path} (permission denied); the config must come from elsewhere:",
              file=sys.stderr)
    print("    " + "\n    ".join(lines))
    print("(Students and instructors of another Python environment, e.g. a JupyterHub's image, need these\n"
          "lines in /etc/jupyter/nbgrader_config.py or ~/.jupyter/nbgrader_config.py.)")

    from dlcourse.kernel import exchange_status, set_assignment_list

    effective, problem = exchange_status(cwd=REPO_ROOT)
    if problem is None and Path(effective) != root:
        problem = f"the config this environment reads sets c.Exchange.root = {effective!r}, not {str(root)!r}"
    try:
        set_assignment_list(problem is None)
    except PermissionError:
        print(f"error: cannot change nbgrader's extensions in {sys.prefix} (permission denied): run as its "
              "owner `python -c 'from dlcourse.kernel import set_assignment_list; set_assignment_list(True)'`",
              file=sys.stderr)
        return 2
    if problem is not None:
        print(f"error: nbgrader extension assignment-list: disabled ({problem})", file=sys.stderr)
        return 2
    print("nbgrader extension assignment-list: enabled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
