"""One pinned environment: the CPU and GPU locks agree, and what runs is what is pinned."""

from __future__ import annotations

import re
import sys
from importlib import metadata

from conftest import REPO

PIN_RE = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", re.M)


def pins(name: str) -> dict[str, str]:
    text = (REPO / name).read_text()
    return {m.group(1).lower().replace("_", "-"): m.group(2) for m in PIN_RE.finditer(text)}


def test_python_is_3_11():
    assert sys.version_info[:2] == (3, 11)


def test_gpu_lock_differs_only_in_tensorflow_and_cuda():
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow")
    gpu = {k: v for k, v in gpu.items() if not k.startswith("nvidia-")}
    assert cpu == gpu


def test_the_running_environment_is_the_lock():
    wrong = {}
    for name, version in pins("requirements.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from requirements.lock (run make env): {wrong}"


def test_the_stack_of_the_design():
    cpu = pins("requirements.lock")
    for name in ("jupyter-book", "nbgrader", "jupyterlab", "tensorflow-cpu", "keras",
                 "numpy", "matplotlib", "scikit-learn"):
        assert name in cpu, f"{name} is not pinned"
    assert cpu["jupyter-book"].startswith("1."), "Jupyter Book 2 cannot build offline here"
