"""The data-only channel: what crosses from a student's kernel to the grader is plain data.

The codec is tested in milliseconds; one real kernel (no TensorFlow) then serves a set of
honest and hostile student functions, and the grader's end must decode the honest ones
exactly and refuse every hostile one with a clear message, without running any of it.
"""

from __future__ import annotations

import base64
import io
import json
import pickle

import numpy as np
import pytest
from jupyter_client.manager import start_new_kernel

from autograder import channel
from autograder.channel import ChannelError, StudentError, decode, encode


def roundtrip(value):
    return decode(json.loads(json.dumps(encode(value))))


# ------------------------------------------------------------------ codec

def test_plain_values_round_trip_with_their_types():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    got = roundtrip({"w": a, "n": 3, "f": 0.5, "s": "x", "none": None, "ok": True,
                     "pair": (a[0], [1, 2]), "nan": float("nan"), "i8": np.int8([1, 2])})
    np.testing.assert_array_equal(got["w"], a)
    assert got["w"].dtype == np.float64 and type(got["w"]) is np.ndarray
    assert type(got["pair"]) is tuple and type(got["pair"][1]) is list
    assert got["n"] == 3 and type(got["n"]) is int and np.isnan(got["nan"])
    assert got["i8"].dtype == np.int8


def test_numpy_scalars_stay_numpy_scalars():
    """So that `isinstance(loss, float)` means the same for the grader as in the kernel."""
    got = roundtrip(np.float32(1.5))
    assert type(got) is np.float32 and got == 1.5
    assert type(roundtrip(np.float64(2.0))) is np.float64
    assert type(roundtrip(2.0)) is float


@pytest.mark.parametrize("value, why", [
    (np.array([object()], dtype=object), "dtype object"),
    (np.ma.masked_array([1.0, 2.0]), "MaskedArray"),
    (np.recarray((2,), dtype=[("a", "f8")]), "recarray"),
    ((x for x in range(3)), "generator"),
    ({1: "int key"}, "keys"),
    (2**80, "too large"),
    (type("Lying", (), {"__eq__": lambda s, o: True})(), "Lying"),
])
def test_the_kernel_side_refuses_what_the_channel_does_not_carry(value, why):
    with pytest.raises(ValueError, match=why):
        encode(value)


def test_deep_and_huge_values_are_refused():
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        encode(deep)
    with pytest.raises(ValueError, match="more than"):
        encode(list(range(channel.MAX_ITEMS + 1)))


def _npy_b64(a, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return base64.b64encode(buf.getvalue()).decode()


class Boom:
    def __reduce__(self):  # what a pickle would run on load
        import os
        return (os.system, ("echo pwned > /tmp/channel-pwned",))


@pytest.mark.parametrize("forged", [
    {"t": "ndarray", "npy": _npy_b64(np.array([Boom()], dtype=object), allow_pickle=True)},
    {"t": "ndarray", "npy": base64.b64encode(pickle.dumps(Boom())).decode()},
    {"t": "ndarray", "npy": _npy_b64(np.zeros(2, dtype=[("a", "f8")]))},
    {"t": "ndarray", "npy": _npy_b64(np.array(["text"]))},
    {"t": "ndarray", "npy": _npy_b64(np.zeros((2, 2))), "scalar": True},
    {"t": "json", "v": [1, 2]},
    {"t": "code", "source": "import os", "name": "f"},
    {"t": "function", "id": 0},
    {"t": "rng", "state": {"bit_generator": "os.system", "state": {}}},
    {"t": "rng", "state": {"bit_generator": "PCG64", "state": {"state": [1], "inc": 1}}},
    {"t": "keras", "architecture": json.dumps({"class_name": "Lambda", "config": {}})},
    {"t": "list", "items": "no"},
    {"no tag": 1},
])
def test_the_grader_refuses_forged_replies_without_running_them(forged):
    """A student can replace the kernel's encoder and send anything; the grader decodes
    none of it into code, pickles or objects of the student's choosing."""
    with pytest.raises(ChannelError):
        decode(forged)
    import os
    assert not os.path.exists("/tmp/channel-pwned")


def test_student_exceptions_become_failed_assertions():
    with pytest.raises(StudentError, match="softmax.*raised ValueError: bad"):
        decode({"t": "error", "name": "softmax", "ename": "ValueError", "evalue": "bad"})
    assert issubclass(StudentError, AssertionError) and issubclass(ChannelError, AssertionError)


def test_keras_models_cross_as_architecture_compile_config_and_weights():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    got = roundtrip(model)
    assert got is not model and got.compiled
    x = np.ones((2, 4), dtype="float32")
    np.testing.assert_allclose(got.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert got.loss == "sparse_categorical_crossentropy"
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 0 + 1)])
    with pytest.raises(ChannelError, match="safely"):
        roundtrip(lam)


# ------------------------------------------------------------------ a real kernel

STUDENT = r'''
import numpy as np

def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

class Liar(np.ndarray):
    def __array_function__(self, *a, **k):
        return True
    def __eq__(self, other):
        return True

def lying_array(z):
    return np.zeros(3).view(Liar)

def generator(z):
    return (v for v in z)

def raises(z):
    raise ZeroDivisionError("no")

def numerical(f, x):
    return np.array([f(x)])

def peek(z):
    import inspect
    # The caller's frames hold only the request: there is no expected value to find.
    return str([sorted(fr.frame.f_locals) for fr in inspect.stack()])

def slow(z):
    import time
    time.sleep(30)

def scale_in_place(params, x):
    params["W"] *= 2      # modifies the caller's dict of arrays
    x[0] = -1.0
    return float(params["W"].sum())
'''


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    kc.execute_interactive(STUDENT, timeout=60)
    kc.execute_interactive("import keras", timeout=120)  # as in a grading kernel: preloaded
    yield channel.KernelChannel(kc, timeout=60)
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_honest_function_through_a_real_kernel(kernel):
    softmax = channel.StudentFunction(kernel, "softmax")
    p = softmax(np.array([[1.0, 2.0, 3.0]]))
    assert type(p) is np.ndarray and np.allclose(p, [[0.09003057, 0.24472847, 0.66524096]])


def test_hostile_returns_through_a_real_kernel(kernel):
    # An ndarray subclass whose __eq__ and NEP-18 hooks answer "equal" is refused by name;
    # its hooks never reach the grader, where np.allclose would have called them.
    with pytest.raises(ChannelError, match="returned a value of type __main__.Liar"):
        kernel.call("lying_array", np.zeros(3))
    with pytest.raises(ChannelError, match="generator"):
        kernel.call("generator", [1, 2])
    with pytest.raises(StudentError, match="ZeroDivisionError: no"):
        kernel.call("raises", 1)
    with pytest.raises(StudentError, match="NameError"):
        kernel.call("not_defined", 1)
    frames = kernel.call("peek", 1)
    assert "expected" not in frames


def test_a_function_that_changes_an_array_argument_fails_and_changes_nothing_here(kernel):
    """The contract: inputs are not modified. A change to an array argument, or to an array
    of a dict argument (params), fails the call; the grader's arrays stay as they were, so a
    hidden test that computes its expected value from them after the call cannot be steered."""
    params, x, b = {"W": np.ones((2, 2)), "b": np.zeros(2)}, np.zeros(3), np.ones(2)
    with pytest.raises(StudentError, match=r"InputModified: the function changed its argument 1\['W'\] in place"):
        kernel.call("scale_in_place", params, x)
    assert params["W"].tolist() == [[1.0, 1.0], [1.0, 1.0]] and x.tolist() == [0.0, 0.0, 0.0]
    kernel.kc.execute_interactive("def touch_x(params, x):\n    x[0] = -1.0\n    return 0\n", timeout=30)
    with pytest.raises(StudentError, match="changed its argument 2 in place"):
        kernel.call("touch_x", {"W": np.ones(1)}, x)
    assert x.tolist() == [0.0, 0.0, 0.0]
    # Reading an argument is fine, NaN included.
    assert kernel.call("softmax", b[None, :]).shape == (1, 2) and b.tolist() == [1.0, 1.0]
    kernel.kc.execute_interactive("def total(a):\n    return float(np.nansum(a))\n", timeout=30)
    assert kernel.call("total", np.array([1.0, np.nan])) == 1.0
    # A list of arrays (l2_penalty's weights) and keyword arguments are checked the same way.
    kernel.kc.execute_interactive("def penalty(weights, lam=0.1, scale=None):\n"
                                  "    weights[1][0] = 9.0\n    return 0.0\n", timeout=30)
    weights = [np.ones(2), np.zeros(2)]
    with pytest.raises(StudentError, match=r"changed its argument 1\[1\] in place"):
        kernel.call("penalty", weights)
    assert weights[1].tolist() == [0.0, 0.0]
    kernel.kc.execute_interactive("def by_name(x, target=None):\n    target *= 2\n    return 0\n", timeout=30)
    target = np.ones(3)
    with pytest.raises(StudentError, match=r"changed its argument target= in place"):
        kernel.call("by_name", np.zeros(1), target=target)
    assert target.tolist() == [1.0, 1.0, 1.0]


def test_the_graders_functions_are_called_back_over_stdin(kernel):
    """numerical_gradient(f, x): f stays in the grader; the kernel's calls of it come back
    as data, and the student's own input() gets an empty line."""
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    seen = []

    def quad(x):  # a closure over the grader's data, which never leaves the grader
        seen.append(type(x))
        return float(x @ A @ x)

    assert kernel.call("numerical", quad, np.array([1.0, 2.0])).tolist() == [18.0]
    assert seen == [np.ndarray]
    kernel.kc.execute_interactive("def ask(f):\n    return [input('name? '), f(1.0)]\n", timeout=30)
    assert kernel.call("ask", lambda v: v + 1) == ["", 2.0]


def test_random_generators_cross_as_state_and_advance_in_place(kernel):
    kernel.kc.execute_interactive("def draw(rng, n):\n    return rng.random(n)\n", timeout=30)
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(kernel.call("draw", rng, 3), ref.random(3))
    # The grader's generator advanced as if the draw had happened here.
    assert rng.random() == ref.random()


def test_a_function_that_hangs_times_out(kernel):
    short = channel.KernelChannel(kernel.kc, timeout=2)
    with pytest.raises(ChannelError, match="did not return"):
        short.call("slow", 1)
    kernel.kc.execute_interactive("", timeout=60)  # let the kernel finish the sleep


def test_a_returned_argument_is_the_graders_own_object_updated_in_place(kernel):
    import keras

    kernel.kc.execute_interactive(
        "def freeze(m):\n    for l in m.layers:\n        l.trainable = False\n    return m\n"
        "def freeze_copy(m):\n    import keras\n    c = keras.models.clone_model(m)\n"
        "    c.trainable = False\n    return c\n"
        "def compile_it(m):\n    import keras\n    m.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss='mse')\n",
        timeout=60)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="a"),
                              keras.layers.Dense(1, name="b")])
    assert kernel.call("freeze", model) is model
    assert [layer.trainable for layer in model.layers] == [False, False]
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="c")])
    copy = kernel.call("freeze_copy", fresh)
    assert copy is not fresh and fresh.layers[0].trainable, "a copy leaves the original alone"
    assert kernel.call("compile_it", fresh) is None
    assert isinstance(fresh.optimizer, keras.optimizers.RMSprop), "compile() in place comes back"


def test_grader_objects_stay_in_the_grader(kernel):
    """A probe with methods and attributes: the student's code uses it, the grader sees how."""
    calls = []

    class Probe:
        output_shape = (None, 2)

        def predict(self, x, verbose=0):
            calls.append(len(x))
            return np.zeros((len(x), 2))

    kernel.kc.execute_interactive(
        "def batched(m, x, bs):\n    import numpy as np\n"
        "    return np.concatenate([m.predict(x[i:i + bs]) for i in range(0, len(x), bs)]), m.output_shape\n",
        timeout=30)
    out, shape = kernel.call("batched", Probe(), np.ones((10, 3)), 4)
    assert out.shape == (10, 2) and shape == (None, 2) and calls == [4, 4, 2]
    with pytest.raises(StudentError, match="AttributeError"):
        kernel.kc.execute_interactive("def private(m):\n    return m._secret\n", timeout=30)
        kernel.call("private", Probe())


def test_keras_tensors_built_on_the_graders_input_and_builtin_callbacks(kernel):
    import keras

    kernel.kc.execute_interactive(
        "import keras\n"
        "def block(x, filters):\n    y = keras.layers.Conv2D(filters, 3, padding='same')(x)\n"
        "    return keras.layers.ReLU()(keras.layers.Add()([y, x]))\n"
        "def cbs(path):\n    return [keras.callbacks.EarlyStopping(monitor='val_loss', patience=4),\n"
        "            keras.callbacks.ModelCheckpoint(path, save_best_only=True)]\n", timeout=60)
    inp = keras.Input((5, 5, 2))
    out = kernel.call("block", inp, 2)
    assert tuple(out.shape) == (None, 5, 5, 2)
    model = keras.Model(inp, out)
    assert np.all(np.asarray(model(np.ones((1, 5, 5, 2), "float32"))) >= 0)
    es, mc = kernel.call("cbs", "/tmp/best.keras")
    assert isinstance(es, keras.callbacks.EarlyStopping) and es.patience == 4 and es.monitor == "val_loss"
    assert isinstance(mc, keras.callbacks.ModelCheckpoint) and mc.save_best_only is True
    assert str(mc.filepath) == "/tmp/best.keras"


def test_a_returned_model_that_uses_an_argument_shares_the_graders_object(kernel):
    import keras

    kernel.kc.execute_interactive(
        "def on_top(base):\n    base.trainable = False\n    inp = keras.Input(base.input_shape[1:])\n"
        "    return keras.Model(inp, keras.layers.Dense(2)(base(inp)))\n", timeout=60)
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="b1")])
    model = kernel.call("on_top", base)
    assert any(layer is base for layer in model.layers), "the grader's own base, not a copy"
    assert not base.trainable and len(model.trainable_weights) == 2
    x = np.ones((2, 3), "float32")
    assert model.predict(x, verbose=0).shape == (2, 2)
