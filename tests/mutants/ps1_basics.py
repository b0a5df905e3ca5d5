"""ps1-basics: plausible wrong answers (MUTANTS) and correct answers written differently
from the solution (ACCEPTED), per graded function. Source strings, exec'd by
tests/test_grading_power.py in the namespace a test cell sees."""

_KERAS_MLP = """
def build_mlp(input_dim, num_classes):
    model = keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense({units}, activation={activation}),
    ])
    model.compile(optimizer={optimizer}, loss={loss}, metrics={metrics})
    return model
"""


def _mlp(units="num_classes", activation='"softmax"', optimizer='"adam"',
         loss='"sparse_categorical_crossentropy"', metrics='["accuracy"]'):
    return _KERAS_MLP.format(units=units, activation=activation, optimizer=optimizer,
                             loss=loss, metrics=metrics)


MUTANTS: dict[str, dict[str, str]] = {
    "softmax": {
        "no max shift (overflows)": """
            def softmax(z):
                e = np.exp(z)
                return e / np.sum(e, axis=-1, keepdims=True)
            """,
        "normalizes along axis 0": """
            def softmax(z):
                e = np.exp(z - np.max(z, axis=0, keepdims=True))
                return e / np.sum(e, axis=0, keepdims=True)
            """,
        "one max for the whole batch": """
            def softmax(z):
                e = np.exp(z - np.max(z))
                return e / np.sum(e, axis=-1, keepdims=True)
            """,
        "no keepdims": """
            def softmax(z):
                e = np.exp(z - np.max(z, axis=-1))
                return e / np.sum(e, axis=-1)
            """,
        "shifts by the mean": """
            def softmax(z):
                e = np.exp(z - np.mean(z, axis=-1, keepdims=True))
                return e / np.sum(e, axis=-1, keepdims=True)
            """,
        "clips the scores instead of shifting": """
            def softmax(z):
                e = np.exp(np.clip(z, -500, 500))
                return e / np.sum(e, axis=-1, keepdims=True)
            """,
        "computes in float32": """
            def softmax(z):
                z = np.asarray(z, dtype=np.float32)
                e = np.exp(z - np.max(z, axis=-1, keepdims=True))
                return e / np.sum(e, axis=-1, keepdims=True)
            """,
    },
    "cross_entropy": {
        "no clipping (inf at p = 0)": """
            def cross_entropy(probs, labels):
                return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))
            """,
        "sum instead of mean": """
            def cross_entropy(probs, labels):
                p = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7)
                return float(-np.sum(np.log(p)))
            """,
        "mean over every class": """
            def cross_entropy(probs, labels):
                return float(-np.mean(np.log(np.clip(probs, 1e-7, 1 - 1e-7))))
            """,
        "indexes probs[:, labels]": """
            def cross_entropy(probs, labels):
                return float(-np.mean(np.log(np.clip(probs[:, labels], 1e-7, 1 - 1e-7))))
            """,
        "uses the predicted class, not the label": """
            def cross_entropy(probs, labels):
                return float(-np.mean(np.log(np.clip(np.max(probs, axis=1), 1e-7, 1 - 1e-7))))
            """,
        "epsilon 1e-12 instead of Keras' 1e-7": """
            def cross_entropy(probs, labels):
                p = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1 - 1e-12)
                return float(-np.mean(np.log(p)))
            """,
    },
    "sgd_momentum": {
        "velocity sign flipped": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                next_v = momentum * v + lr * dw
                return w - next_v, next_v
            """,
        "lr outside the velocity (v = momentum * v + dw)": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                next_v = momentum * v + dw
                return w - lr * next_v, next_v
            """,
        "steps with the old velocity": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                next_v = momentum * v - lr * dw
                return w + v, next_v
            """,
        "Nesterov look-ahead step": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                next_v = momentum * v - lr * dw
                return w + momentum * next_v - lr * dw, next_v
            """,
        "velocity as a moving average of gradients": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                next_v = momentum * v + (1 - momentum) * dw
                return w - lr * next_v, next_v
            """,
    },
    "rmsprop": {
        "eps inside the square root": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                next_cache = decay * cache + (1 - decay) * dw**2
                return w - lr * dw / np.sqrt(next_cache + eps), next_cache
            """,
        "no (1 - decay) factor": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                next_cache = decay * cache + dw**2
                return w - lr * dw / (np.sqrt(next_cache) + eps), next_cache
            """,
        "decay weights swapped": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                next_cache = (1 - decay) * cache + decay * dw**2
                return w - lr * dw / (np.sqrt(next_cache) + eps), next_cache
            """,
        "steps with the old cache": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                next_cache = decay * cache + (1 - decay) * dw**2
                return w - lr * dw / (np.sqrt(cache) + eps), next_cache
            """,
        "no square root": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                next_cache = decay * cache + (1 - decay) * dw**2
                return w - lr * dw / (next_cache + eps), next_cache
            """,
    },
    "adam": {
        "no bias correction": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                return w - lr * m / (np.sqrt(v) + eps), m, v
            """,
        "t counted from 0 (t - 1 in the correction)": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat, v_hat = m / (1 - beta1 ** (t - 1)), v / (1 - beta2 ** (t - 1))
                return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
            """,
        "t one too high (t + 1 in the correction)": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1))
                return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
            """,
        "returns the bias-corrected moments as state": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
                return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_hat, v_hat
            """,
        "eps inside the square root": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
                return w - lr * m_hat / np.sqrt(v_hat + eps), m, v
            """,
        "beta1 in both corrections": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta1**t)
                return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
            """,
    },
    "k_fold_indices": {
        "drops the leftover indices": """
            def k_fold_indices(n, k):
                s = n // k
                return [(np.concatenate([np.arange(0, i * s), np.arange((i + 1) * s, k * s)]),
                         np.arange(i * s, (i + 1) * s)) for i in range(k)]
            """,
        "leftover goes to the last validation fold": """
            def k_fold_indices(n, k):
                s = n // k
                folds = []
                for i in range(k):
                    stop = n if i == k - 1 else (i + 1) * s
                    folds.append((np.concatenate([np.arange(0, i * s), np.arange(stop, n)]),
                                  np.arange(i * s, stop)))
                return folds
            """,
        "np.array_split folds (sklearn KFold sizes)": """
            def k_fold_indices(n, k):
                parts = np.array_split(np.arange(n), k)
                return [(np.concatenate([p for j, p in enumerate(parts) if j != i]), parts[i])
                        for i in range(k)]
            """,
        "shuffled indices": """
            def k_fold_indices(n, k):
                s = n // k
                order = np.random.default_rng(0).permutation(n)
                return [(np.concatenate([order[:i * s], order[(i + 1) * s:]]), order[i * s:(i + 1) * s])
                        for i in range(k)]
            """,
        "fold size rounded up": """
            def k_fold_indices(n, k):
                s = -(-n // k)
                return [(np.concatenate([np.arange(0, i * s), np.arange(min((i + 1) * s, n), n)]),
                         np.arange(i * s, min((i + 1) * s, n))) for i in range(k)]
            """,
        "validation range includes its end": """
            def k_fold_indices(n, k):
                s = n // k
                return [(np.concatenate([np.arange(0, i * s), np.arange((i + 1) * s + 1, n)]),
                         np.arange(i * s, min((i + 1) * s + 1, n))) for i in range(k)]
            """,
    },
    "standardize": {
        "test set scaled with its own statistics": """
            def standardize(train, test):
                def scale(x):
                    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-7)
                return scale(train), scale(test)
            """,
        "statistics of train and test together": """
            def standardize(train, test):
                both = np.concatenate([train, test])
                mean, std = both.mean(axis=0), np.maximum(both.std(axis=0), 1e-7)
                return (train - mean) / std, (test - mean) / std
            """,
        "modifies its inputs in place": """
            def standardize(train, test):
                mean, std = train.mean(axis=0), np.maximum(train.std(axis=0), 1e-7)
                train -= mean
                train /= std
                test -= mean
                test /= std
                return train, test
            """,
        "per example (axis=1)": """
            def standardize(train, test):
                mean = train.mean(axis=1, keepdims=True)
                std = np.maximum(train.std(axis=1, keepdims=True), 1e-7)
                return (train - mean) / std, (test - test.mean(axis=1, keepdims=True)) / np.maximum(
                    test.std(axis=1, keepdims=True), 1e-7)
            """,
        "sample standard deviation (ddof=1)": """
            def standardize(train, test):
                mean, std = train.mean(axis=0), np.maximum(train.std(axis=0, ddof=1), 1e-7)
                return (train - mean) / std, (test - mean) / std
            """,
        "no guard for a constant feature": """
            def standardize(train, test):
                mean, std = train.mean(axis=0), train.std(axis=0)
                return (train - mean) / std, (test - mean) / std
            """,
        "centres without scaling": """
            def standardize(train, test):
                mean = train.mean(axis=0)
                return train - mean, test - mean
            """,
    },
    "build_mlp": {
        "linear output (logits)": _mlp(activation="None"),
        "sigmoid output": _mlp(activation='"sigmoid"'),
        "relu output": _mlp(activation='"relu"'),
        "mean squared error loss": _mlp(loss='"mse"'),
        "one-hot loss (categorical_crossentropy)": _mlp(loss='"categorical_crossentropy"'),
        "no metrics": _mlp(metrics="[]"),
        "hard-coded digits shape (64 -> 10)": _mlp(units="10").replace("(input_dim,)", "(64,)"),
        "SGD with Adam's learning rate (1e-3)": _mlp(optimizer="keras.optimizers.SGD(learning_rate=1e-3)"),
    },
}

# Correct answers written differently from the solution: the hidden tests must accept them
# (grading power is worthless if right answers lose points).
ACCEPTED: dict[str, dict[str, str]] = {
    "softmax": {
        "log-sum-exp form": """
            def softmax(z):
                top = np.max(z, axis=-1, keepdims=True)
                lse = top + np.log(np.sum(np.exp(z - top), axis=-1, keepdims=True))
                return np.exp(z - lse)
            """,
    },
    "cross_entropy": {
        "log(p + eps)": """
            def cross_entropy(probs, labels):
                n = len(labels)
                return float(np.mean(-np.log(probs[range(n), labels] + 1e-7)))
            """,
        "one-sided clip, Python loop": """
            def cross_entropy(probs, labels):
                import math
                return sum(-math.log(max(probs[i][y], 1e-7)) for i, y in enumerate(labels)) / len(labels)
            """,
    },
    "sgd_momentum": {
        "updates v in place": """
            def sgd_momentum(w, dw, v, lr=1e-2, momentum=0.9):
                v *= momentum
                v -= lr * dw
                return w + v, v
            """,
    },
    "rmsprop": {
        "np.square and np.divide": """
            def rmsprop(w, dw, cache, lr=1e-2, decay=0.99, eps=1e-8):
                cache = decay * cache + (1 - decay) * np.square(dw)
                return w - np.divide(lr * dw, np.sqrt(cache) + eps), cache
            """,
    },
    "adam": {
        "updates the moments in place": """
            def adam(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
                m *= beta1
                m += (1 - beta1) * dw
                v *= beta2
                v += (1 - beta2) * dw * dw
                step = lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
                return w - step, m, v
            """,
    },
    "k_fold_indices": {
        "boolean mask": """
            def k_fold_indices(n, k):
                s = n // k
                out = []
                for i in range(k):
                    mask = np.zeros(n, dtype=bool)
                    mask[i * s:(i + 1) * s] = True
                    out.append((np.flatnonzero(~mask), np.flatnonzero(mask)))
                return out
            """,
    },
    "standardize": {
        "np.where guard": """
            def standardize(train, test):
                mu = np.mean(train, axis=0)
                sd = np.std(train, axis=0)
                sd = np.where(sd < 1e-7, 1e-7, sd)
                return (train - mu) / sd, (test - mu) / sd
            """,
    },
    "build_mlp": {
        "functional API, dropout, L2 and a Softmax layer": """
            def build_mlp(input_dim, num_classes):
                inputs = keras.Input(shape=(input_dim,))
                h = keras.layers.Dense(96, activation="relu",
                                       kernel_regularizer=keras.regularizers.l2(1e-4))(inputs)
                h = keras.layers.Dropout(0.1)(h)
                outputs = keras.layers.Softmax()(keras.layers.Dense(num_classes)(h))
                model = keras.Model(inputs, outputs)
                model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                              loss=keras.losses.SparseCategoricalCrossentropy(),
                              metrics=[keras.metrics.SparseCategoricalAccuracy()])
                return model
            """,
        "input_shape on the first Dense layer, default Adam": """
            def build_mlp(input_dim, num_classes):
                model = keras.Sequential([
                    keras.layers.Dense(64, activation="relu", input_shape=(input_dim,)),
                    keras.layers.Dense(num_classes, activation="softmax"),
                ])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"])
                return model
            """,
    },
}


# two_layer_net: the solution, with each plausible slip of a hand-written backward pass.
_TWO_LAYER_NET = """
def two_layer_net(params, x, y, reg=0.0):
    W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = x.shape[0]
    pre = x @ W1 + b1
    h = np.maximum(pre, 0.0)
    s = h @ W2 + b2
    shifted = s - s.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean() + reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    ds = np.exp(log_p)
    ds[np.arange(n), y] -= 1.0
    ds /= n
    dh = ds @ W2.T
    dpre = dh * (pre > 0)
    grads = {"W1": x.T @ dpre + 2 * reg * W1, "b1": dpre.sum(axis=0),
             "W2": h.T @ ds + 2 * reg * W2, "b2": ds.sum(axis=0)}
    return float(loss), grads
"""


def _tln(*edits):
    src = _TWO_LAYER_NET
    for old, new in edits:
        assert old in src, old
        src = src.replace(old, new)
    return src


MUTANTS["two_layer_net"] = {
    "no ReLU mask in the backward pass": _tln(("dpre = dh * (pre > 0)", "dpre = dh")),
    "gradients not divided by N": _tln(("    ds /= n\n", "")),
    "regularization gradient without its factor 2": _tln(
        ("x.T @ dpre + 2 * reg * W1", "x.T @ dpre + reg * W1"), ("h.T @ ds + 2 * reg * W2", "h.T @ ds + reg * W2")),
    "regularization applied to the biases too": _tln(
        ("reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))", "reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2) + np.sum(b1 ** 2) + np.sum(b2 ** 2))"),
        ('"b1": dpre.sum(axis=0)', '"b1": dpre.sum(axis=0) + 2 * reg * b1'),
        ('"b2": ds.sum(axis=0)}', '"b2": ds.sum(axis=0) + 2 * reg * b2}')),
    "softmax gradient without the one-hot subtraction": _tln(("    ds[np.arange(n), y] -= 1.0\n", "")),
    "transposed weight gradients": _tln(("x.T @ dpre", "(x.T @ dpre).T"), ("h.T @ ds", "(h.T @ ds).T")),
    "penalty with the 1/2 convention (0.5 * reg, gradient reg * W)": _tln(
        ("reg * (np.sum(W1 ** 2)", "0.5 * reg * (np.sum(W1 ** 2)"),
        ("x.T @ dpre + 2 * reg * W1", "x.T @ dpre + reg * W1"), ("h.T @ ds + 2 * reg * W2", "h.T @ ds + reg * W2")),
    "mask taken after the ReLU on the wrong side (h < 0)": _tln(("dpre = dh * (pre > 0)", "dpre = dh * (pre <= 0)")),
    "unstable softmax (no max shift)": _tln(("shifted = s - s.max(axis=1, keepdims=True)", "shifted = s")),
    "modifies params in place": _tln(
        ('W1, b1, W2, b2 = (np.asarray(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))',
         'W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))\n    W1 *= 1.0 + 1e-3')),
}

ACCEPTED["two_layer_net"] = {
    "mask from the activations, a one-hot matrix, log-sum-exp written out": """
        def two_layer_net(params, x, y, reg=0.0):
            W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
            y = np.asarray(y)
            n = len(y)
            h = np.maximum(0, x @ W1 + b1)
            s = h @ W2 + b2
            z = s - np.max(s, axis=1, keepdims=True)
            log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
            p = np.exp(log_p)
            onehot = np.eye(W2.shape[1])[y]
            loss = float(-np.sum(onehot * log_p) / n + reg * np.sum(W1 * W1) + reg * np.sum(W2 * W2))
            ds = (p - onehot) / n
            dh = (ds @ W2.T) * (h > 0)
            return loss, {"W1": x.T @ dh + 2 * reg * W1, "b1": np.sum(dh, axis=0),
                          "W2": h.T @ ds + 2 * reg * W2, "b2": np.sum(ds, axis=0)}
        """,
}

# Found by the review of 2026-12-03: stability "fixes" that change the loss.
MUTANTS["two_layer_net"].update({
    "scores clipped to +-500 instead of shifted": _tln(("shifted = s - s.max(axis=1, keepdims=True)",
                                                        "shifted = np.clip(s, -500, 500)")),
    "one maximum for the whole batch": _tln(("shifted = s - s.max(axis=1, keepdims=True)", "shifted = s - s.max()")),
})
