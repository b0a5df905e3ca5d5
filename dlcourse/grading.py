"""Keep a graded notebook's stderr empty.

nbgrader gives 0 points to a test cell that writes anything to stderr. TensorFlow's C++
log lines and Python's warnings (a deprecation notice from Keras, say) go there, so a
correct answer could lose its points. Call :func:`grading_mode` in the first set-up cell of
an assignment, before TensorFlow is imported.
"""

from __future__ import annotations

import os
import sys
import warnings


def _show_warning_on_stdout(message, category, filename, lineno, file=None, line=None):
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))


def grading_mode() -> None:
    """Silence TensorFlow's C++ log and show Python warnings on stdout instead of stderr.

    The student still sees every warning; it just no longer costs points.
    """
    if "tensorflow" in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        print("dlcourse.grading_mode(): TensorFlow was already imported; its C++ log "
              "level cannot change now. Call grading_mode() first.")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    warnings.showwarning = _show_warning_on_stdout
