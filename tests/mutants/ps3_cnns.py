"""ps3-cnns: plausible wrong answers (MUTANTS) and correct answers written differently
from the solution (ACCEPTED), per graded function. Source strings, exec'd by
tests/test_grading_power.py in the namespace a test cell sees."""

# A correct conv2d with one piece swapped out by a format field: how "same" padding is split
# ({pad}), how a window is read ({window}), what is added at the end ({bias}).
_CONV2D = """
def conv2d(x, w, b, stride=1, padding="valid"):
    x = np.asarray(x, dtype=np.float64)
    kh, kw, c_in, c_out = w.shape
    h, wd, _ = x.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - wd, 0)
{pad}
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((oh, ow, c_out))
    for i in range(oh):
        for j in range(ow):
            win = x[i * {step}:i * {step} + kh, j * {step}:j * {step} + kw, :]
            out[i, j] = np.tensordot({window}, w, axes=([0, 1, 2], [0, 1, 2]))
    return out{bias}
"""
_PAD_TF = "        x = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))"


def _conv2d(pad=_PAD_TF, window="win", bias=" + b", step="stride"):
    return _CONV2D.format(pad=pad, window=window, bias=bias, step=step)


_KERAS_CNN = """
def build_convnet(input_shape, num_classes):
    model = keras.Sequential([
        keras.Input(shape={shape}),
{body}
        keras.layers.Dense(num_classes, activation={activation}),
    ])
    model.compile(optimizer={optimizer}, loss={loss}, metrics={metrics})
    return model
"""
_BODY = """\
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),"""


def _cnn(body=_BODY, activation='"softmax"', optimizer="keras.optimizers.Adam(3e-3)",
         loss='"sparse_categorical_crossentropy"', metrics='["accuracy"]', shape="input_shape"):
    return _KERAS_CNN.format(body=body, activation=activation, optimizer=optimizer, loss=loss,
                             metrics=metrics, shape=shape)


MUTANTS: dict[str, dict[str, str]] = {
    "conv_output_size": {
        "'same' rounds down (n // stride)": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return n // stride
                return (n - kernel) // stride + 1
            """,
        "'valid' without the + 1": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return -(-n // stride)
                return (n - kernel) // stride
            """,
        "'same' ignores the stride": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return n
                return (n - kernel) // stride + 1
            """,
        "'valid' as (n - kernel + 1) // stride": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return -(-n // stride)
                return (n - kernel + 1) // stride
            """,
        "'same' as the 'valid' formula with pad (kernel - 1) // 2 on each side": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    p = (kernel - 1) // 2
                    return (n + 2 * p - kernel) // stride + 1
                return (n - kernel) // stride + 1
            """,
        "float division (returns floats)": """
            import math
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return float(math.ceil(n / stride))
                return (n - kernel) / stride + 1
            """,
    },
    "conv2d": {
        "flipped kernel (a true convolution)": _conv2d(window="win[::-1, ::-1, :]"),
        "'same': the extra pad row/column at the top/left": _conv2d(
            pad="        x = np.pad(x, ((ph - ph // 2, ph // 2), (pw - pw // 2, pw // 2), (0, 0)))"),
        "'same': kernel // 2 zeros on every side": _conv2d(
            pad="        x = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))"),
        "'same': pad (kernel - 1) total, ignoring the stride": _conv2d(
            pad="        ph, pw = kh - 1, kw - 1\n" + _PAD_TF),
        "forgets the bias": _conv2d(bias=""),
        "ignores the stride (windows start at every pixel)": _conv2d(step="1"),
        "kernel rows and columns swapped": _conv2d(window="win.transpose(1, 0, 2)[:kh, :kw]")
        .replace("win = x[i * stride:i * stride + kh, j * stride:j * stride + kw, :]",
                 "win = x[i * stride:i * stride + kw, j * stride:j * stride + kh, :]"),
        "uses only the first input channel": """
            def conv2d(x, w, b, stride=1, padding="valid"):
                import tensorflow as tf
                x = np.asarray(x, dtype=np.float64)
                x1 = np.repeat(x[..., :1], x.shape[-1], axis=-1)
                return tf.nn.conv2d(x1[None], w, stride, padding.upper()).numpy()[0] + b
            """,
        "returns float32": """
            def conv2d(x, w, b, stride=1, padding="valid"):
                import tensorflow as tf
                x = np.asarray(x, dtype=np.float32)
                return tf.nn.conv2d(x[None], w.astype(np.float32), stride, padding.upper()).numpy()[0] + b.astype(np.float32)
            """,
    },
    "max_pool2d": {
        "mean instead of max (average pooling)": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
                out = np.zeros((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = x[i * stride:i * stride + pool, j * stride:j * stride + pool].mean(axis=(0, 1))
                return out
            """,
        "'same'-style: keeps a partial window at the end": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = -(-h // stride), -(-w // stride)
                out = np.zeros((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = x[i * stride:i * stride + pool, j * stride:j * stride + pool].max(axis=(0, 1))
                return out
            """,
        "steps by the pool size, ignoring stride": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = h // pool, w // pool
                out = np.zeros((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = x[i * pool:i * pool + pool, j * pool:j * pool + pool].max(axis=(0, 1))
                return out
            """,
        "maximum starts at 0 (wrong for negative maps)": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
                out = np.zeros((oh, ow, c))
                for u in range(pool):
                    for v in range(pool):
                        out = np.maximum(out, x[u:u + (oh - 1) * stride + 1:stride, v:v + (ow - 1) * stride + 1:stride])
                return out
            """,
        "maximum over the channels too": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
                out = np.zeros((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = x[i * stride:i * stride + pool, j * stride:j * stride + pool].max()
                return out
            """,
        "output size h // stride": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = h // stride, w // stride
                out = np.zeros((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = x[i * stride:i * stride + pool, j * stride:j * stride + pool].max(axis=(0, 1))
                return out
            """,
    },
    "receptive_field": {
        "ignores strides (1 + sum of kernel - 1)": """
            def receptive_field(layers):
                return 1 + sum(k - 1 for k, s in layers)
            """,
        "multiplies by the layer's own stride": """
            def receptive_field(layers):
                size = 1
                for k, s in layers:
                    size += (k - 1) * s
                return size
            """,
        "jump updated before adding (includes the current stride)": """
            def receptive_field(layers):
                size, jump = 1, 1
                for k, s in layers:
                    jump *= s
                    size += (k - 1) * jump
                return size
            """,
        "sums the kernels": """
            def receptive_field(layers):
                return sum(k for k, s in layers)
            """,
        "walks the layers output first": """
            def receptive_field(layers):
                size, jump = 1, 1
                for k, s in reversed(layers):
                    size += (k - 1) * jump
                    jump *= s
                return size
            """,
        "jump is the sum, not the product, of strides": """
            def receptive_field(layers):
                size, jump = 1, 1
                for k, s in layers:
                    size += (k - 1) * jump
                    jump += s - 1
                return size
            """,
    },
    "conv_params": {
        "forgets the bias": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in * c_out
            """,
        "forgets the input channels": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_out + (c_out if bias else 0)
            """,
        "kernel not squared": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return kernel * c_in * c_out + (c_out if bias else 0)
            """,
        "ignores bias=False": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in * c_out + c_out
            """,
        "a bias per input channel": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in * c_out + (c_in if bias else 0)
            """,
    },
    "separable_conv_params": {
        "counts a full convolution": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in * c_out + (c_out if bias else 0)
            """,
        "forgets the depthwise part": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return c_in * c_out + (c_out if bias else 0)
            """,
        "adds a depthwise bias too": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in + c_in * c_out + ((c_in + c_out) if bias else 0)
            """,
        "pointwise part without c_in": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in + c_out + (c_out if bias else 0)
            """,
        "depthwise filters per output channel": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_out + c_in * c_out + (c_out if bias else 0)
            """,
        "ignores bias=False": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                return kernel * kernel * c_in + c_in * c_out + c_out
            """,
    },
    "build_convnet": {
        "dense only (no Conv2D)": _cnn(body="""\
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),"""),
        "linear output (logits)": _cnn(activation="None"),
        "sigmoid output": _cnn(activation='"sigmoid"'),
        "over budget: Dense(1024) after flattening a full-size map": _cnn(body="""\
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),"""),
        "no metrics": _cnn(metrics="[]"),
        "one-hot loss (categorical_crossentropy)": _cnn(loss='"categorical_crossentropy"'),
        "MNIST recipe with 'valid' padding (runs out of pixels on 8x8)": _cnn(body="""\
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),"""),
        "hard-coded digits shape (8, 8, 1)": _cnn(shape="(8, 8, 1)"),
        "SGD with Adam's learning rate (1e-3)": _cnn(optimizer="keras.optimizers.SGD(learning_rate=1e-3)"),
    },
}

# Correct answers written differently from the solution: the hidden tests must accept them.
ACCEPTED: dict[str, dict[str, str]] = {
    "conv_output_size": {
        "math.ceil and math.floor": """
            import math
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding == "same":
                    return math.ceil(n / stride)
                return math.floor((n - kernel) / stride) + 1
            """,
        "'same' as (n - 1) // stride + 1, 'valid' as ceil((n - kernel + 1) / stride)": """
            def conv_output_size(n, kernel, stride=1, padding="valid"):
                if padding.lower() == "same":
                    return (n - 1) // stride + 1
                return -(-(n - kernel + 1) // stride)
            """,
    },
    "conv2d": {
        "einsum over sliding windows": """
            def conv2d(x, w, b, stride=1, padding="valid"):
                x = np.asarray(x, dtype=np.float64)
                kh, kw = w.shape[:2]
                if padding == "same":
                    pads = []
                    for n, k in zip(x.shape[:2], (kh, kw)):
                        total = max((-(-n // stride) - 1) * stride + k - n, 0)
                        pads.append((total // 2, total - total // 2))
                    x = np.pad(x, pads + [(0, 0)])
                win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))[::stride, ::stride]
                return np.einsum("ijcuv,uvco->ijo", win, w) + b
            """,
        "loop over output pixels, padded array built by hand": """
            def conv2d(x, w, b, stride=1, padding="valid"):
                h, wd, c = x.shape
                kh, kw, _, c_out = w.shape
                if padding == "same":
                    oh, ow = (h + stride - 1) // stride, (wd + stride - 1) // stride
                    ph = max((oh - 1) * stride + kh - h, 0)
                    pw = max((ow - 1) * stride + kw - wd, 0)
                    xp = np.zeros((h + ph, wd + pw, c))
                    xp[ph // 2:ph // 2 + h, pw // 2:pw // 2 + wd] = x
                else:
                    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
                    xp = np.array(x, dtype=float)
                flat_w = w.reshape(-1, c_out)
                out = np.empty((oh, ow, c_out))
                for i in range(oh):
                    for j in range(ow):
                        patch = xp[i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(-1)
                        out[i, j] = patch @ flat_w + b
                return out
            """,
    },
    "max_pool2d": {
        "sliding_window_view": """
            def max_pool2d(x, pool=2, stride=2):
                win = np.lib.stride_tricks.sliding_window_view(np.asarray(x, float), (pool, pool), axis=(0, 1))
                return win[::stride, ::stride].max(axis=(-2, -1))
            """,
        "loops over output pixels": """
            def max_pool2d(x, pool=2, stride=2):
                h, w, c = x.shape
                oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
                out = np.empty((oh, ow, c))
                for i in range(oh):
                    for j in range(ow):
                        out[i, j] = np.max(x[i * stride:i * stride + pool, j * stride:j * stride + pool], axis=(0, 1))
                return out
            """,
    },
    "receptive_field": {
        "walk back from the output": """
            def receptive_field(layers):
                size = 1
                for kernel, stride in layers[::-1]:
                    size = (size - 1) * stride + kernel
                return size
            """,
        "sum with an explicit product of earlier strides": """
            import math
            def receptive_field(layers):
                return 1 + sum((k - 1) * math.prod(s for _, s in layers[:i]) for i, (k, _) in enumerate(layers))
            """,
    },
    "conv_params": {
        "(k*k*c_in + 1) * c_out": """
            def conv_params(kernel, c_in, c_out, bias=True):
                return (kernel ** 2 * c_in + int(bias)) * c_out
            """,
    },
    "separable_conv_params": {
        "via a full 1x1 convolution": """
            def separable_conv_params(kernel, c_in, c_out, bias=True):
                depthwise = kernel ** 2 * c_in
                pointwise = (c_in + (1 if bias else 0)) * c_out
                return depthwise + pointwise
            """,
    },
    "build_convnet": {
        "functional API, global average pooling, separable and batch norm": """
            def build_convnet(input_shape, num_classes):
                inputs = keras.Input(shape=input_shape)
                h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
                h = keras.layers.BatchNormalization()(h)
                h = keras.layers.SeparableConv2D(64, 3, padding="same", activation="relu")(h)
                h = keras.layers.MaxPooling2D()(h)
                h = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
                h = keras.layers.GlobalAveragePooling2D()(h)
                outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
                model = keras.Model(inputs, outputs)
                model.compile(optimizer=keras.optimizers.Adam(3e-3),
                              loss=keras.losses.SparseCategoricalCrossentropy(),
                              metrics=[keras.metrics.SparseCategoricalAccuracy()])
                return model
            """,
        "one convolution, a Dense head and a Softmax layer": """
            def build_convnet(input_shape, num_classes):
                model = keras.Sequential([
                    keras.layers.Input(input_shape),
                    keras.layers.Conv2D(16, (3, 3), activation="relu", padding="same"),
                    keras.layers.MaxPooling2D((2, 2)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(64, activation="relu"),
                    keras.layers.Dense(num_classes),
                    keras.layers.Softmax(),
                ])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                return model
            """,
    },
}
