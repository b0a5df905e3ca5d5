"""nbgrader configuration of the course (read by every `nbgrader` command run from here).

The instructor sources (solutions and hidden tests) live in solutions/<assignment>/ and the
student releases in exercises/<assignment>/; `python -m autograder release ASSIGNMENT`
regenerates the release.
"""

import os

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "dl-keras"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# A student who deletes a test cell gets it back, and it is scored.
c.OverwriteCells.add_missing_cells = True

# Grading runs the whole notebook, including a short Keras training run.
c.Execute.timeout = 120

# Grade with the `python3` kernel, whatever kernel the notebook names: the native ipykernel
# of the Python that runs nbgrader (the course environment), so that grading works on a
# machine where the course kernel "dlcourse" is not registered. (`python -m autograder grade`
# forks its own Python kernels and ignores kernel names anyway.)
c.Execute.kernel_name = "python3"

# `python -m autograder grade` runs each sandboxed kernel as a user id of this range (at most
# --jobs at a time). None of them may belong to an account or a group of the grading machine:
# the grader checks and refuses to start otherwise. `--kernel-uids FIRST-LAST` overrides it.
c.GradingSandbox.kernel_uids = "61000-61099"

# Feedback never shows hidden tests and runs no student script, from any path: the
# formgrader's "Generate feedback" button and `nbgrader generate_feedback` get the same
# redaction and cleaning as `python -m autograder grade` (autograder/feedback.py).
# The formgrader's "Autograde" button is NOT protected the same way: it runs plain nbgrader,
# hidden tests inside the student's kernel, without the sandbox. Grade with
# `python -m autograder grade` instead (README, "Instructors").
# The same module sets the formgrader's page of a submission (MathJax from the Jupyter server,
# not a CDN) and keeps the feedback template to GenerateFeedback (nbgrader_settings' docstring).
from autograder.feedback import nbgrader_settings  # noqa: E402

c.merge(nbgrader_settings())
