"""A data-only channel between the trusted grader and a student's kernel.

The grader never runs student code and never unpickles anything a student produced. To
test a student's function it *asks the kernel* to call it: it sends the function's name
and arguments, the kernel calls the function and sends back the result as plain data,
and the grader checks that data in its own process, against expected values that never
leave it. This is the design of PrairieLearn's Python grader: student code runs in a
separate sandboxed process; the test harness only receives its results.

Values cross the channel as JSON. Each value is a small tagged object:

=============  ===================================================================
tag            what it carries (and how the grader decodes it)
=============  ===================================================================
``json``       ``None``, ``bool``, ``int``, ``str``, finite ``float`` as themselves
``float``      a non-finite Python float, as ``"nan"``, ``"inf"``, ``"-inf"``
``list``       a list, item by item (also ``tuple`` and ``dict`` with str keys)
``ndarray``    ``.npy`` bytes in base64, read with ``allow_pickle=False``; the result
               must be a plain ``numpy.ndarray`` of a bool, integer, float or complex
               dtype (a NumPy scalar travels as a 0-d array with ``"scalar": true``)
``keras``      a Keras model: its architecture JSON, compile config and weights
               (each weight an ``ndarray`` value); rebuilt with ``safe_mode=True``
``callback``   a Keras callback: its class name and plain settings; a built-in one comes
               back as an instance of Keras's class holding them
``keras_input``  a Keras ``Input`` the grader passes; the kernel makes its own
``keras_tensor`` a tensor the student built on those inputs, as the model between them;
               the grader applies that model to its own inputs
``rng``        a ``numpy.random.Generator`` as its bit generator's state (plain ints)
``function``   a function or object the grader passes as an argument (the ``f`` of
               ``numerical_gradient(f, x)``, a probe model with a custom layer): the
               kernel gets a stand-in whose calls, method calls and attribute reads come
               back to the grader as data, over the kernel's stdin channel
``arg``        the function returned one of its arguments ("returns the same model"):
               the grader gets its own object back, updated in place
``error``      the student's function raised: exception type name and message
``refused``    the result was of a type the channel does not carry
=============  ===================================================================

Everything else is refused with a clear message, so a student whose function returns a
generator, a lazy object or an ndarray subclass gets "returned a <type>" instead of a
verdict computed by their own object. Sizes and nesting depth are capped on both sides.

:func:`encode` and :func:`decode` are pure functions, tested without a kernel.
:func:`serve` is what runs inside the kernel. :class:`KernelChannel` is the grader's end:
it sends requests through a jupyter_client ``KernelClient`` and reads the reply from
iopub; :class:`StudentFunction` makes a student's name callable for hidden tests.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import queue
import secrets
import sys
import time
from typing import Any

import numpy as np

RESULT_MIME = "application/vnd.dlcourse.call-result+json"
MAX_BYTES = 64 * 1024 * 1024  # one reply, encoded
MAX_DEPTH = 32
MAX_ITEMS = 200_000
ARRAY_KINDS = "biufc"  # bool, signed, unsigned, float, complex: never object or void


class ChannelError(AssertionError):
    """A reply the grader cannot accept. An AssertionError, so the test cell fails."""


class CallTimeout(ChannelError):
    """The student's function did not return in time (the kernel was interrupted)."""


HEARTBEAT_GRACE = 5.0  # seconds without a heartbeat before a kernel counts as gone


class KernelGone(ChannelError):
    """The student's kernel stopped answering (it died or was stopped by a limit)."""


class StudentError(AssertionError):
    """The student's function raised; the test cell fails with its type and message."""

    def __init__(self, name: str, ename: str, evalue: str):
        self.ename, self.evalue = ename, evalue
        super().__init__(f"{name}(...) raised {ename}: {evalue}")


def student_error(name: str, ename: str, evalue: str) -> StudentError:
    """The student's exception for the grader's test: a :class:`StudentError` that is also
    the built-in exception it names, so ``except ValueError`` in a test still catches a
    ``ValueError`` the contract asks for. Only built-in exception classes are used."""
    import builtins

    cls = getattr(builtins, ename, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, StudentError):
        try:
            both = type(f"Student{ename}", (StudentError, cls), {})
            return both(name, ename, evalue)
        except TypeError:  # a built-in with its own layout (OSError, KeyError...)
            pass
    return StudentError(name, ename, evalue)


# --------------------------------------------------------------------------- encoding

def _npy(a: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.array(a, order="C", copy=True), allow_pickle=False)  # keeps 0-d arrays 0-d
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _read_npy(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
        a = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # ValueError for pickled (object) arrays, others for junk
        raise ChannelError(f"not a plain .npy array ({type(exc).__name__}: {exc})") from None
    if type(a) is not np.ndarray or a.dtype.kind not in ARRAY_KINDS or a.dtype.fields:
        raise ChannelError(f"an array of dtype {a.dtype} is not a numeric array")
    return a


def encode(value: Any, *, callbacks: list | None = None, _depth: int = 0, _count=None) -> dict:
    """One value as a tagged JSON object (see the module's table).

    Runs on both sides: the kernel encodes a student's result, the grader its arguments.
    ``callbacks`` (the grader's side only) collects the functions passed as arguments; the
    kernel calls them back through :meth:`KernelChannel.call`.
    """
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise ValueError(f"more than {MAX_ITEMS} values in one result")
    if _depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    kids = dict(callbacks=callbacks, _depth=_depth + 1, _count=count)
    if value is None or type(value) in (bool, int, str):
        if type(value) is int and abs(value) > 2**63:
            raise ValueError("an integer too large to carry")
        return {"t": "json", "v": value}
    if type(value) is float:
        if math.isfinite(value):
            return {"t": "json", "v": value}
        return {"t": "float", "v": str(value)}
    if type(value) in (list, tuple):
        return {"t": "list" if type(value) is list else "tuple",
                "items": [encode(v, **kids) for v in value]}
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise ValueError("dict keys must be strings")
        return {"t": "dict", "items": [[k, encode(v, **kids)] for k, v in value.items()]}
    if type(value) is np.ndarray or isinstance(value, np.generic):
        a = np.asarray(value)
        if type(a) is not np.ndarray or a.dtype.kind not in ARRAY_KINDS:
            raise ValueError(f"an array of dtype {a.dtype} is not a numeric array")
        return {"t": "ndarray", "npy": _npy(a), "scalar": isinstance(value, np.generic)}
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return {"t": "rng", "state": json.loads(json.dumps(state))}
    # A Keras object exists only where Keras was imported: never import it just to look.
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.KerasTensor):
        if callbacks is not None:  # the grader passes an Input: the kernel makes its own
            return {"t": "keras_input", "shape": list(value.shape[1:]), "dtype": str(value.dtype)}
        # The kernel returns a tensor built on the inputs it was given: send the layers
        # between them as a model, which the grader applies to its own inputs.
        inputs = [t for t in _CALL_INPUTS]
        if not inputs:
            raise ValueError("a Keras tensor that is not built on the inputs it was given")
        model = keras.Model(inputs if len(inputs) > 1 else inputs[0], value)
        return {"t": "keras_tensor", "model": encode(model, **kids)}
    if keras is not None and isinstance(value, keras.Model) and (
            callbacks is None or _builtin_layers_only(value)):
        compile_config = value.get_compile_config() if getattr(value, "compiled", False) else None
        return {"t": "keras", "architecture": value.to_json(),
                "compile": json.loads(json.dumps(compile_config, default=str)),
                "weights": [encode(np.asarray(w), **kids) for w in value.get_weights()],
                "trainable": _trainable_tree(value)}
    if keras is not None and isinstance(value, keras.callbacks.Callback):
        config = value.get_config() if hasattr(value, "get_config") else {
            k: v for k, v in vars(value).items()
            if not k.startswith("_") and type(v) in (bool, int, float, str, type(None))}
        config = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in config.items()
                  if type(v) in (bool, int, float, str, type(None)) or isinstance(v, os.PathLike)}
        return {"t": "callback", "class": type(value).__name__,
                "module": type(value).__module__, "config": config}
    if callbacks is not None and not isinstance(value, type):
        # The grader's own function or object that is not data (a probe model with a custom
        # layer, a fake model): it stays in the grader, and the kernel's uses of it come
        # back as data.
        callbacks.append(value)
        return {"t": "function", "id": len(callbacks) - 1,
                "name": str(getattr(value, "__name__", type(value).__name__))}
    raise ValueError(f"a value of type {type(value).__module__}.{type(value).__qualname__}")


def _builtin_layers_only(model) -> bool:
    """True when every layer is Keras's own, so the kernel can rebuild the model safely."""
    layers = [model]
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        layers.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return all(type(layer).__module__.startswith("keras.") for layer in layers)


def decode(obj: Any, *, _depth: int = 0) -> Any:
    """The grader's decoder: rebuilds plain values and checks every one. Never runs code."""
    if _depth > MAX_DEPTH + 2:
        raise ChannelError("the result is nested too deeply")
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise ChannelError("malformed value")
    tag = obj["t"]
    if tag == "json":
        v = obj.get("v")
        if v is not None and type(v) not in (bool, int, float, str):
            raise ChannelError(f"a JSON value of type {type(v).__name__} where a scalar belongs")
        return v
    if tag == "float":
        if obj.get("v") not in ("nan", "inf", "-inf"):
            raise ChannelError("malformed float")
        return float(obj["v"])
    if tag in ("list", "tuple"):
        items = obj.get("items")
        if not isinstance(items, list):
            raise ChannelError("malformed list")
        out = [decode(v, _depth=_depth + 1) for v in items]
        return out if tag == "list" else tuple(out)
    if tag == "dict":
        items = obj.get("items")
        if not isinstance(items, list) or not all(
                isinstance(p, list) and len(p) == 2 and type(p[0]) is str for p in items):
            raise ChannelError("malformed dict")
        return {k: decode(v, _depth=_depth + 1) for k, v in items}
    if tag == "ndarray":
        a = _read_npy(obj.get("npy", ""))
        if obj.get("scalar") is True:
            if a.ndim != 0:
                raise ChannelError("a NumPy scalar must travel as a 0-d array")
            return a[()]
        return a
    if tag == "keras":
        return _rebuild_keras_model(obj)
    if tag == "rng":
        return _rebuild_rng(obj.get("state"))
    if tag == "callback":
        return _rebuild_callback(obj)
    if tag == "keras_tensor":
        return _KerasTensorReply(decode(obj.get("model"), _depth=_depth + 1))
    if tag == "error":
        raise student_error(str(obj.get("name", "the function")), str(obj.get("ename", "Exception"))[:200],
                            str(obj.get("evalue", ""))[:2000])
    if tag == "refused":
        raise ChannelError(f"{obj.get('name', 'the function')}(...) returned {str(obj.get('why', ''))[:300]}, "
                           "which the grader cannot check; return NumPy arrays, Python numbers, "
                           "lists, tuples, dicts or Keras objects")
    raise ChannelError(f"unknown value tag {tag!r}")


class CallbackDescription:
    """A student's Keras callback as the grader sees it: class name and configuration."""

    def __init__(self, class_name: str, module: str, config: dict):
        self.class_name, self.module, self.config = class_name, module, config

    def __repr__(self) -> str:
        return f"CallbackDescription({self.class_name!r}, {self.config!r})"


def _trainable_tree(layer) -> list:
    """[trainable, [children...]]: every flag, input layers included, which the
    architecture JSON does not always carry."""
    return [bool(layer.trainable), [_trainable_tree(c) for c in getattr(layer, "layers", [])]]


def _apply_trainable_tree(layer, tree) -> None:
    # The layer's own flag first: Keras propagates it to the sublayers, which then get
    # their own flags.
    if not (isinstance(tree, list) and len(tree) == 2 and type(tree[0]) is bool
            and isinstance(tree[1], list)):
        raise ChannelError("malformed trainable flags")
    layer.trainable = tree[0]
    children = getattr(layer, "layers", [])
    if len(children) == len(tree[1]):
        for child, sub in zip(children, tree[1]):
            _apply_trainable_tree(child, sub)


class _KerasTensorReply:
    """A student's Keras tensor, as the model between the call's inputs and it; the
    grader's end applies it to the grader's own inputs."""

    def __init__(self, model):
        self.model = model


def _rebuild_callback(obj: dict):
    """A built-in Keras callback comes back as an instance of Keras's own class holding the
    student's settings (plain values only, set without running the class's code); any
    other callback as a :class:`CallbackDescription`."""
    config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    config = {str(k): v for k, v in config.items() if type(v) in (bool, int, float, str, type(None))}
    name, module = str(obj.get("class")), str(obj.get("module"))
    keras = sys.modules.get("keras")
    cls = getattr(getattr(keras, "callbacks", None), name, None) if keras else None
    if isinstance(cls, type) and module.startswith("keras.") and cls.__module__ == module:
        cb = cls.__new__(cls)
        cb.__dict__.update(config)
        return cb
    return CallbackDescription(name, module, config)


def _rebuild_keras_model(obj: dict):
    import keras

    arch = obj.get("architecture")
    if not isinstance(arch, str):
        raise ChannelError("malformed Keras model")
    try:
        config = json.loads(arch)
        # safe_mode=True refuses lambdas and other serialized code in the architecture.
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as exc:
        raise ChannelError(f"the model cannot be rebuilt safely ({type(exc).__name__}: "
                           f"{str(exc)[:300]}); use built-in Keras layers only") from None
    weights = [decode(w) for w in obj.get("weights") or []]
    if any(type(w) is not np.ndarray for w in weights):
        raise ChannelError("model weights must be arrays")
    try:
        model.set_weights(weights)
    except Exception as exc:
        raise ChannelError(f"the model's weights do not fit its layers ({exc})") from None
    if obj.get("compile") is not None:
        try:
            model.compile_from_config(obj["compile"])
        except Exception as exc:
            raise ChannelError(f"the model's compile settings cannot be rebuilt ({exc})") from None
    if obj.get("trainable") is not None:
        _apply_trainable_tree(model, obj["trainable"])
    return model


def _rebuild_rng(state) -> np.random.Generator:
    """A Generator from a bit generator's state: a dict of ints and names, nothing else."""
    def plain(v):
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        return type(v) in (int, str)

    names = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
             "Philox": np.random.Philox, "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}
    if not isinstance(state, dict) or not plain(state) or state.get("bit_generator") not in names:
        raise ChannelError("malformed random generator state")
    bit = names[state["bit_generator"]]()
    try:
        bit.state = state
    except Exception as exc:
        raise ChannelError(f"malformed random generator state ({exc})") from None
    return np.random.Generator(bit)


# --------------------------------------------------------------------------- kernel side

CALLBACK_PROMPT = "\x00dlcourse-callback:"


class _GraderFunction:
    """In the kernel: a function or object of the grader's. Calling it, or one of its
    methods, or reading an attribute, asks the grader over stdin; only data comes back."""

    def __init__(self, call_id: str, index: int, name: str, attr: str | None = None):
        self._call_id, self._index, self.__name__, self._attr = call_id, index, name, attr

    def _ask(self, **what):
        request = json.dumps({"id": self._call_id, "fn": self._index, **what})
        import builtins

        reply = json.loads(builtins.input(CALLBACK_PROMPT + request))
        if reply.get("t") == "method":
            return _GraderFunction(self._call_id, self._index, reply.get("name", ""), reply["name"])
        return _kernel_decode(reply, self._call_id)

    def __call__(self, *args, **kwargs):
        return self._ask(attr=self._attr, call=True, args=[encode(a) for a in args],
                         kwargs={k: encode(v) for k, v in kwargs.items()})

    def __getattr__(self, name: str):
        if name.startswith("__") or self._attr is not None:
            raise AttributeError(name)
        return self._ask(attr=name, call=False)


_CALL_INPUTS: list = []  # in the kernel: the Keras inputs made for the current call


def _kernel_decode(obj, call_id: str = ""):
    """The kernel's decoder for the grader's arguments (trusted data)."""
    if obj.get("t") == "keras_input":
        import keras

        tensor = keras.Input(shape=tuple(obj["shape"]), dtype=obj.get("dtype"))
        _CALL_INPUTS.append(tensor)
        return tensor
    if obj.get("t") == "function":
        return _GraderFunction(call_id, int(obj["id"]), str(obj.get("name", "f")))
    if obj.get("t") in ("list", "tuple"):
        out = [_kernel_decode(v, call_id) for v in obj["items"]]
        return out if obj["t"] == "list" else tuple(out)
    if obj.get("t") == "dict":
        return {k: _kernel_decode(v, call_id) for k, v in obj["items"]}
    if obj.get("t") == "keras":
        return _rebuild_keras_model(obj)
    return decode(obj)


def serve(request: str) -> None:
    """Inside the kernel: call the student's function and publish the result as data.

    ``request`` is the JSON the grader sent: ``{"id", "name", "args", "kwargs"}``. The reply
    is one display output of type :data:`RESULT_MIME`. The student can replace this function,
    but then the grader still only receives data, and checks it.
    """
    from IPython import get_ipython
    from IPython.display import publish_display_data

    req = json.loads(request)
    name = req["name"]
    _CALL_INPUTS.clear()
    try:
        if name.startswith("dlcourse.") and ":" in name:  # a course helper the tests use
            import importlib

            module, attr = name.split(":", 1)
            fn = getattr(importlib.import_module(module), attr)
        else:
            fn = get_ipython().user_ns[name]
        args = [_kernel_decode(a, req["id"]) for a in req.get("args", [])]
        kwargs = {k: _kernel_decode(v, req["id"]) for k, v in req.get("kwargs", {}).items()}
        result = fn(*args, **kwargs)
    except KeyError:
        reply = {"t": "error", "name": name, "ename": "NameError",
                 "evalue": f"name {name!r} is not defined"}
    except BaseException as exc:  # the student's exception, as data
        reply = {"t": "error", "name": name, "ename": type(exc).__name__, "evalue": str(exc)[:2000]}
    else:
        same = [i for i, a in enumerate(args) if result is a and not isinstance(a, (int, float, str, bool))]
        try:
            # "Returns the same model": the grader gets its own argument back, updated.
            reply = {"t": "arg", "index": same[0]} if same else encode(result)
            if reply.get("t") == "keras":
                # Argument models used as layers of the returned model ("use the base itself,
                # shared weights"): the grader puts its own objects in their place.
                reply["shared"] = [[i, j] for i, layer in enumerate(result.layers)
                                   for j, a in enumerate(args) if layer is a]
        except (ValueError, RecursionError) as exc:
            reply = {"t": "refused", "name": name, "why": str(exc)[:300]}
    # The arguments as the function left them: the grader takes back a generator's state and
    # a model's changes, and fails the call if an array argument changed. (A kernel that
    # hides a change only hides it: the grader's own arrays are never written to.)
    after = [_kernel_after(a) for a in locals().get("args", [])]
    kwargs_after = {k: _kernel_after(v) for k, v in locals().get("kwargs", {}).items()}
    publish_display_data({RESULT_MIME: {"id": req["id"], "value": reply, "args_after": after,
                                        "kwargs_after": kwargs_after}})


def _kernel_after(a):
    """An argument as the student's function left it, when the grader checks or takes it back:
    arrays, a dict of arrays (``params``), a list or tuple of arrays (``weights``), a random
    generator, a Keras model. Anything else: None."""
    keras = sys.modules.get("keras")
    keep = type(a) is np.ndarray or isinstance(a, np.random.Generator) or (
        keras is not None and isinstance(a, keras.Model)) or (
        type(a) is dict and all(type(v) is np.ndarray for v in a.values())) or (
        type(a) in (list, tuple) and all(type(v) is np.ndarray for v in a))
    try:
        return encode(a) if keep else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- grader side

class KernelChannel:
    """The grader's end: asks the kernel behind ``kc`` (a blocking jupyter_client
    ``KernelClient``) to call student functions, and decodes the replies."""

    def __init__(self, kc, timeout: float = 60.0):
        self.kc, self.timeout = kc, timeout

    def call(self, name: str, *args, **kwargs) -> Any:
        call_id = secrets.token_hex(8)
        callbacks: list = []
        request = json.dumps({"id": call_id, "name": name,
                              "args": [encode(a, callbacks=callbacks) for a in args],
                              "kwargs": {k: encode(v, callbacks=callbacks) for k, v in kwargs.items()}})
        code = f"__import__('autograder.channel', fromlist=['serve']).serve({request!r})"
        msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=bool(callbacks))
        reply, after, kwargs_after, size = None, None, None, 0
        deadline = time.monotonic() + self.timeout
        silent_since = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._interrupt()
                raise CallTimeout(f"{name}(...) did not return within {self.timeout:.0f} s")
            if callbacks:
                self._answer_callbacks(callbacks, call_id)
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 0.05 if callbacks else 1.0))
            except queue.Empty:
                # A kernel that died (or that a limit stopped) sends nothing more: its
                # heartbeat says so, instead of waiting for the whole timeout. One missed
                # heartbeat (1 s) is not death on a loaded machine: it must stay silent for
                # HEARTBEAT_GRACE seconds.
                if self.kc.is_alive():
                    silent_since = None
                elif silent_since is None:
                    silent_since = time.monotonic()
                elif time.monotonic() - silent_since > HEARTBEAT_GRACE:
                    raise KernelGone(f"the kernel stopped while {name}(...) ran") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind in ("display_data", "execute_result"):
                data = msg["content"].get("data", {})
                payload = data.get(RESULT_MIME)
                size += len(json.dumps(data))
                if size > MAX_BYTES:
                    raise ChannelError(f"{name}(...) returned more than {MAX_BYTES >> 20} MB")
                if isinstance(payload, dict) and payload.get("id") == call_id and reply is None:
                    reply = payload.get("value")
                    after = payload.get("args_after")
                    kwargs_after = payload.get("kwargs_after")
            elif kind == "stream":
                size += len(msg["content"].get("text", ""))
                if size > MAX_BYTES:
                    raise ChannelError(f"{name}(...) printed more than {MAX_BYTES >> 20} MB")
            elif kind == "status" and msg["content"].get("execution_state") == "idle":
                break
        if reply is None:
            raise ChannelError(f"{name}(...) gave no result")
        self._write_back(name, args, after)
        if isinstance(kwargs_after, dict):
            keys = [k for k in kwargs if k in kwargs_after]
            self._write_back(name, [kwargs[k] for k in keys], [kwargs_after[k] for k in keys],
                             labels=[f"argument {k}=" for k in keys])
        if isinstance(reply, dict) and reply.get("t") == "arg":
            index = reply.get("index")
            if type(index) is not int or not 0 <= index < len(args):
                raise ChannelError("malformed reply")
            return args[index]
        value = decode(reply)
        if isinstance(reply, dict) and reply.get("t") == "keras" and reply.get("shared"):
            value = self._share_layers(value, reply["shared"], args)
        if isinstance(value, _KerasTensorReply):
            keras = sys.modules["keras"]
            inputs = [a for a in list(args) + list(kwargs.values()) if isinstance(a, keras.KerasTensor)]
            return value.model(inputs if len(inputs) > 1 else inputs[0])
        return value

    @staticmethod
    def _share_layers(model, shared, args):
        """Rebuild ``model`` with the grader's own argument objects in place of the layers
        the student's model shared with its arguments, keeping every other layer's weights."""
        import keras

        swap = {}
        for pair in shared:
            if not (isinstance(pair, list) and len(pair) == 2 and all(type(v) is int for v in pair)):
                raise ChannelError("malformed shared layers")
            i, j = pair
            if 0 <= i < len(model.layers) and 0 <= j < len(args) and isinstance(args[j], keras.layers.Layer):
                swap[model.layers[i].name] = args[j]
        if not swap:
            return model
        tree = _trainable_tree(model)

        def clone(layer):
            if layer.name in swap:
                return swap[layer.name]
            return layer.__class__.from_config(layer.get_config())

        new = keras.models.clone_model(model, clone_function=clone)
        for old_layer, new_layer in zip(model.layers, new.layers):
            if new_layer is not swap.get(old_layer.name) and old_layer.weights:
                new_layer.set_weights(old_layer.get_weights())
        # The shared objects keep their own flags (written back from the arguments).
        tree[1] = [_trainable_tree(nl) if nl in swap.values() else t for nl, t in zip(new.layers, tree[1])]
        _apply_trainable_tree(new, tree)
        return new

    def _answer_callbacks(self, callbacks: list, call_id: str) -> None:
        """Answer the kernel's calls of the grader's functions (see :class:`_GraderFunction`).
        The arguments are the student's data, decoded like any result."""
        while True:
            try:
                msg = self.kc.get_stdin_msg(timeout=0)
            except queue.Empty:
                return
            prompt = msg.get("content", {}).get("prompt", "")
            if msg.get("msg_type") != "input_request" or not prompt.startswith(CALLBACK_PROMPT):
                self.kc.input("")  # the student's own input(): an empty line
                continue
            try:
                req = json.loads(prompt[len(CALLBACK_PROMPT):])
                if req.get("id") != call_id or not 0 <= int(req.get("fn", -1)) < len(callbacks):
                    raise ChannelError("a callback for another call")
                target = callbacks[int(req["fn"])]
                attr = req.get("attr")
                if attr is not None:
                    if not isinstance(attr, str) or attr.startswith("_"):
                        raise AttributeError(f"no attribute {attr!r}")
                    target = getattr(target, attr)
                    if not req.get("call"):
                        reply = {"t": "method", "name": attr} if callable(target) else encode(target)
                        self.kc.input(json.dumps(reply))
                        continue
                args = [decode(a) for a in req.get("args", [])]
                kwargs = {str(k): decode(v) for k, v in req.get("kwargs", {}).items()}
                reply = encode(_to_numpy(target(*args, **kwargs)))
            except Exception as exc:  # the grader's function failed on the student's data
                reply = {"t": "error", "name": "the grader's function",
                         "ename": type(exc).__name__, "evalue": str(exc)[:500]}
            self.kc.input(json.dumps(reply))

    def _interrupt(self) -> None:
        """Stop the student's function that ran over its time (``interrupt_request`` on the
        control channel, which ipykernel turns into SIGINT), so that the notebook goes on.
        A kernel that ignores it is stopped by the grader's notebook time limit."""
        try:
            self.kc.control_channel.send(self.kc.session.msg("interrupt_request", {}))
        except Exception:  # the kernel is gone: nothing to interrupt
            pass

    @staticmethod
    def _write_back(name: str, args, after, labels: list[str] | None = None) -> None:
        """What the student's function did to its arguments, on the grader's side.

        A random generator's state and a Keras model (flags, compile settings, weights)
        come back into the grader's objects: ``freeze(model)`` and ``dropout_forward(...,
        rng)`` act on their arguments by contract. An array argument, or an array in a dict
        argument (``params``), never does: the contract says inputs are not modified, so a
        change raises :class:`StudentError` and the test fails. Writing it back instead would
        let a student steer an expected value that a hidden test computes from that argument
        after the call. The same holds for a list or tuple of arrays, and for keyword
        arguments (``labels`` names them).

        ``after`` comes from the student's kernel: whatever it holds, it only ever fails the
        call or updates a generator or model argument; a malformed entry is ignored.
        """
        if not isinstance(after, list):
            return
        for index, (arg, enc) in enumerate(zip(args, after)):
            label = labels[index] if labels else f"argument {index + 1}"
            if isinstance(arg, np.random.Generator) and isinstance(enc, dict) and enc.get("t") == "rng":
                try:
                    arg.bit_generator.state = _rebuild_rng(enc.get("state")).bit_generator.state
                except (ChannelError, TypeError, ValueError):
                    pass
                continue
            keras = sys.modules.get("keras")
            if keras is not None and isinstance(arg, keras.Model) and isinstance(enc, dict):
                try:
                    _update_model(arg, decode(enc))
                except ChannelError:
                    pass
                continue
            arrays_in = type(arg) in (list, tuple) and any(type(v) is np.ndarray for v in arg)
            if enc is None or not (type(arg) is np.ndarray or type(arg) is dict or arrays_in):
                continue
            try:
                new = decode(enc)
            except (ChannelError, StudentError, RecursionError):
                continue
            if type(arg) is np.ndarray:
                pairs = [(label, arg, new)]
            elif type(arg) is dict:
                pairs = [(f"{label}[{key!r}]", value, new.get(key)) for key, value in arg.items()
                         if type(value) is np.ndarray] if type(new) is dict else []
            else:  # a list or tuple: each array in it, by position
                pairs = [(f"{label}[{i}]", value, new[i] if type(new) in (list, tuple) and i < len(new) else None)
                         for i, value in enumerate(arg) if type(value) is np.ndarray]
            for where, mine, theirs in pairs:
                if _changed(mine, theirs):
                    raise student_error(name, "InputModified",
                                        f"the function changed its {where} in place; it must not "
                                        f"modify its inputs (work on a copy: x = x.copy())")


def _changed(mine: np.ndarray, theirs) -> bool:
    """Whether the kernel's copy of an array argument differs from the grader's original."""
    if type(theirs) is not np.ndarray or theirs.shape != mine.shape:
        return True
    try:
        return not np.array_equal(mine, theirs, equal_nan=mine.dtype.kind in "fc")
    except TypeError:
        return not np.array_equal(mine, theirs)


def _to_numpy(value):
    """The grader's own results for the kernel: tensors as NumPy arrays."""
    if type(value) in (list, tuple):
        return type(value)(_to_numpy(v) for v in value)
    keras = sys.modules.get("keras")
    if keras is not None and not isinstance(value, np.ndarray) and keras.ops.is_tensor(value):
        return np.asarray(keras.ops.convert_to_numpy(value))
    return value


def _update_model(target, source) -> None:
    """Give the grader's model what the student's function did to its copy: trainable flags
    (the model's own first, then each layer's, since Keras propagates them down), weights
    and compile settings."""
    import keras

    if not isinstance(source, keras.Model):
        return

    _apply_trainable_tree(target, _trainable_tree(source))
    new = source.get_weights()
    if [w.shape for w in new] == [w.shape for w in target.get_weights()]:
        target.set_weights(new)
    if getattr(source, "compiled", False):
        target.compile_from_config(source.get_compile_config())


class StudentFunction:
    """A student's name, callable from the grader's tests: each call goes to the kernel."""

    def __init__(self, channel: KernelChannel, name: str):
        self._channel, self.__name__ = channel, name

    def __call__(self, *args, **kwargs):
        return self._channel.call(self.__name__, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"
