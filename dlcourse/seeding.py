"""Determinism: one call seeds Python, NumPy and TensorFlow/Keras."""

from __future__ import annotations

import os

DEFAULT_SEED = 42


def seed_everything(seed: int = DEFAULT_SEED, deterministic_ops: bool = True) -> int:
    """Seed Python's ``random``, NumPy and TensorFlow through Keras, and return the seed.

    ``deterministic_ops`` also asks TensorFlow for deterministic kernels, so that two runs
    on the same machine give the same numbers (grading relies on that). It costs a little
    speed on a GPU, nothing measurable on a CPU.
    """
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)  # seeds random, numpy and the TF global generator
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    return seed
