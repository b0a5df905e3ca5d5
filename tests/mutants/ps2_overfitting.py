"""ps2-overfitting: plausible wrong answers (MUTANTS) and correct answers written differently
from the solution (ACCEPTED), per graded function. Source strings, exec'd by
tests/test_grading_power.py in the namespace a test cell sees."""

_EARLY_STOPPING = """
def early_stopping_epoch(val_losses, patience):
    best, best_epoch, wait = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss {improves} best:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait {stops} patience:
                return {stop}, {best}
    return {last}, {best}
"""


def _early(improves="<", stops=">=", stop="epoch", best="best_epoch", last="len(val_losses) - 1"):
    return _EARLY_STOPPING.format(improves=improves, stops=stops, stop=stop, best=best, last=last)


_KERAS_MODEL = """
def build_regularized_model(input_dim):
    model = keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(32, activation="relu", {regularizer}),
        {dropout}
        keras.layers.Dense({units}, activation={activation}),
    ])
    model.compile(optimizer="adam", loss={loss}, metrics=["accuracy"])
    return model
"""


def _model(regularizer="kernel_regularizer=keras.regularizers.l2(1e-3)",
           dropout="keras.layers.Dropout(0.3),", units="1", activation='"sigmoid"',
           loss='"binary_crossentropy"'):
    return _KERAS_MODEL.format(regularizer=regularizer, dropout=dropout, units=units,
                               activation=activation, loss=loss)


MUTANTS: dict[str, dict[str, str]] = {
    "l2_penalty": {
        "textbook 1/2 factor (0.5 * lam)": """
            def l2_penalty(weights, lam):
                return 0.5 * lam * sum(float(np.sum(w ** 2)) for w in weights)
            """,
        "norm instead of squared norm": """
            def l2_penalty(weights, lam):
                return lam * sum(float(np.linalg.norm(w)) for w in weights)
            """,
        "L1 (absolute values)": """
            def l2_penalty(weights, lam):
                return lam * sum(float(np.sum(np.abs(w))) for w in weights)
            """,
        "mean of squares instead of sum": """
            def l2_penalty(weights, lam):
                return lam * sum(float(np.mean(w ** 2)) for w in weights)
            """,
        "only the first array": """
            def l2_penalty(weights, lam):
                return lam * float(np.sum(weights[0] ** 2)) if weights else 0.0
            """,
        "square of the summed norms": """
            def l2_penalty(weights, lam):
                return lam * sum(float(np.linalg.norm(w)) for w in weights) ** 2
            """,
        "lam squared": """
            def l2_penalty(weights, lam):
                return lam ** 2 * sum(float(np.sum(w ** 2)) for w in weights)
            """,
    },
    "dropout_forward": {
        "no rescaling": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * (rng.random(x.shape) >= rate)
            """,
        "also applied at inference": """
            def dropout_forward(x, rate, training, rng):
                if rate == 0:
                    return x
                return x * (rng.random(x.shape) >= rate) / (1 - rate)
            """,
        "keeps where r < rate": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * (rng.random(x.shape) < rate) / (1 - rate)
            """,
        "scales by (1 - rate) instead of dividing": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * (rng.random(x.shape) >= rate) * (1 - rate)
            """,
        "divides by rate (keep probability mix-up)": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * (rng.random(x.shape) >= rate) / rate
            """,
        "binomial mask (a different random stream)": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * rng.binomial(1, 1 - rate, size=x.shape) / (1 - rate)
            """,
        "global np.random instead of rng": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                return x * (np.random.random(x.shape) >= rate) / (1 - rate)
            """,
        "modifies x in place": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                x[rng.random(x.shape) < rate] = 0.0
                x /= 1 - rate
                return x
            """,
        "one mask value per row (shape (N,))": """
            def dropout_forward(x, rate, training, rng):
                if not training or rate == 0:
                    return x
                keep = rng.random(x.shape[0]) >= rate
                return (x.T * keep).T / (1 - rate)
            """,
    },
    "early_stopping_epoch": {
        "stops one epoch late (wait > patience)": _early(stops=">"),
        "an equal loss counts as improvement (<=)": _early(improves="<="),
        "best_epoch 1-based": _early(best="best_epoch + 1"),
        "stop_epoch 1-based": _early(stop="epoch + 1", last="len(val_losses)"),
        "never stopping returns len(val_losses)": _early(last="len(val_losses)"),
        "returns (best_epoch, stop_epoch)": """
            def early_stopping_epoch(val_losses, patience):
                best, best_epoch, wait = float("inf"), 0, 0
                for epoch, loss in enumerate(val_losses):
                    if loss < best:
                        best, best_epoch, wait = loss, epoch, 0
                    else:
                        wait += 1
                        if wait >= patience:
                            return best_epoch, epoch
                return best_epoch, len(val_losses) - 1
            """,
        "stops one epoch early (best + patience - 1)": """
            def early_stopping_epoch(val_losses, patience):
                best, best_epoch = float("inf"), 0
                for epoch, loss in enumerate(val_losses):
                    if loss < best:
                        best, best_epoch = loss, epoch
                    elif epoch - best_epoch + 1 >= patience:
                        return epoch, best_epoch
                return len(val_losses) - 1, best_epoch
            """,
        "best epoch from argmin of the whole run": """
            def early_stopping_epoch(val_losses, patience):
                best, best_epoch, wait = float("inf"), 0, 0
                for epoch, loss in enumerate(val_losses):
                    if loss < best:
                        best, best_epoch, wait = loss, epoch, 0
                    else:
                        wait += 1
                        if wait >= patience:
                            return epoch, int(np.argmin(val_losses))
                return len(val_losses) - 1, int(np.argmin(val_losses))
            """,
        "improvement measured against the previous epoch": """
            def early_stopping_epoch(val_losses, patience):
                best_epoch, wait = 0, 0
                for epoch in range(1, len(val_losses)):
                    if val_losses[epoch] < val_losses[epoch - 1]:
                        wait = 0
                        if val_losses[epoch] < val_losses[best_epoch]:
                            best_epoch = epoch
                    else:
                        wait += 1
                        if wait >= patience:
                            return epoch, best_epoch
                return len(val_losses) - 1, best_epoch
            """,
        "stop_epoch is the best epoch (restored weights)": _early(stop="best_epoch"),
    },
    "batchnorm_forward": {
        "unbiased variance (ddof=1)": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0, ddof=1) + eps) + beta
            """,
        "normalizes over axis 1 (per example)": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                mean = x.mean(axis=1, keepdims=True)
                var = x.var(axis=1, keepdims=True)
                return gamma * (x - mean) / np.sqrt(var + eps) + beta
            """,
        "eps outside the square root": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                return gamma * (x - x.mean(axis=0)) / (np.sqrt(x.var(axis=0)) + eps) + beta
            """,
        "gamma and beta swapped": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                return beta * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + gamma
            """,
        "Keras' default epsilon 1e-3, ignoring eps": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                return gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-3) + beta
            """,
        "gamma applied after beta": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                return gamma * ((x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta)
            """,
        "returns (out, cache)": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                mean, var = x.mean(axis=0), x.var(axis=0)
                x_hat = (x - mean) / np.sqrt(var + eps)
                return gamma * x_hat + beta, (x_hat, mean, var)
            """,
    },
    "precision_recall": {
        "precision and recall swapped": """
            def precision_recall(y_true, y_pred):
                tp = np.sum((y_true == 1) & (y_pred == 1))
                fp = np.sum((y_true == 0) & (y_pred == 1))
                fn = np.sum((y_true == 1) & (y_pred == 0))
                return (tp / (tp + fn) if tp + fn else 0.0), (tp / (tp + fp) if tp + fp else 0.0)
            """,
        "nan on a zero denominator": """
            def precision_recall(y_true, y_pred):
                tp = np.sum((y_true == 1) & (y_pred == 1))
                fp = np.sum((y_true == 0) & (y_pred == 1))
                fn = np.sum((y_true == 1) & (y_pred == 0))
                return float(np.float64(tp) / (tp + fp)), float(np.float64(tp) / (tp + fn))
            """,
        "1.0 on a zero denominator": """
            def precision_recall(y_true, y_pred):
                tp = np.sum((y_true == 1) & (y_pred == 1))
                fp = np.sum((y_true == 0) & (y_pred == 1))
                fn = np.sum((y_true == 1) & (y_pred == 0))
                return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)
            """,
        "ZeroDivisionError on a zero denominator": """
            def precision_recall(y_true, y_pred):
                tp = int(np.sum((y_true == 1) & (y_pred == 1)))
                fp = int(np.sum((y_true == 0) & (y_pred == 1)))
                fn = int(np.sum((y_true == 1) & (y_pred == 0)))
                return tp / (tp + fp), tp / (tp + fn)
            """,
        "accuracy as precision": """
            def precision_recall(y_true, y_pred):
                tp = np.sum((y_true == 1) & (y_pred == 1))
                fn = np.sum((y_true == 1) & (y_pred == 0))
                return float(np.mean(y_true == y_pred)), (tp / (tp + fn) if tp + fn else 0.0)
            """,
        "counts true negatives as hits": """
            def precision_recall(y_true, y_pred):
                hits = np.sum(y_true == y_pred)
                fp = np.sum((y_true == 0) & (y_pred == 1))
                fn = np.sum((y_true == 1) & (y_pred == 0))
                return (hits / (hits + fp) if hits + fp else 0.0), (hits / (hits + fn) if hits + fn else 0.0)
            """,
        "bitwise & on the labels (fails for float labels)": """
            def precision_recall(y_true, y_pred):
                tp = np.sum(y_true & y_pred)
                fp = np.sum(~y_true.astype(bool) & y_pred.astype(bool))
                fn = np.sum(y_true.astype(bool) & ~y_pred.astype(bool))
                return (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)
            """,
    },
    "numerical_gradient": {
        "forward difference": """
            def numerical_gradient(f, x, h=1e-5):
                x = x.copy()
                grad = np.zeros_like(x)
                fx = f(x)
                for idx in np.ndindex(x.shape):
                    old = x[idx]
                    x[idx] = old + h
                    grad[idx] = (f(x) - fx) / h
                    x[idx] = old
                return grad
            """,
        "divides by h instead of 2h": """
            def numerical_gradient(f, x, h=1e-5):
                x = x.copy()
                grad = np.zeros_like(x)
                for idx in np.ndindex(x.shape):
                    old = x[idx]
                    x[idx] = old + h
                    fp = f(x)
                    x[idx] = old - h
                    fm = f(x)
                    x[idx] = old
                    grad[idx] = (fp - fm) / h
                return grad
            """,
        "does not restore x (perturbs in place)": """
            def numerical_gradient(f, x, h=1e-5):
                grad = np.zeros_like(x)
                for idx in np.ndindex(x.shape):
                    old = x[idx]
                    x[idx] = old + h
                    fp = f(x)
                    x[idx] = old - h
                    fm = f(x)
                    grad[idx] = (fp - fm) / (2 * h)
                return grad
            """,
        "works on a copy but never restores it": """
            def numerical_gradient(f, x, h=1e-5):
                x = x.copy()
                grad = np.zeros_like(x)
                for idx in np.ndindex(x.shape):
                    x[idx] += h
                    fp = f(x)
                    x[idx] -= 2 * h
                    fm = f(x)
                    grad[idx] = (fp - fm) / (2 * h)
                return grad
            """,
        "loops over the first axis only": """
            def numerical_gradient(f, x, h=1e-5):
                x = x.copy()
                grad = np.zeros_like(x)
                for i in range(len(x)):
                    old = x[i].copy()
                    x[i] = old + h
                    fp = f(x)
                    x[i] = old - h
                    fm = f(x)
                    x[i] = old
                    grad[i] = (fp - fm) / (2 * h)
                return grad
            """,
        "perturbs every entry at once": """
            def numerical_gradient(f, x, h=1e-5):
                return np.full(x.shape, (f(x + h) - f(x - h)) / (2 * h))
            """,
        "returns a flat gradient": """
            def numerical_gradient(f, x, h=1e-5):
                flat = x.ravel().copy()
                grad = np.zeros(flat.size)
                for i in range(flat.size):
                    e = np.zeros(flat.size)
                    e[i] = h
                    grad[i] = (f((flat + e).reshape(x.shape)) - f((flat - e).reshape(x.shape))) / (2 * h)
                return grad
            """,
        "step scaled by |x| (relative step)": """
            def numerical_gradient(f, x, h=1e-5):
                x = x.copy()
                grad = np.zeros_like(x)
                for idx in np.ndindex(x.shape):
                    old = x[idx]
                    step = h * max(1.0, abs(old))
                    x[idx] = old + step
                    fp = f(x)
                    x[idx] = old - step
                    fm = f(x)
                    x[idx] = old
                    grad[idx] = (fp - fm) / (2 * h)
                return grad
            """,
    },
    "relative_error": {
        "mean instead of max": """
            def relative_error(a, b):
                return float(np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
            """,
        "no 1e-8 floor": """
            def relative_error(a, b):
                return float(np.max(np.abs(a - b) / (np.abs(a) + np.abs(b))))
            """,
        "floor added instead of max": """
            def relative_error(a, b):
                return float(np.max(np.abs(a - b) / (1e-8 + np.abs(a) + np.abs(b))))
            """,
        "|a + b| in the denominator": """
            def relative_error(a, b):
                return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a + b))))
            """,
        "max(|a|, |b|) in the denominator": """
            def relative_error(a, b):
                return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.maximum(np.abs(a), np.abs(b)))))
            """,
        "ratio of the norms": """
            def relative_error(a, b):
                return float(np.linalg.norm(a - b) / max(1e-8, np.linalg.norm(a) + np.linalg.norm(b)))
            """,
        "relative to b only": """
            def relative_error(a, b):
                return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(b))))
            """,
    },
    "log_uniform": {
        "uniform in linear space": """
            def log_uniform(low, high, n, rng):
                return rng.uniform(low, high, n)
            """,
        "natural exp of log10 bounds": """
            def log_uniform(low, high, n, rng):
                return np.exp(rng.uniform(np.log10(low), np.log10(high), n))
            """,
        "the bounds used as exponents": """
            def log_uniform(low, high, n, rng):
                return 10.0 ** rng.uniform(low, high, n)
            """,
        "an evenly spaced grid (np.logspace)": """
            def log_uniform(low, high, n, rng):
                return np.logspace(np.log10(low), np.log10(high), n, endpoint=False)
            """,
        "global np.random instead of rng": """
            def log_uniform(low, high, n, rng):
                return 10.0 ** np.random.uniform(np.log10(low), np.log10(high), n)
            """,
        "integer exponents": """
            def log_uniform(low, high, n, rng):
                return 10.0 ** rng.integers(int(np.log10(low)), int(np.log10(high)), n).astype(float)
            """,
        "log10 of the samples returned": """
            def log_uniform(low, high, n, rng):
                return rng.uniform(np.log10(low), np.log10(high), n)
            """,
    },
    "build_regularized_model": {
        "no L2 regularizer": _model(regularizer="kernel_regularizer=None"),
        "L2 on the bias only": _model(regularizer="bias_regularizer=keras.regularizers.l2(1e-3)"),
        "L2 on the activations (activity_regularizer)": _model(
            regularizer="activity_regularizer=keras.regularizers.l2(1e-3)"),
        "L1 instead of L2": _model(regularizer="kernel_regularizer=keras.regularizers.l1(1e-3)"),
        "no Dropout": _model(dropout=""),
        "Dropout with rate 0": _model(dropout="keras.layers.Dropout(0.0),"),
        "softmax over one unit": _model(activation='"softmax"'),
        "mean squared error loss": _model(loss='"mse"'),
        "linear output with a probability loss": _model(activation="None"),
        "logits with from_logits=True": _model(
            activation="None", loss="keras.losses.BinaryCrossentropy(from_logits=True)"),
        "hard-coded input_dim 30": _model().replace("(input_dim,)", "(30,)"),
        "not compiled": """
            def build_regularized_model(input_dim):
                return keras.Sequential([
                    keras.Input(shape=(input_dim,)),
                    keras.layers.Dense(32, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-3)),
                    keras.layers.Dropout(0.3),
                    keras.layers.Dense(1, activation="sigmoid"),
                ])
            """,
    },
}

# Correct answers written differently from the solution: the hidden tests must accept them
# (grading power is worthless if right answers lose points).
ACCEPTED: dict[str, dict[str, str]] = {
    "l2_penalty": {
        "squared Frobenius norms": """
            def l2_penalty(weights, lam):
                return lam * sum(np.linalg.norm(w) ** 2 for w in weights)
            """,
        "one concatenated vector, np.dot": """
            def l2_penalty(weights, lam):
                if not weights:
                    return 0.0
                flat = np.concatenate([np.ravel(w) for w in weights])
                return lam * np.dot(flat, flat)
            """,
        "Keras' own regularizer": """
            def l2_penalty(weights, lam):
                reg = keras.regularizers.l2(lam)
                return float(sum(float(keras.ops.convert_to_numpy(reg(w))) for w in weights))
            """,
    },
    "dropout_forward": {
        "mask times x over keep probability, float mask": """
            def dropout_forward(x, rate, training, rng):
                if training and rate > 0:
                    mask = (rng.random(x.shape) >= rate).astype(x.dtype)
                    return mask * x / (1 - rate)
                return x.copy()
            """,
    },
    "early_stopping_epoch": {
        "counts epochs since the best": """
            def early_stopping_epoch(val_losses, patience):
                best_epoch = 0
                for epoch in range(1, len(val_losses)):
                    if val_losses[epoch] < val_losses[best_epoch]:
                        best_epoch = epoch
                    elif epoch - best_epoch >= patience:
                        return epoch, best_epoch
                return len(val_losses) - 1, best_epoch
            """,
        "float('inf') start, wait counter": _early(),
    },
    "batchnorm_forward": {
        "explicit formulas with keepdims": """
            def batchnorm_forward(x, gamma, beta, eps=1e-5):
                n = x.shape[0]
                mu = np.sum(x, axis=0, keepdims=True) / n
                var = np.sum((x - mu) ** 2, axis=0, keepdims=True) / n
                x_hat = (x - mu) / np.sqrt(var + eps)
                return x_hat * gamma.reshape(1, -1) + beta.reshape(1, -1)
            """,
    },
    "precision_recall": {
        "boolean masks and np.count_nonzero": """
            def precision_recall(y_true, y_pred):
                t, p = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
                tp = np.count_nonzero(t & p)
                predicted, actual = np.count_nonzero(p), np.count_nonzero(t)
                return (tp / predicted if predicted else 0.0), (tp / actual if actual else 0.0)
            """,
    },
    "numerical_gradient": {
        "in place with +h, -2h, +h (restored up to rounding)": """
            def numerical_gradient(f, x, h=1e-5):
                grad = np.zeros_like(x, dtype=float)
                it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
                while not it.finished:
                    i = it.multi_index
                    x[i] += h
                    fp = f(x)
                    x[i] -= 2 * h
                    fm = f(x)
                    x[i] += h
                    grad[i] = (fp - fm) / (2 * h)
                    it.iternext()
                return grad
            """,
        "unit vectors on a flat view": """
            def numerical_gradient(f, x, h=1e-5):
                grad = np.zeros(x.size)
                for i in range(x.size):
                    e = np.zeros(x.size)
                    e[i] = h
                    e = e.reshape(x.shape)
                    grad[i] = (f(x + e) - f(x - e)) / (2 * h)
                return grad.reshape(x.shape)
            """,
    },
    "relative_error": {
        "np.fmax and abs of the difference": """
            def relative_error(a, b):
                a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
                return np.max(np.abs(a - b) / np.fmax(np.abs(a) + np.abs(b), 1e-8))
            """,
    },
    "log_uniform": {
        "natural logs (same samples)": """
            def log_uniform(low, high, n, rng):
                return np.exp(rng.uniform(np.log(low), np.log(high), n))
            """,
        "np.power with size=": """
            def log_uniform(low, high, n, rng):
                return np.power(10.0, rng.uniform(low=np.log10(low), high=np.log10(high), size=n))
            """,
    },
    "build_regularized_model": {
        "functional API, L1L2 with l2, BinaryCrossentropy object": """
            def build_regularized_model(input_dim):
                inputs = keras.Input(shape=(input_dim,))
                h = keras.layers.Dense(64, activation="relu",
                                       kernel_regularizer=keras.regularizers.L1L2(l1=0.0, l2=1e-4))(inputs)
                h = keras.layers.Dropout(0.5)(h)
                outputs = keras.layers.Dense(1, activation="sigmoid")(h)
                model = keras.Model(inputs, outputs)
                model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                              loss=keras.losses.BinaryCrossentropy(),
                              metrics=[keras.metrics.BinaryAccuracy()])
                return model
            """,
        "Dropout on the inputs, 'l2' string regularizer": """
            def build_regularized_model(input_dim):
                model = keras.Sequential([
                    keras.Input(shape=(input_dim,)),
                    keras.layers.Dropout(0.1),
                    keras.layers.Dense(16, activation="relu", kernel_regularizer="l2"),
                    keras.layers.Dense(1, activation="sigmoid"),
                ])
                model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
                return model
            """,
    },
}
