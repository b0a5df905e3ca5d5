"""What TensorFlow sees, and the set-up that goes with it (memory growth, mixed precision)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# TensorFlow's C++ start-up chatter (oneDNN notices, CUDA probing) hides what matters to a reader.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class DeviceInfo:
    """A short description of the accelerator a notebook runs on."""

    kind: str  # "GPU" or "CPU"
    name: str
    memory: str
    tensorflow: str
    keras: str
    precision_policy: str = "float32"
    gpus: list = field(default_factory=list)

    def table(self) -> str:
        rows = [
            ("device", self.kind),
            ("name", self.name),
            ("memory", self.memory),
            ("precision policy", self.precision_policy),
            ("tensorflow", self.tensorflow),
            ("keras", self.keras),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _total_ram() -> str:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return f"{pages * page_size / 2**30:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        return "unknown"


def device_info() -> DeviceInfo:
    """Describe the first GPU TensorFlow sees, or the CPU when there is none."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    policy = keras.mixed_precision.global_policy().name
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", gpus[0].name)
        cc = details.get("compute_capability")
        memory = "unknown"
        try:
            # Only readable once the device is initialized; fine to skip otherwise.
            mem = tf.config.experimental.get_memory_info("GPU:0")
            memory = f"{mem['current'] / 2**20:.0f} MiB in use"
        except (ValueError, RuntimeError):
            pass
        if cc:
            name = f"{name} (compute capability {cc[0]}.{cc[1]})"
        return DeviceInfo("GPU", name, memory, tf.__version__, keras.__version__, policy,
                          [g.name for g in gpus])
    return DeviceInfo("CPU", _cpu_name(), f"{_total_ram()}, {os.cpu_count()} cores",
                      tf.__version__, keras.__version__, policy)


def setup(seed: int | None = 42, mixed_precision: bool | str = "auto",
          verbose: bool = True) -> DeviceInfo:
    """Prepare TensorFlow for a chapter or an exercise and print a device table.

    - On a GPU: turn on memory growth (so several notebooks can share one card) and, with
      ``mixed_precision="auto"``, the ``mixed_float16`` policy on cards that have tensor
      cores (compute capability 7.0 or newer).
    - On a CPU: keep ``float32``; mixed precision only slows a CPU down.
    - Seed everything with ``seed`` (skip with ``seed=None``).
    - With ``$DLCOURSE_CHECK_FIGURES`` set (book builds), report every figure shown without
      a title or axis labels (:func:`dlcourse.plots.check_figures_when_shown`).
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            # Memory growth must be set before the GPU is first used; a second setup()
            # call in the same kernel lands here and the first setting still holds.
            pass

    want_mixed = mixed_precision is True
    if mixed_precision == "auto" and gpus:
        cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        want_mixed = bool(cc and cc >= (7, 0))
    if want_mixed and not gpus:
        raise RuntimeError("mixed_precision=True needs a GPU; this kernel only sees a CPU.")
    keras.mixed_precision.set_global_policy("mixed_float16" if want_mixed else "float32")

    if seed is not None:
        from dlcourse.seeding import seed_everything

        seed_everything(seed)

    import os

    if os.environ.get("DLCOURSE_CHECK_FIGURES", "") not in ("", "0"):
        from dlcourse.plots import check_figures_when_shown

        check_figures_when_shown()

    info = device_info()
    if verbose:
        print(info.table())
    return info
