# Two commands on a fresh machine:
#   make book   build the published book (every cell executed) into _build/html
#   make test   run the test harness (builds the book too)
# Each creates or updates the environment in .venv from requirements.lock first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
# requirements.lock (tensorflow-cpu) by default; GPU kernels use requirements-gpu.lock.
LOCK   ?= requirements.lock
# The stamp names the lock's hash, so editing the lock re-syncs the environment.
STAMP  := $(VENV)/.synced-$(shell cat $(LOCK) pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: env book-sysdeps sysdeps axe book test test-fast lock release gpu-env kernel readiness bench bench-grading bench-shards clean

env: book-sysdeps $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=/path/to/python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m dlcourse.kernel install
	rm -f $(VENV)/.synced-* && touch $@

book: env
	DLCOURSE_CHECK_FIGURES=1 $(BIN)/jupyter-book build . -W --keep-going
	@echo "Open _build/html/index.html"

test: env sysdeps axe
	$(BIN)/python -m pytest -v --durations=25 tests

# axe-core for the accessibility tests, from the npm registry into .cache/axe-core/
# (version and sha512 pinned in tests/test_accessibility.py).
axe: env
	$(BIN)/python tests/test_accessibility.py --fetch-axe

# The edit loop: what needs no book build, no grading and no TensorFlow kernels.
test-fast: env
	$(BIN)/python -m pytest -q -m "not slow" --durations=10 tests

# Debian packages, listed only here. The book needs the real Fashion-MNIST files
# (/usr/share/datasets/fashion-mnist, linked into the Keras cache by dlcourse.data), so
# `make env` (and so `make book`) installs them. The tests also drive Chromium (+ CJK fonts)
# for the browser tests, bubblewrap for the grading sandbox and PostgreSQL for the
# multi-grader gradebook test. Installed only when missing (apt-get as root, or via sudo).
BOOK_PACKAGES := dataset-fashion-mnist
TEST_PACKAGES := chromium fonts-noto-cjk bubblewrap postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define apt_install_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef
book-sysdeps:
	$(call apt_install_missing,$(BOOK_PACKAGES))
sysdeps: book-sysdeps
	$(call apt_install_missing,$(TEST_PACKAGES))

# Re-pin both locks after editing requirements.in. The GPU lock is the same resolution
# with tensorflow[and-cuda] in place of tensorflow-cpu.
lock: env
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock
	sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.in | \
	  $(BIN)/uv pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 - -o requirements-gpu.lock

# Regenerate the student notebooks in exercises/ from solutions/ with nbgrader.
release: env
	$(BIN)/python -m autograder release

# A GPU kernel: the GPU lock, then the device report. Later targets need LOCK too:
#   make gpu-env && make book LOCK=requirements-gpu.lock
gpu-env:
	$(MAKE) env LOCK=requirements-gpu.lock
	$(BIN)/python -c "import dlcourse; dlcourse.setup()"

# The course kernel "Deep Learning (TensorFlow)" and nbgrader's student extensions, inside
# .venv (make env does it too). Instructors: make kernel KERNEL_FLAGS=--instructor
kernel: env
	$(BIN)/python -m dlcourse.kernel install $(KERNEL_FLAGS)

# Before a term: run every chapter and solution notebook in a profile and write a report
# (device, time per notebook, final accuracies). On a networked GPU kernel: PROFILE=full.
readiness: env
	$(BIN)/python -m autograder.readiness --profile $(or $(PROFILE),small) --out _build/readiness/report.md

bench: env
	$(BIN)/python benchmarks/bench_build_and_grade.py

# A class of N ps1 submissions: sequential nbgrader autograde vs python -m autograder grade
# (N=40 takes about 35 minutes on 2 cores).
bench-grading: env sysdeps
	$(BIN)/python benchmarks/bench_grading.py --n $(or $(N),40)

# One grader against two --shard graders sharing one PostgreSQL gradebook (issue #16).
bench-shards: env sysdeps
	$(BIN)/python benchmarks/bench_shards.py --n $(or $(N),12)

clean:
	rm -rf _build
