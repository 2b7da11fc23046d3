"""Graphs beyond one input and one output, written as Keras code with
``keras.`` replaced by ``cnn.``: a two-output model (a loss per output, loss
weights, metrics per output), a two-input model with a shared layer (a
siamese pair), and a layer applied twice in a row. Each follows Keras step by
step in float64 (losses, every log entry, every weight) with Keras's layer
and weight order; the shared layers' summed gradients are checked by central
differences; Keras's forms of x, y, loss, loss_weights and metrics (lists,
dicts by name) and its log names and orders."""
import numpy as np
import pytest

import cnn
from cnn.errors import InputError
from cnn.gradcheck import check_model


def two_outputs(api):
    """A digit-like net with a classifier head and a regression head; the
    heads are named so that Keras's sorted log names and the output order differ."""
    L = api.layers
    inputs = api.Input(shape=(8, 8, 2), name="image")
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flat")(x)
    zed = L.Dense(3, activation="softmax", name="zed")(x)
    hidden = L.Dense(5, activation="tanh", name="hidden")(x)
    alpha = L.Dense(2, name="alpha")(hidden)
    return api.Model(inputs, [zed, alpha])


def siamese(api):
    """Two images through one shared tower, their features concatenated."""
    L = api.layers
    left, right = api.Input(shape=(6, 6, 1), name="left"), api.Input(shape=(6, 6, 1), name="right")
    conv = L.Conv2D(3, 3, activation="relu", name="tower_conv")
    pool = L.GlobalAveragePooling2D(name="tower_pool")
    dense = L.Dense(4, activation="tanh", name="tower_dense")
    a = dense(pool(conv(left)))
    b = dense(pool(conv(right)))
    both = L.concatenate([a, b], name="both")
    out = L.Dense(2, activation="softmax", name="same")(both)
    return api.Model([left, right], out)


def twice(api):
    """One convolution applied twice in a row (the same weights, two depths)."""
    L = api.layers
    inputs = api.Input(shape=(6, 6, 3))
    conv = L.Conv2D(3, 3, padding="same", activation="tanh", name="again")
    x = conv(conv(inputs))
    x = L.Flatten(name="flat")(x)
    return api.Model(inputs, L.Dense(2, activation="softmax", name="out")(x))


def _two_output_data(n=16):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 8, 8, 2))
    return x, [np.eye(3)[rng.integers(0, 3, n)], rng.standard_normal((n, 2))]


def _siamese_data(n=16):
    rng = np.random.default_rng(6)
    return [rng.standard_normal((n, 6, 6, 1)), rng.standard_normal((n, 6, 6, 1))], np.eye(2)[rng.integers(0, 2, n)]


def _twice_data(n=16):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, 6, 6, 3)), np.eye(2)[rng.integers(0, 2, n)]


def _sgd(api):
    return api.optimizers.SGD(learning_rate=2**-4, momentum=0.875)  # float32-exact, as Keras rounds them


def _assert_same_weights(ours, theirs):
    for got, want, weight in zip(ours.get_weights(), theirs.get_weights(), theirs.weights):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12, err_msg=weight.path)


def test_a_two_output_model_follows_keras_step_by_step(float64):
    keras = float64
    cnn.set_seed(0)
    ours, theirs = two_outputs(cnn), two_outputs(keras)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers][1:]  # Keras lists its InputLayer
    assert ours.output_names == theirs.output_names == ["zed", "alpha"]
    ours.set_weights(theirs.get_weights())
    x, y = _two_output_data()
    for got, want in zip(ours.predict(x), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    settings = dict(loss=["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                    metrics=[["accuracy", "mae"], ["mae"]])
    ours.compile(optimizer=_sgd(cnn), **settings)
    theirs.compile(optimizer=_sgd(keras), **settings)
    for step in range(20):
        batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
        mine = ours.train_on_batch(x[batch], [t[batch] for t in y])
        reference = theirs.train_on_batch(x[batch], [t[batch] for t in y])
        np.testing.assert_allclose(mine, np.asarray(reference, dtype=np.float64), rtol=1e-9, err_msg=str(step))
    _assert_same_weights(ours, theirs)
    # Keras's names and orders: evaluate's list (loss, each output's loss, the metrics sorted),
    # the dict and the history (keys sorted)
    np.testing.assert_allclose(ours.evaluate(x, y), theirs.evaluate(x, y, verbose=0), rtol=1e-9)
    mine, reference = ours.evaluate(x, y, return_dict=True), theirs.evaluate(x, y, verbose=0, return_dict=True)
    assert list(mine) == list(reference)
    np.testing.assert_allclose(list(mine.values()), list(reference.values()), rtol=1e-9)
    history = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y))
    expected = theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y))
    assert list(history.history) == list(expected.history)
    for key in expected.history:
        np.testing.assert_allclose(history.history[key], expected.history[key], rtol=1e-9, err_msg=key)
    _assert_same_weights(ours, theirs)


def test_a_two_output_model_takes_kerass_dict_forms(float64):
    keras = float64
    cnn.set_seed(1)
    ours, theirs = two_outputs(cnn), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    x, (classes, values) = _two_output_data()
    settings = dict(loss={"alpha": "mse", "zed": "categorical_crossentropy"}, loss_weights={"alpha": 2.0, "zed": 0.25},
                    metrics={"zed": "accuracy"})
    ours.compile(optimizer=_sgd(cnn), **settings)
    theirs.compile(optimizer=_sgd(keras), **settings)
    for _ in range(3):
        mine = ours.train_on_batch({"image": x}, {"alpha": values, "zed": classes}, return_dict=True)
        reference = theirs.train_on_batch({"image": x}, {"alpha": values, "zed": classes}, return_dict=True)
    assert list(mine) == list(reference)
    np.testing.assert_allclose(list(mine.values()), list(reference.values()), rtol=1e-9)
    _assert_same_weights(ours, theirs)


def test_a_siamese_pair_shares_its_tower_as_keras_does(float64):
    keras = float64
    cnn.set_seed(2)
    ours, theirs = siamese(cnn), siamese(keras)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers if type(l).__name__ != "InputLayer"]
    assert ours.input_names == ["left", "right"] and ours.count_params() == theirs.count_params()
    ours.set_weights(theirs.get_weights())
    x, y = _siamese_data()
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-12, atol=1e-13)
    ours.compile(optimizer=_sgd(cnn), loss="categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(optimizer=_sgd(keras), loss="categorical_crossentropy", metrics=["accuracy"])
    for step in range(20):
        batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
        inputs = {"left": x[0][batch], "right": x[1][batch]} if step % 3 else [x[0][batch], x[1][batch]]
        mine = ours.train_on_batch(inputs, y[batch])
        reference = theirs.train_on_batch([x[0][batch], x[1][batch]], y[batch])
        np.testing.assert_allclose(mine, np.asarray(reference, dtype=np.float64), rtol=1e-9, err_msg=str(step))
    _assert_same_weights(ours, theirs)


@pytest.mark.parametrize("build,data", [(siamese, _siamese_data), (twice, _twice_data)])
def test_a_shared_layers_summed_gradients_are_central_differences(build, data, engine_float64):
    cnn.set_seed(3)
    model = build(cnn)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = data(4)
    report = check_model(model, x, y, training=False)
    assert report.passed, report
    shared = [name for name in report if name.startswith(("tower_conv", "again"))]
    assert shared  # the shared convolution is among what was checked


def test_a_layer_applied_twice_follows_keras(float64):
    keras = float64
    cnn.set_seed(4)
    ours, theirs = twice(cnn), twice(keras)
    ours.set_weights(theirs.get_weights())
    x, y = _twice_data()
    ours.compile(optimizer=_sgd(cnn), loss="categorical_crossentropy")
    theirs.compile(optimizer=_sgd(keras), loss="categorical_crossentropy")
    for step in range(20):
        batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
        assert ours.train_on_batch(x[batch], y[batch]) == pytest.approx(
            float(theirs.train_on_batch(x[batch], y[batch])), rel=1e-9), step
    _assert_same_weights(ours, theirs)


def test_summary_names_each_call_as_keras_does():
    lines = []
    siamese(cnn).summary(print_fn=lines.append)
    row = next(line for line in lines if line.startswith("tower_conv (Conv2D)"))
    assert row.rstrip().endswith("left[0][0], right[0][0]")
    row = next(line for line in lines if line.startswith("both (Concatenate)"))
    assert row.rstrip().endswith("tower_dense[0][0], tower_dense[1][0]")


def test_wrong_forms_of_x_y_and_compile_are_refused_by_name():
    model = two_outputs(cnn)
    x, y = _two_output_data(4)
    x, y = x.astype(np.float32), [t.astype(np.float32) for t in y]
    with pytest.raises(InputError, match=r"metrics=\['accuracy'\] for a model with 2 outputs"):
        model.compile(loss="mse", metrics=["accuracy"])
    with pytest.raises(InputError, match="loss names 'beta', which is not an output"):
        model.compile(loss={"beta": "mse"})
    with pytest.raises(InputError, match="a list of 1 for a model with 2 outputs"):
        model.compile(loss=["mse"])
    with pytest.raises(InputError, match="output 'alpha' has no loss"):
        model.compile(loss={"zed": "mse"})
    with pytest.raises(InputError, match="loss_weights=0.5 for a model with 2 outputs"):
        model.compile(loss="mse", loss_weights=0.5)
    model.compile(loss=["categorical_crossentropy", "mse"])
    with pytest.raises(InputError, match=r"y must be a list of 2 arrays or a dict keyed by \['zed', 'alpha'\]"):
        model.fit(x, y[0], verbose=0)
    with pytest.raises(InputError, match="y has no entry for 'alpha'"):
        model.fit(x, {"zed": y[0]}, verbose=0)
    with pytest.raises(InputError, match=r"y 'alpha' must have shape \(4, 2\)"):
        model.fit(x, [y[0], y[1][:, :1]], verbose=0)
    pair = siamese(cnn)
    left, right = _siamese_data(4)[0]
    with pytest.raises(InputError, match="the inputs hold different numbers of samples"):
        pair.predict([left.astype(np.float32), right[:3].astype(np.float32)])
    with pytest.raises(InputError, match="x names 'middle', which is not one of"):
        pair.predict({"left": left, "middle": right})
    history = model.fit(x, y, epochs=1, verbose=0)
    assert list(history.history) == ["alpha_loss", "loss", "zed_loss"]


def test_a_sequentials_layers_make_feature_extractors_as_in_keras(float64):
    """The "visualize intermediate activations" tutorial: a model from a trained
    Sequential's input to every layer's output, over the same layers."""
    keras = float64
    cnn.set_seed(8)

    def chain(api):
        L = api.layers
        return api.Sequential([api.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2),
                               L.Conv2D(2, 2, activation="relu"), L.Flatten(), L.Dense(3, activation="softmax")])

    ours, theirs = chain(cnn), chain(keras)
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(9).standard_normal((5, 8, 8, 1))
    mine = cnn.Model(inputs=ours.input, outputs=[layer.output for layer in ours.layers])
    reference = keras.Model(inputs=theirs.inputs, outputs=[layer.output for layer in theirs.layers])
    assert [l.name for l in mine.layers] == [l.name for l in ours.layers]
    assert all(a is b for a, b in zip(mine.layers, ours.layers))  # the same layers: the trained weights
    for got, want in zip(mine.predict(x), reference.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    first = cnn.Model(ours.input, ours.get_layer("conv2d").output)
    ours.compile(optimizer="sgd", loss="categorical_crossentropy")
    ours.fit(x, np.eye(3)[[0, 1, 2, 0, 1]], epochs=2, verbose=0)
    np.testing.assert_array_equal(first.predict(x), ours.layers[0].forward(x))  # sees the training
    assert ours.input.shape == (None, 8, 8, 1) and ours.output is ours.layers[-1].output
    with pytest.raises(InputError, match="not built yet"):
        cnn.Sequential([cnn.layers.Dense(2)]).input


@pytest.mark.parametrize("build,data,loss", [
    (two_outputs, _two_output_data, ["categorical_crossentropy", "mse"]),
    (siamese, _siamese_data, "categorical_crossentropy"),
    (twice, _twice_data, "categorical_crossentropy")])
def test_graphs_with_several_inputs_outputs_or_shared_layers_save_and_resume(tmp_path, build, data, loss):
    cnn.set_seed(10)
    model = build(cnn)
    kwargs = {"loss_weights": [1.0, 0.25], "metrics": [["accuracy"], ["mae"]]} if build is two_outputs else {}
    model.compile(optimizer="adam", loss=loss, **kwargs)
    x, y = data()
    cast = (lambda v: [a.astype(np.float32) for a in v]) if isinstance(x, list) else (lambda v: v.astype(np.float32))
    x = cast(x)
    y = [a.astype(np.float32) for a in y] if isinstance(y, list) else y.astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "graph.npz")
    again = cnn.load_model(tmp_path / "graph.npz")
    assert [l.name for l in again.layers] == [l.name for l in model.layers]
    assert again.input_names == model.input_names and again.output_names == model.output_names
    for got, want in zip(*(m.predict(x) if len(m.outputs) > 1 else [m.predict(x)] for m in (again, model))):
        np.testing.assert_array_equal(got, want)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, initial_epoch=1)
    resumed = again.fit(x, y, epochs=2, batch_size=8, verbose=0, initial_epoch=again.completed_epochs)
    assert resumed.history == history.history
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the optimizer's state, the loss weights and the generators came back


def _builds():
    from test_functional import inception, resnet_block

    return [(resnet_block, "categorical_crossentropy", ["accuracy"]),
            (inception, "categorical_crossentropy", ["accuracy"]),
            (two_outputs, ["categorical_crossentropy", "mse"], [["accuracy"], ["mae"]]),
            (siamese, "categorical_crossentropy", None), (twice, "categorical_crossentropy", None)]


def _inputs_for(model, n=6, seed=11):
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((n, *t.shape[1:])) for t in model.inputs]
    return x[0] if len(x) == 1 else x


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("index", range(5))
def test_functional_keras_files_both_ways(float64, tmp_path, index):
    """A graph Keras saved loads here and predicts as Keras does; the engine's
    .keras file of the same graph loads in Keras and predicts as the engine."""
    keras = float64
    build, loss, metrics = _builds()[index]
    cnn.set_seed(12)
    theirs = build(keras)
    theirs.compile(optimizer="adam", loss=loss, metrics=metrics)
    theirs.save(tmp_path / "keras.keras")
    ours = cnn.load_model(tmp_path / "keras.keras")
    assert isinstance(ours, cnn.Model) and [l.name for l in ours.layers] == \
        [l.name for l in theirs.layers if type(l).__name__ != "InputLayer"]
    assert ours.metrics == (metrics or []) and type(ours.optimizer).__name__ == "Adam"
    x = _inputs_for(theirs)
    for got, want in zip(_as_list(ours.predict(x)), _as_list(theirs.predict(x, verbose=0))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    mine = build(cnn)
    mine.compile(optimizer="sgd", loss=loss, metrics=metrics)
    mine.save(tmp_path / "ours.keras")
    again = keras.models.load_model(tmp_path / "ours.keras")
    assert [l.name for l in again.layers if type(l).__name__ != "InputLayer"] == [l.name for l in mine.layers]
    for got, want in zip(_as_list(again.predict(x, verbose=0)), _as_list(mine.predict(x))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    back = cnn.load_model(tmp_path / "ours.keras")  # and back here
    for got, want in zip(_as_list(back.predict(x)), _as_list(mine.predict(x))):
        np.testing.assert_array_equal(got, want)


def _rewrite_keras(source, target, change):
    import json
    import zipfile

    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config["config"])
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _layer(config, name):
    return next(spec for spec in config["layers"] if spec.get("name") == name)


def _history(config, name, call=0, position=0):
    return _layer(config, name)["inbound_nodes"][call]["args"][0]["config"]["keras_history"]


@pytest.mark.parametrize("change,message", [
    (lambda c: _history(c, "hidden").__setitem__(0, "alpha"), "a cycle"),
    (lambda c: _history(c, "conv").__setitem__(0, "ghost"), "reads 'ghost', which is no layer"),
    (lambda c: _history(c, "conv").__setitem__(1, 4), "reads call 4"),
    (lambda c: _layer(c, "conv")["inbound_nodes"][0].__setitem__("kwargs", {"training": True}),
     r"keyword arguments \['training'\]"),
    (lambda c: _layer(c, "conv")["inbound_nodes"][0].__setitem__("args", []), "not one call on one argument"),
    (lambda c: _layer(c, "conv")["inbound_nodes"][0]["args"].__setitem__(0, {"x": 1}), "not a Keras tensor"),
    (lambda c: c.__setitem__("output_layers", [["zed", 0, 0], ["alpha", 7, 0]]), "an output of the graph reads call 7"),
    (lambda c: c.__setitem__("input_layers", ["nobody", 0, 0]), "do not name the file's InputLayers"),
    (lambda c: c.__setitem__("output_layers", "zed"), "not a tensor reference"),
    (lambda c: c["layers"].insert(1, {**c["layers"][0], "name": "spare",
                                      "config": {**c["layers"][0]["config"], "name": "spare"}}),
     "do not name the file's InputLayers"),
])
def test_hostile_functional_keras_files_are_refused_before_anything_is_built(tmp_path, change, message, monkeypatch):
    from cnn.errors import ModelFileError
    from cnn.layers.base import Layer

    two_outputs(cnn).save(tmp_path / "good.keras")
    _rewrite_keras(tmp_path / "good.keras", tmp_path / "bad.keras", change)
    built = []
    real = Layer.add_weight

    def add_weight(self, *args, **kwargs):  # param_shapes' shape-only builds allocate nothing: let them run
        return real(self, *args, **kwargs) if "_shapes_only" in self.__dict__ else built.append(self.name)

    monkeypatch.setattr(Layer, "add_weight", add_weight)
    with pytest.raises(ModelFileError, match=message):
        cnn.load_model(tmp_path / "bad.keras")
    assert built == []


def subclassed(api):
    """A subclassed model as a course writes it: layers made in __init__ (in another
    order than call uses them, one list of them), a residual sum, dropout given training."""
    L = api.layers

    class Net(api.Model):
        def __init__(self):
            super().__init__()
            self.head = L.Dense(3, activation="softmax", name="head")
            self.conv = L.Conv2D(4, 3, activation="relu", name="conv")
            self.blocks = [L.Conv2D(4, 3, padding="same", activation="relu", name="b1"),
                           L.Conv2D(4, 3, padding="same", name="b2")]
            self.sum = L.Add(name="sum")
            self.flat = L.Flatten(name="flat")
            self.drop = L.Dropout(0.0, name="drop")

        def call(self, x, training=False):
            x = self.conv(x)
            y = self.blocks[1](self.blocks[0](x))
            x = self.sum([x, y])
            return self.head(self.drop(self.flat(x), training=training))

    return Net()


def test_a_subclassed_model_trains_as_in_keras(float64):
    keras = float64
    cnn.set_seed(13)
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((16, 8, 8, 1)), np.eye(3)[rng.integers(0, 3, 16)]
    ours, theirs = subclassed(cnn), subclassed(keras)
    theirs(x[:1])  # Keras builds a subclassed model on its first call
    ours(x[:1])
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]  # attribute order, not call order
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-12, atol=1e-13)
    ours.compile(optimizer=_sgd(cnn), loss="categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(optimizer=_sgd(keras), loss="categorical_crossentropy", metrics=["accuracy"])
    for step in range(20):
        batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
        np.testing.assert_allclose(ours.train_on_batch(x[batch], y[batch]),
                                   np.asarray(theirs.train_on_batch(x[batch], y[batch]), dtype=np.float64),
                                   rtol=1e-9, err_msg=str(step))
    _assert_same_weights(ours, theirs)


def test_a_subclassed_models_gradients_are_central_differences(engine_float64):
    cnn.set_seed(15)
    model = subclassed(cnn)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(16)
    assert check_model(model, rng.standard_normal((4, 8, 8, 1)), np.eye(3)[[0, 1, 2, 0]]).passed


def test_what_a_subclassed_model_cannot_do_is_refused_by_name(tmp_path):
    from cnn.errors import NotInEngineError

    L = cnn.layers

    class Arithmetic(cnn.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = L.Dense(2), L.Dense(2)

        def call(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(InputError, match="use a layer .*cnn.layers.Add"):
        Arithmetic().predict(np.zeros((2, 3), np.float32))

    class ThroughNumPy(Arithmetic):
        def call(self, x):
            return np.tanh(self.a(x))

    with pytest.raises(InputError, match="use a layer"):
        ThroughNumPy().predict(np.zeros((2, 3), np.float32))

    class Branching(Arithmetic):
        def call(self, x, training=False):
            return self.a(x) if training else self.b(x)

    with pytest.raises(NotInEngineError, match="another path with training=True"):
        Branching().predict(np.zeros((2, 3), np.float32))

    class MadeInCall(Arithmetic):
        def call(self, x):
            return L.Dense(2, name="late")(self.a(x))

    with pytest.raises(InputError, match="uses layer 'late', which is no attribute"):
        MadeInCall().predict(np.zeros((2, 3), np.float32))

    class NoCall(cnn.Model):
        pass

    with pytest.raises(InputError, match="needs a call"):
        NoCall()
    model = subclassed(cnn)
    model.predict(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(NotInEngineError, match="save its weights with"):
        model.save(tmp_path / "net.npz")
    model.save_weights(tmp_path / "net.weights.h5")
    other = subclassed(cnn)
    other.build((None, 8, 8, 1))
    other.load_weights(tmp_path / "net.weights.h5")
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_sub_model_from_a_tensor_in_the_middle_is_kerass(float64, tmp_path):
    """keras.Model(some_layer.output, model.output): the walk stops at the given
    tensor, as Keras's does; the head trains on features and the whole model,
    sharing those layers, still trains right (its layers' flags are its own)."""
    keras = float64
    cnn.set_seed(17)
    ours, theirs = two_outputs(cnn), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    mine = cnn.Model(ours.get_layer("flat").output, ours.get_layer("alpha").output)
    reference = keras.Model(theirs.get_layer("flat").output, theirs.get_layer("alpha").output)
    assert [l.name for l in mine.layers] == [l.name for l in reference.layers if type(l).__name__ != "InputLayer"]
    features = np.random.default_rng(18).standard_normal((8, 64))
    np.testing.assert_allclose(mine.predict(features), reference.predict(features, verbose=0), rtol=1e-12)
    mine.compile(optimizer=_sgd(cnn), loss="mse")
    reference.compile(optimizer=_sgd(keras), loss="mse")
    targets = np.random.default_rng(19).standard_normal((8, 2))
    for _ in range(5):
        assert mine.train_on_batch(features, targets) == pytest.approx(
            float(reference.train_on_batch(features, targets)), rel=1e-9)
    for got, want in zip(mine.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)
    ours.set_weights(theirs.get_weights())  # the whole model again, after its head was trained alone
    x, y = _two_output_data()
    ours.compile(optimizer=_sgd(cnn), loss=["categorical_crossentropy", "mse"])
    theirs.compile(optimizer=_sgd(keras), loss=["categorical_crossentropy", "mse"])
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y), rtol=1e-9)
    _assert_same_weights(ours, theirs)
    mine.save(tmp_path / "head.npz")
    again = cnn.load_model(tmp_path / "head.npz")
    np.testing.assert_array_equal(again.predict(features), mine.predict(features))
