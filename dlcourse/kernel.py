"""The course's Jupyter set-up: the named kernel and nbgrader's JupyterLab extensions.

One command, run by ``make env`` (and ``make kernel``)::

    .venv/bin/python -m dlcourse.kernel install               # students: the default
    .venv/bin/python -m dlcourse.kernel install --instructor  # also formgrader, create assignment

It writes only into this Python environment (``sys.prefix``), like ``--sys-prefix`` and
``--level=sys_prefix`` in nbgrader's installation guide, so it needs no home directory and
every ``jupyter`` of the environment (JupyterLab, nbgrader, CI) sees the same set-up:

- the ipykernel kernel ``dlcourse``, shown as "Deep Learning (TensorFlow)", running this
  environment's Python. The assignment notebooks name it in their kernelspec metadata;
- nbgrader's extensions for a student: the assignment list and the Validate button on, the
  instructor's formgrader, create-assignment toolbar and course list off.

Jupyter reads its configuration from the environment, the user and the system config
directories only, never from the folder it is started in, so a config file at the root of
the repository would be ignored: hence a command and not a checked-in file.
"""

from __future__ import annotations

import argparse
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


def install_kernel(prefix: str | None = None) -> str:
    """Register the course kernel (ipykernel's own installer) under ``prefix``/share/jupyter.

    ``prefix`` defaults to this environment. Returns the kernelspec's folder.
    """
    from ipykernel.kernelspec import install

    return install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME,
                   prefix=sys.prefix if prefix is None else prefix)


def configure_extensions(instructor: bool = False) -> dict[str, bool]:
    """Turn nbgrader's extensions on or off for this environment; return {name: enabled}.

    Students get the assignment list and the Validate button; ``instructor=True`` also
    turns on the formgrader, the create-assignment toolbar and the course list.
    """
    from jupyter_server.extension.serverextension import toggle_server_extension_python
    from jupyterlab.commands import disable_extension, enable_extension, unlock_extension

    wanted = {name: True for name in STUDENT_EXTENSIONS}
    wanted.update({name: instructor for name in INSTRUCTOR_EXTENSIONS})
    servers = {**STUDENT_EXTENSIONS, **INSTRUCTOR_EXTENSIONS}
    for name, on in wanted.items():
        plugin = LAB_PLUGIN.format(name)
        # Unlocked first, explicitly: JupyterLab otherwise "migrates" whatever is disabled when
        # it next reads a config without a lock list into locked, so the result would depend
        # on how often this ran. Unlocked, a user may still flip a plugin in the Plugin Manager.
        unlock_extension(plugin, level="sys_prefix")
        (enable_extension if on else disable_extension)(plugin, level="sys_prefix")
        if servers[name]:
            toggle_server_extension_python(SERVER_EXTENSION.format(servers[name]), enabled=on,
                                           sys_prefix=True)
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
        states = configure_extensions(instructor=args.instructor)
        for name, on in states.items():
            print(f"nbgrader extension {name}: {'enabled' if on else 'disabled'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
