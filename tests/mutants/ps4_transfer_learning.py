"""ps4-transfer-learning: plausible wrong answers (MUTANTS) and correct answers written
differently from the solution (ACCEPTED), per graded function. Source strings, exec'd by
tests/test_grading_power.py in the namespace a test cell sees."""

_UNFREEZE = """
def unfreeze_from(model, layer_name):
    names = [layer.name for layer in model.layers]
    {check}
    {model_flag}
    set_trainable = False
    for layer in model.layers:
        {body}
    return model
"""


def _unfreeze(check="if layer_name not in names:\n        raise ValueError(layer_name)",
              model_flag="model.trainable = True",
              body="if layer.name == layer_name:\n            set_trainable = True\n        "
                   "layer.trainable = set_trainable"):
    return _UNFREEZE.format(check=check, model_flag=model_flag, body=body)


_EXTRACT = """
def extract_features(base, x, batch_size=32):
    outputs = []
    for start in range({stop}):
        batch = x[start:start + {size}]
        outputs.append({out})
    return {combine}
"""


def _extract(stop="0, len(x), batch_size", size="batch_size",
             out="keras.ops.convert_to_numpy(base(batch, training=False))",
             combine="np.concatenate(outputs, axis=0)"):
    return _EXTRACT.format(stop=stop, size=size, out=out, combine=combine)


_TRANSFER = """
def build_transfer_model(base, num_classes, dropout=0.5):
    {freeze}
    inputs = keras.Input(shape={shape})
    x = {base_call}
    x = {pool}(x)
    {drop}
    outputs = keras.layers.Dense(num_classes, activation={activation})(x)
    model = keras.Model(inputs, outputs)
    {after}
    return model
"""


def _transfer(freeze="base.trainable = False", shape="base.input_shape[1:]",
              base_call="base(inputs, training=False)", pool="keras.layers.GlobalAveragePooling2D()",
              drop="x = keras.layers.Dropout(dropout)(x)", activation='"softmax"', after=""):
    return _TRANSFER.format(freeze=freeze, shape=shape, base_call=base_call, pool=pool, drop=drop,
                            activation=activation, after=after)


_COMPILE = """
def compile_for_fine_tuning(model, lr=1e-5):
    {ret}model.compile(optimizer={optimizer}, loss={loss}{metrics})
    {tail}
"""


def _compile(optimizer="keras.optimizers.RMSprop(learning_rate=lr)",
             loss='"sparse_categorical_crossentropy"', metrics=', metrics=["accuracy"]',
             ret="", tail="return model"):
    return _COMPILE.format(optimizer=optimizer, loss=loss, metrics=metrics, ret=ret, tail=tail)


MUTANTS: dict[str, dict[str, str]] = {
    "freeze": {
        "returns None": """
            def freeze(model):
                for layer in model.layers:
                    layer.trainable = False
            """,
        "only the first layer": """
            def freeze(model):
                model.layers[0].trainable = False
                return model
            """,
        "all layers but the last (thought to be the head)": """
            def freeze(model):
                for layer in model.layers[:-1]:
                    layer.trainable = False
                return model
            """,
        "only Conv2D layers": """
            def freeze(model):
                for layer in model.layers:
                    if isinstance(layer, keras.layers.Conv2D):
                        layer.trainable = False
                return model
            """,
        "comparison instead of assignment (==)": """
            def freeze(model):
                for layer in model.layers:
                    layer.trainable == False
                return model
            """,
        "freezes and returns a clone": """
            def freeze(model):
                frozen = keras.models.clone_model(model)
                frozen.set_weights(model.get_weights())
                frozen.trainable = False
                return frozen
            """,
        "toggles the flag (not layer.trainable)": """
            def freeze(model):
                for layer in model.layers:
                    layer.trainable = not layer.trainable
                return model
            """,
    },
    "unfreeze_from": {
        "off by one: the named layer stays frozen": _unfreeze(
            body="layer.trainable = set_trainable\n        if layer.name == layer_name:\n"
                 "            set_trainable = True"),
        "unfreezes everything": _unfreeze(body="layer.trainable = True"),
        "only the named layer": _unfreeze(body="layer.trainable = layer.name == layer_name"),
        "inverted: before trainable, from the layer on frozen": _unfreeze(
            body="if layer.name == layer_name:\n            set_trainable = True\n        "
                 "layer.trainable = not set_trainable"),
        "never freezes the earlier layers": _unfreeze(
            body="if layer.name == layer_name:\n            set_trainable = True\n        "
                 "if set_trainable:\n            layer.trainable = True"),
        "model.trainable left False (weights stay hidden)": _unfreeze(model_flag="pass"),
        "no ValueError on an unknown name": _unfreeze(check="pass"),
        "model.trainable = True after the loop (unfreezes all)": """
            def unfreeze_from(model, layer_name):
                if layer_name not in [layer.name for layer in model.layers]:
                    raise ValueError(layer_name)
                set_trainable = False
                for layer in model.layers:
                    if layer.name == layer_name:
                        set_trainable = True
                    layer.trainable = set_trainable
                model.trainable = True
                return model
            """,
        "returns None": """
            def unfreeze_from(model, layer_name):
                if layer_name not in [layer.name for layer in model.layers]:
                    raise ValueError(layer_name)
                model.trainable = True
                set_trainable = False
                for layer in model.layers:
                    if layer.name == layer_name:
                        set_trainable = True
                    layer.trainable = set_trainable
            """,
        "substring match (startswith)": _unfreeze(
            check="if not any(n.startswith(layer_name) for n in names):\n        raise ValueError(layer_name)",
            body="if layer.name.startswith(layer_name):\n            set_trainable = True\n        "
                 "layer.trainable = set_trainable"),
    },
    "extract_features": {
        "whole array at once, a tf.Tensor": """
            def extract_features(base, x, batch_size=32):
                return base(x, training=False)
            """,
        "whole array at once, no batches": """
            def extract_features(base, x, batch_size=32):
                return keras.ops.convert_to_numpy(base(x, training=False))
            """,
        "drops the last partial batch": _extract(stop="0, len(x) - batch_size + 1, batch_size"),
        "drops the last partial batch (len(x) // batch_size steps)": _extract(
            stop="0, (len(x) // batch_size) * batch_size, batch_size"),
        "ignores batch_size (always 32)": _extract(stop="0, len(x), 32", size="32"),
        "predict without batch_size (Keras' default 32)": """
            def extract_features(base, x, batch_size=32):
                return base.predict(x, verbose=0)
            """,
        "a list of batch outputs": _extract(combine="outputs"),
        "features flattened per image": _extract(
            combine="np.concatenate(outputs, axis=0).reshape(len(x), -1)"),
        "overlapping windows (step 1)": _extract(stop="0, len(x) - batch_size + 1"),
    },
    "build_transfer_model": {
        "Flatten instead of GlobalAveragePooling2D": _transfer(pool="keras.layers.Flatten()"),
        "GlobalMaxPooling2D": _transfer(pool="keras.layers.GlobalMaxPooling2D()"),
        "no Dropout": _transfer(drop=""),
        "Dropout rate hard-coded 0.5": _transfer(drop="x = keras.layers.Dropout(0.5)(x)"),
        "sigmoid output": _transfer(activation='"sigmoid"'),
        "linear output (logits)": _transfer(activation="None"),
        "base left trainable": _transfer(freeze="pass"),
        "whole model frozen, head included": _transfer(after="model.trainable = False"),
        "a fresh copy of the base (pretrained weights lost)": _transfer(
            freeze="base = keras.models.clone_model(base)\n    base.trainable = False"),
        "hard-coded digit input shape": _transfer(shape="(8, 8, 1)"),
        "an extra Dense layer in the head": _transfer(
            drop="x = keras.layers.Dense(64, activation='relu')(x)\n    x = keras.layers.Dropout(dropout)(x)"),
        "Dropout before the pooling": """
            def build_transfer_model(base, num_classes, dropout=0.5):
                base.trainable = False
                inputs = keras.Input(shape=base.input_shape[1:])
                x = base(inputs, training=False)
                x = keras.layers.Dropout(dropout)(x)
                x = keras.layers.Flatten()(x)
                outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
                return keras.Model(inputs, outputs)
            """,
    },
    "compile_for_fine_tuning": {
        "Adam": _compile(optimizer="keras.optimizers.Adam(learning_rate=lr)"),
        "SGD": _compile(optimizer="keras.optimizers.SGD(learning_rate=lr)"),
        "lr ignored (RMSprop's default 1e-3)": _compile(optimizer='"rmsprop"'),
        "lr hard-coded 1e-5": _compile(optimizer="keras.optimizers.RMSprop(learning_rate=1e-5)"),
        "categorical cross-entropy (one-hot loss)": _compile(loss='"categorical_crossentropy"'),
        "no metrics": _compile(metrics=""),
        "returns what compile returns (None)": _compile(ret="return ", tail=""),
        "mean squared error": _compile(loss='"mse"'),
    },
}

# Correct answers written differently from the solution: the hidden tests must accept them
# (grading power is worthless if right answers lose points).
ACCEPTED: dict[str, dict[str, str]] = {
    "freeze": {
        "the model's own flag (Keras propagates it to every layer)": """
            def freeze(model):
                model.trainable = False
                return model
            """,
        "both the flag and the layers": """
            def freeze(model):
                model.trainable = False
                for layer in model.layers:
                    layer.trainable = False
                return model
            """,
    },
    "unfreeze_from": {
        "index of the layer, then slices": """
            def unfreeze_from(model, layer_name):
                index = [layer.name for layer in model.layers].index(layer_name)  # ValueError if absent
                model.trainable = True
                for layer in model.layers[:index]:
                    layer.trainable = False
                for layer in model.layers[index:]:
                    layer.trainable = True
                return model
            """,
        "get_layer (raises ValueError), enumerate": """
            def unfreeze_from(model, layer_name):
                target = model.get_layer(layer_name)
                model.trainable = True
                seen = False
                for layer in model.layers:
                    seen = seen or layer is target
                    layer.trainable = seen
                return model
            """,
    },
    "extract_features": {
        "predict with batch_size": """
            def extract_features(base, x, batch_size=32):
                return base.predict(x, batch_size=batch_size, verbose=0)
            """,
        "predict_on_batch and np.vstack": """
            def extract_features(base, x, batch_size=32):
                n = x.shape[0]
                chunks = [np.asarray(base.predict_on_batch(x[i:min(i + batch_size, n)]))
                          for i in range(0, n, batch_size)]
                return np.vstack(chunks)
            """,
        "preallocated array, ceil division": """
            def extract_features(base, x, batch_size=32):
                steps = -(-len(x) // batch_size)
                out = None
                for i in range(steps):
                    f = base(x[i * batch_size:(i + 1) * batch_size]).numpy()
                    if out is None:
                        out = np.zeros((len(x), *f.shape[1:]), dtype=f.dtype)
                    out[i * batch_size:i * batch_size + len(f)] = f
                return out
            """,
    },
    "build_transfer_model": {
        "Sequential": """
            def build_transfer_model(base, num_classes, dropout=0.5):
                base.trainable = False
                return keras.Sequential([
                    keras.Input(shape=base.input_shape[1:]),
                    base,
                    keras.layers.GlobalAveragePooling2D(),
                    keras.layers.Dropout(dropout),
                    keras.layers.Dense(num_classes, activation="softmax"),
                ])
            """,
        "on base.output, layers frozen one by one": """
            def build_transfer_model(base, num_classes, dropout=0.5):
                for layer in base.layers:
                    layer.trainable = False
                x = keras.layers.GlobalAveragePooling2D()(base.output)
                x = keras.layers.Dropout(rate=dropout)(x)
                out = keras.layers.Dense(num_classes)(x)
                out = keras.layers.Activation("softmax")(out)
                return keras.Model(base.input, out)
            """,
    },
    "compile_for_fine_tuning": {
        "loss and metric objects, positional learning rate": """
            def compile_for_fine_tuning(model, lr=1e-5):
                model.compile(keras.optimizers.RMSprop(lr),
                              loss=keras.losses.SparseCategoricalCrossentropy(),
                              metrics=[keras.metrics.SparseCategoricalAccuracy()])
                return model
            """,
        "'acc' string": """
            def compile_for_fine_tuning(model, lr=1e-5):
                model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=lr, rho=0.9),
                              loss="sparse_categorical_crossentropy", metrics=["acc"])
                return model
            """,
    },
}
