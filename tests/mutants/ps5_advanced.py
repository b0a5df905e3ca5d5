"""ps5-advanced: plausible wrong answers (MUTANTS) and correct answers written differently
from the solution (ACCEPTED), per graded function or class. Source strings, exec'd by
tests/test_grading_power.py in the namespace a test cell sees (set-up cells: numpy as np,
keras, `from keras import layers`)."""

# A two-input QA model with one piece swapped out by a format field.
_QA = """
def build_qa_model(text_vocab, question_vocab, answer_vocab):
    text_input = keras.Input(shape={shape}, dtype="int32"{text_name})
    question_input = keras.Input(shape={shape}, dtype="int32"{question_name})
    encoded_text = {encoder}(layers.Embedding({text_emb}, 32)(text_input))
    encoded_question = {q_encoder}(layers.Embedding({question_emb}, 16)(question_input))
    merged = {merge}([encoded_text, encoded_question])
    answer = layers.Dense(answer_vocab, activation={activation})(merged)
    model = keras.Model([text_input, question_input], answer)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model
"""


def _qa(shape="(None,)", text_name=', name="text"', question_name=', name="question"',
        encoder="layers.LSTM(32)", q_encoder="layers.LSTM(16)", text_emb="text_vocab",
        question_emb="question_vocab", merge="layers.Concatenate()", activation='"softmax"'):
    return _QA.format(shape=shape, text_name=text_name, question_name=question_name,
                      encoder=encoder, q_encoder=q_encoder, text_emb=text_emb,
                      question_emb=question_emb, merge=merge, activation=activation)


_MULTI = """
def build_multi_output_model(vocab, num_topics):
    posts = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(vocab, 32)(posts)
    x = layers.Conv1D(32, 5, activation="relu", padding="same")(x)
    x = layers.GlobalMaxPooling1D()(x)
    age = layers.Dense(1{age_act}{age_name})(x)
    gender = layers.Dense({gender_units}, activation={gender_act}{gender_name})(x)
    topic = layers.Dense(num_topics, activation={topic_act}{topic_name})(x)
    model = keras.Model(posts, [age, gender, topic])
    model.compile(optimizer="rmsprop", loss={loss})
    return model
"""
_LOSS_DICT = ('{"age": "mse", "gender": "binary_crossentropy", '
              '"topic": "sparse_categorical_crossentropy"}')


def _multi(age_act="", gender_units="1", gender_act='"sigmoid"', topic_act='"softmax"',
           loss=_LOSS_DICT, names=True):
    n = (lambda s: f', name="{s}"') if names else (lambda s: "")
    return _MULTI.format(age_act=age_act, gender_units=gender_units, gender_act=gender_act,
                         topic_act=topic_act, loss=loss, age_name=n("age"),
                         gender_name=n("gender"), topic_name=n("topic"))


_RESIDUAL = """
def residual_block(x, filters, stride=1):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding={padding})(x)
    {bn1}
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, 3, padding={padding})(y)
    {bn2}
    {relu_before}
    if {needs_projection}:
        shortcut = layers.Conv2D(filters, {proj_kernel}, strides={proj_stride}, padding="same")(x)
    y = {merge}
    return {final}
"""


def _res(padding='"same"', bn1="y = layers.BatchNormalization()(y)",
         bn2="y = layers.BatchNormalization()(y)", relu_before="",
         needs_projection="stride != 1 or x.shape[-1] != filters", proj_kernel="1",
         proj_stride="stride", merge="layers.Add()([y, shortcut])",
         final='layers.Activation("relu")(y)'):
    return _RESIDUAL.format(padding=padding, bn1=bn1, bn2=bn2, relu_before=relu_before,
                            needs_projection=needs_projection, proj_kernel=proj_kernel,
                            proj_stride=proj_stride, merge=merge, final=final)


_CALLBACKS = """
def make_callbacks(checkpoint_path, patience=3):
    return [
        keras.callbacks.ModelCheckpoint(checkpoint_path, monitor={mc_monitor}, save_best_only={best}),
        keras.callbacks.EarlyStopping(monitor={es_monitor}, patience={es_patience},
                                      restore_best_weights={restore}{es_extra}),
        keras.callbacks.ReduceLROnPlateau(monitor={rl_monitor}, factor={factor}{rl_extra}),
    ]
"""


def _cbs(mc_monitor='"val_loss"', best="True", es_monitor='"val_loss"', es_patience="patience",
         restore="True", es_extra="", rl_monitor='"val_loss"', factor="0.1", rl_extra=", patience=1"):
    return _CALLBACKS.format(mc_monitor=mc_monitor, best=best, es_monitor=es_monitor,
                             es_patience=es_patience, restore=restore, es_extra=es_extra,
                             rl_monitor=rl_monitor, factor=factor, rl_extra=rl_extra)


# A correct UpdateRatio with pieces swapped out: which layers ({select}), which weights
# ({grab}), when the start snapshot is taken ({begin_hook}) and the ratio ({ratio}).
_RATIO = """
class UpdateRatio(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.history = {{}}
        self._start = {{}}

    def _kernels(self):
        return {{layer.name: {grab}
                for layer in self.model.layers if {select}}}

    def {begin_hook}(self, *args, **kwargs):
        self._start = self._kernels()

    def {end_hook}(self, *args, **kwargs):
        for name, end in self._kernels().items():
            start = self._start[name]
            self.history.setdefault(name, []).append(float({ratio}))
"""
_KINDS = "isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D))"


def _ratio(grab="keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)", select=_KINDS,
           begin_hook="on_epoch_begin", end_hook="on_epoch_end",
           ratio="np.linalg.norm(end - start) / np.linalg.norm(start)"):
    return _RATIO.format(grab=grab, select=select, begin_hook=begin_hook, end_hook=end_hook,
                         ratio=ratio)


MUTANTS: dict[str, dict[str, str]] = {
    "build_qa_model": {
        "inputs not named": _qa(text_name="", question_name=""),
        "inputs named the other way round": _qa(text_name=', name="question"',
                                                question_name=', name="text"'),
        "fixed-length inputs (shape=(100,))": _qa(shape="(100,)"),
        "sigmoid output": _qa(activation='"sigmoid"'),
        "no activation on the output (logits)": _qa(activation="None"),
        "Add instead of Concatenate (encodings of different sizes)": _qa(merge="layers.Add()"),
        "vocabularies swapped between the embeddings": _qa(text_emb="question_vocab",
                                                           question_emb="text_vocab"),
        "embedding one row short (vocab - 1)": _qa(text_emb="text_vocab - 1",
                                                   question_emb="question_vocab - 1"),
        "Flatten instead of an encoder": _qa(encoder="layers.Flatten()", q_encoder="layers.Flatten()"),
        "the question is ignored": """
            def build_qa_model(text_vocab, question_vocab, answer_vocab):
                text_input = keras.Input(shape=(None,), dtype="int32", name="text")
                question_input = keras.Input(shape=(None,), dtype="int32", name="question")
                encoded_text = layers.LSTM(32)(layers.Embedding(text_vocab, 32)(text_input))
                encoded_question = layers.LSTM(16)(layers.Embedding(question_vocab, 16)(question_input))
                merged = layers.Concatenate()([encoded_text, layers.Lambda(lambda q: 0.0 * q)(encoded_question)])
                answer = layers.Dense(answer_vocab, activation="softmax")(merged)
                return keras.Model([text_input, question_input], answer)
            """,
    },
    "build_multi_output_model": {
        "outputs not named": _multi(names=False),
        "one shared loss for all outputs": _multi(loss='"mse"'),
        "age through a sigmoid": _multi(age_act=', activation="sigmoid"'),
        "gender as a softmax over one unit": _multi(gender_act='"softmax"'),
        "gender as a 2-way softmax (shape (batch, 2))": _multi(gender_units="2", gender_act='"softmax"'),
        "topic with a sigmoid": _multi(topic_act='"sigmoid"'),
        "losses listed in the wrong order": _multi(
            loss='["binary_crossentropy", "mse", "sparse_categorical_crossentropy"]'),
        "binary cross-entropy for the age": _multi(
            loss='{"age": "binary_crossentropy", "gender": "binary_crossentropy", '
                 '"topic": "sparse_categorical_crossentropy"}'),
        "categorical cross-entropy on integer topic labels": _multi(
            loss='{"age": "mse", "gender": "binary_crossentropy", "topic": "categorical_crossentropy"}'),
        "fixed-length input": _multi().replace("shape=(None,)", "shape=(20,)"),
    },
    "residual_block": {
        "no projection when only the stride changes": _res(needs_projection="x.shape[-1] != filters"),
        "projection always": _res(needs_projection="True"),
        "ReLU before the addition, none after": _res(
            relu_before='y = layers.Activation("relu")(y)', final="y"),
        "no ReLU at all at the end": _res(final="y"),
        "no batch normalization": _res(bn1="", bn2=""),
        "only one batch normalization": _res(bn2=""),
        "3x3 convolution as the shortcut": _res(proj_kernel="3"),
        "projection without the stride": _res(proj_stride="1"),
        "no shortcut (a plain block)": _res(merge="y"),
        "'valid' padding in the main path": _res(padding='"valid"'),
        "concatenation instead of addition": _res(merge="layers.Concatenate()([y, shortcut])"),
        "ReLU on the shortcut before the addition": _res(
            merge='layers.Add()([y, layers.Activation("relu")(shortcut)])', final="y"),
    },
    "make_callbacks": {
        "monitors val_accuracy": _cbs(mc_monitor='"val_accuracy"', es_monitor='"val_accuracy"',
                                      rl_monitor='"val_accuracy"'),
        "checkpoint monitors the training loss": _cbs(mc_monitor='"loss"'),
        "save_best_only=False": _cbs(best="False"),
        "restore_best_weights=False": _cbs(restore="False"),
        "factor 0.5": _cbs(factor="0.5"),
        "patience ignored (always 3)": _cbs(es_patience="3"),
        "patience given to ReduceLROnPlateau only": _cbs(es_patience="0",
                                                        rl_extra=", patience=patience"),
        "mode='max' (copied from an accuracy example)": _cbs(es_extra=', mode="max"'),
        "ReduceLROnPlateau missing": """
            def make_callbacks(checkpoint_path, patience=3):
                return [keras.callbacks.ModelCheckpoint(checkpoint_path, monitor="val_loss", save_best_only=True),
                        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                      restore_best_weights=True)]
            """,
        "returns a tuple": """
            def make_callbacks(checkpoint_path, patience=3):
                return (keras.callbacks.ModelCheckpoint(checkpoint_path, monitor="val_loss", save_best_only=True),
                        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                      restore_best_weights=True),
                        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1))
            """,
    },
    "UpdateRatio": {
        "ratio inverted": _ratio(ratio="np.linalg.norm(start) / np.linalg.norm(end - start)"),
        "divides by the norm AFTER the update": _ratio(
            ratio="np.linalg.norm(end - start) / np.linalg.norm(end)"),
        "kernel and bias together": _ratio(
            grab="np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in layer.weights]).astype(np.float64)"),
        "every layer with weights (BatchNormalization too)": _ratio(
            grab="keras.ops.convert_to_numpy(layer.weights[0]).astype(np.float64)",
            select="layer.weights"),
        "Dense and Conv2D only (Conv1D missed)": _ratio(
            select="isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))"),
        "per batch instead of per epoch": _ratio(begin_hook="on_train_batch_begin",
                                                 end_hook="on_train_batch_end"),
        "update measured against the initial weights": _ratio(begin_hook="on_train_begin"),
        "mean absolute values instead of Frobenius norms": _ratio(
            ratio="np.mean(np.abs(end - start)) / np.mean(np.abs(start))"),
        "squared norms": _ratio(ratio="np.sum((end - start) ** 2) / np.sum(start ** 2)"),
        "no copy: the snapshot is the live variable": _ratio(grab="layer.kernel",
            ratio="np.linalg.norm(keras.ops.convert_to_numpy(end) - keras.ops.convert_to_numpy(start))"
                  " / np.linalg.norm(keras.ops.convert_to_numpy(start))"),
    },
    "ensemble_predict": {
        "majority vote (one-hot of the argmax, averaged)": """
            def ensemble_predict(models, x):
                preds = [np.asarray(m.predict(x, verbose=0)) for m in models]
                votes = [np.eye(p.shape[1])[np.argmax(p, axis=1)] for p in preds]
                return np.mean(votes, axis=0)
            """,
        "returns the argmax of the mean": """
            def ensemble_predict(models, x):
                return np.argmax(np.mean([m.predict(x, verbose=0) for m in models], axis=0), axis=1)
            """,
        "sums instead of means": """
            def ensemble_predict(models, x):
                return np.sum([m.predict(x, verbose=0) for m in models], axis=0)
            """,
        "geometric mean, renormalized": """
            def ensemble_predict(models, x):
                logp = np.mean([np.log(np.clip(m.predict(x, verbose=0), 1e-12, 1)) for m in models], axis=0)
                p = np.exp(logp)
                return p / p.sum(axis=1, keepdims=True)
            """,
        "median": """
            def ensemble_predict(models, x):
                return np.median([m.predict(x, verbose=0) for m in models], axis=0)
            """,
        "mean over the wrong axis": """
            def ensemble_predict(models, x):
                return np.mean([m.predict(x, verbose=0) for m in models], axis=1)
            """,
        "only the first model": """
            def ensemble_predict(models, x):
                return np.asarray(models[0].predict(x, verbose=0))
            """,
        "element-wise max": """
            def ensemble_predict(models, x):
                return np.max([m.predict(x, verbose=0) for m in models], axis=0)
            """,
    },
}

ACCEPTED: dict[str, dict[str, str]] = {
    "build_qa_model": {
        "GRU and pooling encoders, inputs as a dict, float inputs, not compiled": """
            def build_qa_model(text_vocab, question_vocab, answer_vocab):
                inputs = {"question": keras.Input(shape=(None,), name="question"),
                          "text": keras.Input(shape=(None,), name="text")}
                t = layers.GRU(24)(layers.Embedding(text_vocab, 8)(inputs["text"]))
                q = layers.GlobalAveragePooling1D()(layers.Embedding(question_vocab, 8)(inputs["question"]))
                x = layers.concatenate([q, t])
                x = layers.Dense(32, activation="relu")(x)
                return keras.Model(inputs, layers.Dense(answer_vocab, activation="softmax")(x))
            """,
        "separate softmax Activation layer, Adam": """
            def build_qa_model(text_vocab, question_vocab, answer_vocab):
                text = keras.Input((None,), dtype="int64", name="text")
                question = keras.Input((None,), dtype="int64", name="question")
                t = layers.Bidirectional(layers.LSTM(8))(layers.Embedding(text_vocab, 16, mask_zero=True)(text))
                q = layers.LSTM(8)(layers.Embedding(question_vocab, 16)(question))
                logits = layers.Dense(answer_vocab)(layers.Concatenate(axis=-1)([t, q]))
                model = keras.Model(inputs=[text, question], outputs=layers.Activation("softmax")(logits))
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                return model
            """,
    },
    "build_multi_output_model": {
        "dict outputs, list of loss objects, relu on the age, valid Conv1D": """
            def build_multi_output_model(vocab, num_topics):
                posts = keras.Input(shape=(None,), dtype="int32", name="text")
                x = layers.Embedding(vocab, 16)(posts)
                x = layers.Conv1D(16, 3, activation="relu")(x)
                x = layers.MaxPooling1D(2)(x)
                x = layers.Conv1D(16, 3, activation="relu")(x)
                x = layers.GlobalMaxPooling1D()(x)
                outs = {"age": layers.Dense(1, activation="relu", name="age")(x),
                        "gender": layers.Dense(1, activation="sigmoid", name="gender")(x),
                        "topic": layers.Dense(num_topics, activation="softmax", name="topic")(x)}
                model = keras.Model(posts, outs)
                model.compile(optimizer="adam",
                              loss=[keras.losses.MeanSquaredError(), keras.losses.BinaryCrossentropy(),
                                    keras.losses.SparseCategoricalCrossentropy()],
                              loss_weights=[0.25, 1.0, 10.0], metrics={"gender": ["accuracy"]})
                return model
            """,
        "outputs in another order, loss dict with aliases, GRU encoder": """
            def build_multi_output_model(vocab, num_topics):
                posts = keras.Input(shape=(None,), dtype="int32")
                x = layers.GRU(16)(layers.Embedding(vocab, 16)(posts))
                topic = layers.Dense(num_topics, activation="softmax", name="topic")(x)
                age = layers.Dense(1, activation="linear", name="age")(x)
                gender = layers.Dense(1, activation="sigmoid", name="gender")(x)
                model = keras.Model(posts, [topic, age, gender])
                model.compile(optimizer="rmsprop",
                              loss={"topic": "sparse_categorical_crossentropy",
                                    "gender": keras.losses.binary_crossentropy,
                                    "age": "mean_squared_error"})
                return model
            """,
    },
    "residual_block": {
        "ResNet style: no conv bias, BN on the projection, ReLU layers, layers.add": """
            def residual_block(x, filters, stride=1):
                y = layers.Conv2D(filters, (3, 3), strides=(stride, stride), padding="same", use_bias=False)(x)
                y = layers.ReLU()(layers.BatchNormalization()(y))
                y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
                if stride > 1 or x.shape[-1] != filters:
                    x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x))
                return layers.ReLU()(layers.add([x, y]))
            """,
        "stride on the second convolution (ResNet v1.5 style), keras.ops": """
            def residual_block(x, filters, stride=1):
                shortcut = x
                if stride != 1 or x.shape[-1] != filters:
                    shortcut = layers.Conv2D(filters, kernel_size=1, strides=stride, padding="same")(x)
                y = layers.Conv2D(filters, 3, padding="same")(x)
                y = layers.Activation("relu")(layers.BatchNormalization()(y))
                y = layers.Conv2D(filters, 3, strides=stride, padding="same")(y)
                y = layers.BatchNormalization()(y)
                return layers.Activation("relu")(layers.Add()([shortcut, y]))
            """,
    },
    "make_callbacks": {
        "other order, a CSVLogger extra, explicit mode, verbose": """
            def make_callbacks(checkpoint_path, patience=3):
                return [
                    keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True, mode="min"),
                    keras.callbacks.ReduceLROnPlateau("val_loss", factor=1 / 10, patience=2, min_lr=1e-6, verbose=1),
                    keras.callbacks.ModelCheckpoint(filepath=checkpoint_path, monitor="val_loss",
                                                    save_best_only=True, mode="min"),
                    keras.callbacks.CSVLogger(checkpoint_path + ".csv"),
                ]
            """,
    },
    "UpdateRatio": {
        "snapshot at epoch end, hasattr(layer, 'kernel'), float32 norms": """
            class UpdateRatio(keras.callbacks.Callback):
                def __init__(self):
                    super().__init__()
                    self.history = {}

                def _grab(self):
                    return {l.name: np.array(keras.ops.convert_to_numpy(l.kernel), copy=True)
                            for l in self.model.layers if hasattr(l, "kernel")}

                def on_train_begin(self, logs=None):
                    self.previous = self._grab()

                def on_epoch_end(self, epoch, logs=None):
                    now = self._grab()
                    for name in now:
                        diff = now[name] - self.previous[name]
                        self.history.setdefault(name, []).append(
                            np.sqrt(np.sum(diff ** 2)) / np.sqrt(np.sum(self.previous[name] ** 2)))
                    self.previous = now
            """,
        "history filled in on_train_begin, get_weights()[0]": """
            class UpdateRatio(keras.callbacks.Callback):
                def on_train_begin(self, logs=None):
                    self.history = {}
                    self.layers = [l for l in self.model.layers
                                   if isinstance(l, (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D))]
                    for l in self.layers:
                        self.history[l.name] = []

                def on_epoch_begin(self, epoch, logs=None):
                    self.before = [l.get_weights()[0] for l in self.layers]

                def on_epoch_end(self, epoch, logs=None):
                    for l, w0 in zip(self.layers, self.before):
                        w1 = l.get_weights()[0]
                        self.history[l.name].append(np.linalg.norm((w1 - w0).ravel()) / np.linalg.norm(w0.ravel()))
            """,
    },
    "ensemble_predict": {
        "running sum, divided at the end": """
            def ensemble_predict(models, x):
                total = None
                for m in models:
                    p = np.asarray(m.predict(x, verbose=0), dtype=np.float64)
                    total = p if total is None else total + p
                return total / len(models)
            """,
        "np.stack and mean, float32": """
            def ensemble_predict(models, x):
                return np.stack([m.predict(x) for m in models]).mean(axis=0).astype("float32")
            """,
    },
}
