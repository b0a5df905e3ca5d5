"""Helpers for test cells that must work in two places: the student's kernel and the judge.

A test cell runs in the student's own kernel when the student checks their work, and in the
grader's judge (:mod:`autograder.judge`) when it is graded. In the judge, the student's
names are stand-ins that call into the student's kernel, where only data comes back. Most
tests need nothing special for that. A test that must *run* a student's class, such as a
Keras callback during ``fit()``, asks this module instead, which runs it where the class is.
"""

from __future__ import annotations


def _clone(model):
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    if getattr(model, "compiled", False):
        twin.compile_from_config(model.get_compile_config())
    return twin


def fit_copy(model, x, y, *, seed: int = 0, callbacks=(), **fit_kwargs):
    """Train a copy of ``model`` (same weights and compile settings) with the given seed.

    Seeding comes first and the copy's layers are made after it, so that two calls with the
    same arguments train identically, in any process (dropout layers draw their seeds when
    they are made). Returns the trained copy.
    """
    import keras

    keras.utils.set_random_seed(seed)
    twin = _clone(model)
    twin.fit(x, y, callbacks=list(callbacks), verbose=0, **fit_kwargs)
    return twin


def fit_with_callback(callback_class, model, x, y, *, seed: int = 0, attribute: str = "history",
                      **fit_kwargs):
    """Train a copy of ``model`` with a new ``callback_class()`` and return the callback's
    ``attribute`` (its recorded data).

    In the judge, ``callback_class`` is the stand-in of the student's class: the training
    runs in the student's kernel, through the same function, and only the recorded data
    comes back. The judge can repeat the same training with :func:`fit_copy` and its own
    reference callback.
    """
    channel = getattr(callback_class, "_channel", None)
    if channel is not None:  # the judge: run it where the student's class lives
        return channel.call("dlcourse.testing:fit_with_callback", callback_class.__name__, model,
                            x, y, seed=seed, attribute=attribute, **fit_kwargs)
    import keras

    if isinstance(callback_class, str):  # in the student's kernel, called by the judge
        from IPython import get_ipython

        callback_class = get_ipython().user_ns[callback_class]
    callback = callback_class()
    if not isinstance(callback, keras.callbacks.Callback):
        raise TypeError(f"{type(callback).__name__} must subclass keras.callbacks.Callback")
    fit_copy(model, x, y, seed=seed, callbacks=[callback], **fit_kwargs)
    return getattr(callback, attribute)
