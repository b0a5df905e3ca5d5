"""The course's Jupyter set-up: the named kernel and nbgrader's JupyterLab extensions.

One command, run by ``make env`` (and ``make kernel``)::

    .venv/bin/python -m dlcourse.kernel install               # students: the default
    .venv/bin/python -m dlcourse.kernel install --instructor  # also formgrader, create assignment

It writes only into this Python environment (``sys.prefix``), like ``--sys-prefix`` and
``--level=sys_prefix`` in nbgrader's installation guide, so it needs no home directory and
every ``jupyter`` of the environment (JupyterLab, nbgrader, CI) sees the same set-up:

- the ipykernel kernel ``dlcourse``, shown as "Deep Learning (TensorFlow)", running this
  environment's Python. The assignment notebooks and the chapters name it in their kernelspec;
- the chapters (``book/*.md``, MyST notebooks) open as notebooks on a double-click, and opening
  and saving one unchanged leaves it byte-identical (:mod:`dlcourse.lab`: a JupyterLab default
  viewer and jupytext's contents manager with one fix);
- nbgrader's extensions for a student: the Validate button on; the assignment list on only
  when an nbgrader exchange is configured and usable (below); the instructor's formgrader,
  create-assignment toolbar and course list off.

The assignment list (JupyterLab's *Assignments* tab) fetches and submits through nbgrader's
exchange, a folder that every user can read and write (``c.Exchange.root``, by default
``/usr/local/share/nbgrader/exchange``). Without one, all it can show is "Error fetching
courses!" and, three times, "The exchange directory does not exist and could not be
created", while the server logs ``ExchangeError: Unwritable directory``: on a laptop, on
Binder, or wherever the course's notebooks are handed in through a learning-management
system. So ``install`` reads the nbgrader config that the assignment list itself will read
(this environment's and the user's Jupyter config folders, and ``nbgrader_config.py`` of the
folder it runs in, which is where JupyterLab is started) and turns the extension on only if
that exchange folder exists and is readable, writable and searchable by every user, as
nbgrader requires (:func:`exchange_status`). ``python -m autograder.exchange setup`` creates
an exchange, configures it and turns the extension on.

Jupyter reads its configuration from the environment, the user and the system config
directories only, never from the folder it is started in, so a config file at the root of
the repository would be ignored: hence a command and not a checked-in file.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

KERNEL_NAME = "dlcourse"
DISPLAY_NAME = "Deep Learning (TensorFlow)"

# nbgrader 0.9's two halves of each extension: a JupyterLab plugin of the lab extension
# "@jupyter/nbgrader" and, except for create-assignment, a Jupyter Server extension.
LAB_PLUGIN = "@jupyter/nbgrader:{}"
SERVER_EXTENSION = "nbgrader.server_extensions.{}"
STUDENT_EXTENSIONS = {"assignment-list": "assignment_list",
                      "validate-assignment": "validate_assignment"}
INSTRUCTOR_EXTENSIONS = {"formgrader": "formgrader", "create-assignment": None,
                         "course-list": "course_list"}
# The course's server extensions that stand in for nbgrader's behind one of its lab plugins:
# the Validate button's handler answers per question (dlcourse.validate); nbgrader's own stays off.
COURSE_SERVER_EXTENSIONS = {"validate-assignment": "dlcourse.validate"}


def install_kernel(prefix: str | None = None) -> str:
    """Register the course kernel (ipykernel's own installer) under ``prefix``/share/jupyter.

    ``prefix`` defaults to this environment. Returns the kernelspec's folder.
    """
    from ipykernel.kernelspec import install

    return install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME,
                   prefix=sys.prefix if prefix is None else prefix)


def exchange_status(cwd: str | os.PathLike | None = None) -> tuple[str, str | None]:
    """``(root, problem)``: the exchange folder nbgrader's assignment list would use, and why it
    cannot (``None`` if it can).

    The config is read as the assignment list reads it: the ``nbgrader_config.py`` files of
    Jupyter's config path (``jupyter --paths``) and of ``cwd`` (default: the current folder, where
    ``make env`` runs and JupyterLab is started). The folder must exist and, as nbgrader documents,
    be readable and writable by all users (``o+rwx``; with ``c.CourseDirectory.groupshared``, by
    the user running this), and usable by the user running this.
    """
    from nbgrader.apps import NbGrader
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.exchange import Exchange

    here = os.getcwd()
    os.chdir(cwd or here)
    try:
        app = NbGrader()
        app.log.setLevel("ERROR")  # "No nbgrader_config.py file found" is a normal case here
        app.load_config_file()
        root = Exchange(config=app.config).root
        groupshared = CourseDirectory(config=app.config).groupshared
    except Exception as exc:  # a broken config: the assignment list could not read it either
        return Exchange.root.default_value, f"the nbgrader config cannot be read: {type(exc).__name__}: {exc}"
    finally:
        os.chdir(here)
    if not os.path.isdir(root):
        return root, f"{root} does not exist"
    mode = stat.S_IMODE(os.stat(root).st_mode)
    if not groupshared and mode & 0o007 != 0o007:
        return root, f"{root} has mode {oct(mode)}: not readable and writable by all users"
    if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
        return root, f"{root} is not readable and writable by this user"
    return root, None


def _toggle(name: str, on: bool) -> None:
    from jupyter_server.extension.serverextension import toggle_server_extension_python
    from jupyterlab.commands import disable_extension, enable_extension, unlock_extension

    plugin = LAB_PLUGIN.format(name)
    # Unlocked first, explicitly: JupyterLab otherwise "migrates" whatever is disabled when
    # it next reads a config without a lock list into locked, so the result would depend
    # on how often this ran. Unlocked, a user may still flip a plugin in the Plugin Manager.
    unlock_extension(plugin, level="sys_prefix")
    (enable_extension if on else disable_extension)(plugin, level="sys_prefix")
    server = {**STUDENT_EXTENSIONS, **INSTRUCTOR_EXTENSIONS}[name]
    if name in COURSE_SERVER_EXTENSIONS:
        toggle_server_extension_python(SERVER_EXTENSION.format(server), enabled=False, sys_prefix=True)
        toggle_server_extension_python(COURSE_SERVER_EXTENSIONS[name], enabled=on, sys_prefix=True)
    elif server:
        toggle_server_extension_python(SERVER_EXTENSION.format(server), enabled=on, sys_prefix=True)


def set_assignment_list(on: bool) -> None:
    """Turn only the assignment list on or off in this environment (``python -m autograder.exchange
    setup`` turns it on once the exchange is usable)."""
    _toggle("assignment-list", on)


def configure_extensions(instructor: bool = False, assignment_list: bool | None = None) -> dict[str, bool]:
    """Turn nbgrader's extensions on or off for this environment; return {name: enabled}.

    Students get the Validate button, and the assignment list if ``assignment_list`` (default:
    if :func:`exchange_status` finds a usable exchange); ``instructor=True`` also turns on the
    formgrader, the create-assignment toolbar and the course list.
    """
    if assignment_list is None:
        assignment_list = exchange_status()[1] is None
    wanted = {name: True for name in STUDENT_EXTENSIONS}
    wanted["assignment-list"] = assignment_list
    wanted.update({name: instructor for name in INSTRUCTOR_EXTENSIONS})
    for name, on in wanted.items():
        _toggle(name, on)
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlcourse.kernel", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="register the course kernel and set nbgrader's extensions")
    inst.add_argument("--instructor", action="store_true",
                      help="also enable the formgrader, create-assignment and course-list extensions")
    args = parser.parse_args(argv)

    if args.command == "install":
        where = install_kernel()
        print(f"kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) -> {where}")
        from dlcourse import lab

        for path in lab.install():
            print(f"chapters open as notebooks: {path}")
        root, problem = exchange_status()
        states = configure_extensions(instructor=args.instructor, assignment_list=problem is None)
        for name, on in states.items():
            why = ""
            if name == "assignment-list":
                why = (f" (exchange {root})" if on else
                       f" (no usable nbgrader exchange: {problem}; `python -m autograder.exchange setup` "
                       "sets one up)")
            print(f"nbgrader extension {name}: {'enabled' if on else 'disabled'}{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
