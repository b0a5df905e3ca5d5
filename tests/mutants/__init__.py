"""Wrong (MUTANTS) and differently-written correct (ACCEPTED) answers, one module per
assignment: tests/mutants/<assignment id with - as _>.py. Used by test_grading_power.py."""
