"""Keep a student's monkeypatching away from the tests, inside the grading kernel.

Installed by the zygote in every grading kernel before the first cell runs (so before any
student code), it snapshots the tools the tests use: ``builtins``, ``math``, NumPy's
namespaces that hold ``allclose``/``isclose``/``array_equal`` and ``numpy.testing``.

- **Before every cell** (IPython's ``pre_run_cell``) it puts those modules back as they were:
  every attribute a cell replaced or deleted, and their ``sys.modules`` entries. It also
  removes user-namespace names that shadow built-in exception classes (``AssertionError =
  ...``) and restores ``__builtins__``. A patch made in an answer cell is therefore gone when
  the test cell starts.
- **After every cell** (``post_run_cell``) it checks them again. A patch made *during* a cell
  (a student's function that patches ``numpy.allclose`` when the test calls it) is detected;
  the cell gets an output line with :data:`TAMPER_MARK`, and the grading step
  (:class:`autograder.grading` ``FailTamperedTests``) turns that test cell's result into a
  failure. Then the modules are restored.

What this does not stop: code that searches the interpreter's memory for this module's private
snapshot, or rewires IPython itself. The sandbox still confines such code; the
written-answer review and the kept autograded notebooks are where an instructor would see it.
"""

from __future__ import annotations

import builtins
import sys

TAMPER_MARK = "GRADER-TAMPER:"
PROTECTED_MODULES = ("builtins", "math", "cmath", "operator", "numpy", "numpy.testing",
                     "numpy.testing._private.utils", "numpy._core.numeric", "numpy._core.fromnumeric",
                     "numpy.linalg", "numpy.lib._function_base_impl")


def install(shell) -> None:
    """Snapshot the protected modules now and register the hooks on ``shell``."""
    modules = {name: sys.modules[name] for name in PROTECTED_MODULES if name in sys.modules}
    snapshot = {name: dict(vars(mod)) for name, mod in modules.items()}
    exceptions = {name: obj for name, obj in vars(builtins).items()
                  if isinstance(obj, type) and issubclass(obj, BaseException)}
    stdout = sys.stdout

    def changed() -> list[str]:
        found = []
        for name, mod in modules.items():
            if sys.modules.get(name) is not mod:
                found.append(f"sys.modules[{name!r}]")
            current = vars(mod)
            for key, value in snapshot[name].items():
                if current.get(key, _MISSING) is not value:
                    found.append(f"{name}.{key}")
        return found

    def restore() -> None:
        for name, mod in modules.items():
            sys.modules[name] = mod
            current = vars(mod)
            for key, value in snapshot[name].items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        ns = shell.user_ns
        ns["__builtins__"] = builtins
        for name, cls in exceptions.items():
            if name in ns and ns[name] is not cls:
                del ns[name]

    def pre_run_cell(info=None) -> None:
        restore()

    def post_run_cell(result=None) -> None:
        found = changed()
        if found:
            stdout.write(f"{TAMPER_MARK} this cell changed the test tools: {', '.join(sorted(found)[:10])}\n")
            stdout.flush()
        restore()

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)


_MISSING = object()
