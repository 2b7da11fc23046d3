"""The functional API, written as Keras code with ``keras.`` replaced by
``cnn.``: a ResNet block with a projection shortcut and BatchNorm, and an
Inception module, follow Keras step by step in float64 (outputs, losses,
every weight and moving statistic), with Keras's layer and weight order; the
merge layers against finite differences and Keras's; feature-extraction
sub-models see the trained weights; what is not there yet is refused by name."""
import numpy as np
import pytest

import cnn
from helpers import explorer_api
from cnn.errors import InputError, NotInEngineError
from cnn.gradcheck import check_gradients, check_model


def resnet_block(api):
    """A ResNet basic block with a projection shortcut, as a course writes it."""
    L = api.layers
    inputs = api.Input(shape=(8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    y = L.Conv2D(16, 3, strides=2, padding="same", name="conv_a")(x)
    y = L.BatchNormalization(name="bn_a")(y)
    y = L.Activation("relu", name="relu_a")(y)
    y = L.Conv2D(16, 3, padding="same", name="conv_b")(y)
    shortcut = L.Conv2D(16, 1, strides=2, name="projection")(x)
    y = L.add([y, shortcut], name="add")
    y = L.Activation("relu", name="relu_out")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    outputs = L.Dense(4, activation="softmax", name="classes")(y)
    return api.Model(inputs, outputs)


def inception(api):
    """An Inception module: four branches concatenated along the channels."""
    L = api.layers
    inputs = api.Input(shape=(8, 8, 3))
    a = L.Conv2D(4, 1, activation="relu", name="b1")(inputs)
    b = L.Conv2D(3, 1, activation="relu", name="b2_reduce")(inputs)
    b = L.Conv2D(4, 3, padding="same", activation="relu", name="b2")(b)
    c = L.Conv2D(2, 1, activation="relu", name="b3_reduce")(inputs)
    c = L.Conv2D(4, 5, padding="same", activation="relu", name="b3")(c)
    d = L.MaxPooling2D(3, strides=1, padding="same", name="b4_pool")(inputs)
    d = L.Conv2D(4, 1, activation="relu", name="b4")(d)
    x = L.concatenate([a, b, c, d], name="mixed")
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(4, activation="softmax", name="classes")(x)
    return api.Model(inputs, outputs)


def _data(n=16):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8, 8, 3))
    y = np.eye(4)[rng.integers(0, 4, n)]
    return x, y


@pytest.mark.parametrize("build", [resnet_block, inception])
def test_a_graph_follows_keras_step_by_step_in_float64(float64, build):
    keras = float64
    cnn.set_seed(0)
    ours, theirs = build(cnn), build(keras)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers if l.name != theirs.layers[0].name
                                             or type(l).__name__ != "InputLayer"]
    ours.set_weights(theirs.get_weights())  # Keras's weight order, as it is
    x, y = _data()
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-12, atol=1e-13)
    # SGD with momentum; float32-exact settings (Keras rounds hyperparameters through float32)
    ours.compile(optimizer=cnn.optimizers.SGD(learning_rate=2**-4, momentum=0.875), loss="categorical_crossentropy")
    theirs.compile(optimizer=keras.optimizers.SGD(learning_rate=2**-4, momentum=0.875),
                   loss="categorical_crossentropy")
    for step in range(20):
        batch = slice(8 * (step % 2), 8 * (step % 2) + 8)
        mine = ours.train_on_batch(x[batch], y[batch])  # no metrics: the loss, a float, as Keras
        reference = float(theirs.train_on_batch(x[batch], y[batch]))
        assert mine == pytest.approx(reference, rel=1e-9), step
    for got, want, weight in zip(ours.get_weights(), theirs.get_weights(), theirs.weights):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12, err_msg=weight.path)


@pytest.mark.parametrize("build", [resnet_block, inception])
def test_a_graphs_gradients_are_central_differences(build, engine_float64):
    cnn.set_seed(1)
    model = build(cnn)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = _data(4)
    assert check_model(model, x, y, training=False).passed  # a tensor read twice gets the sum


MERGES = [("Add", 3, None), ("Subtract", 2, None), ("Multiply", 3, None), ("Average", 3, None),
          ("Maximum", 3, None), ("Minimum", 3, None), ("Concatenate", 3, {"axis": -1}),
          ("Concatenate", 2, {"axis": 1})]


@pytest.mark.parametrize("name,count,kwargs", MERGES)
def test_each_merge_layer_against_central_differences_and_keras(float64, name, count, kwargs):
    import tensorflow as tf

    keras = float64
    rng = np.random.default_rng(3)
    # distinct values: no ties for Maximum / Minimum
    xs = [rng.permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) / 7.0 + k * 0.01 for k in range(count)]
    layer = getattr(cnn.layers, name)(**(kwargs or {}))
    theirs = getattr(keras.layers, name)(**(kwargs or {}))
    out = layer.forward(xs)
    dout = rng.standard_normal(out.shape)

    def forward(*arrays):
        return layer.forward(list(arrays)), None

    def backward(d, cache):
        return tuple(layer.backward(d))

    assert check_gradients(forward, *xs, backward=backward).passed
    tensors = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        reference = theirs(tensors)
    np.testing.assert_allclose(out, reference.numpy(), rtol=1e-12)
    layer.forward(xs)
    for got, want in zip(layer.backward(dout), tape.gradient(reference, tensors, output_gradients=tf.constant(dout))):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)


def test_a_squeeze_excite_multiply_broadcasts_as_keras(float64):
    import tensorflow as tf

    keras = float64
    rng = np.random.default_rng(4)
    feature, gate = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((2, 1, 1, 3))
    layer, theirs = cnn.layers.Multiply(), keras.layers.Multiply()
    out = layer.forward([feature, gate])
    tensors = [tf.constant(feature), tf.constant(gate)]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        reference = theirs(tensors)
    np.testing.assert_allclose(out, reference.numpy(), rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(layer.backward(dout), tape.gradient(reference, tensors, output_gradients=tf.constant(dout))):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    assert check_gradients(lambda f, g: (layer.forward([f, g]), None), feature, gate,
                           backward=lambda d, c: tuple(layer.backward(d))).passed


def test_a_feature_extraction_sub_model_sees_the_trained_weights():
    cnn.set_seed(2)
    model = resnet_block(cnn)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = _data()
    x = x.astype(np.float32)
    model.fit(x, y.astype(np.float32), epochs=2, batch_size=8, verbose=0)
    features = cnn.Model(model.input, model.get_layer("conv_b").output)
    assert [l.name for l in features.layers] == ["stem", "stem_bn", "stem_relu", "conv_a", "bn_a", "relu_a", "conv_b"]
    assert features.get_layer("conv_b") is model.get_layer("conv_b")  # the same layers, the same weights
    expected = x
    for layer in features.layers:
        expected = layer.forward(expected, training=False)
    np.testing.assert_array_equal(features.predict(x), expected)
    assert features.predict(x).shape == (16, 4, 4, 16)


def test_what_is_not_there_yet_is_refused_by_name():
    L = cnn.layers
    inputs = cnn.Input((4, 4, 1))
    conv = L.Conv2D(2, 3, padding="same")
    x = conv(inputs)
    with pytest.raises(InputError, match=r"built for inputs of shape \(4, 4, 1\) and is called again on \(4, 4, 2\)"):
        conv(x)  # a shared layer sees the same shapes at every call
    with pytest.raises(InputError, match="use a layer .*cnn.layers.Add"):
        x + x
    other = cnn.Input((4, 4, 1))
    with pytest.raises(InputError, match="not one of the model's inputs"):
        cnn.Model(other, L.Flatten()(x))
    with pytest.raises(NotInEngineError, match="as a dict"):
        cnn.Model({"a": inputs}, x)
    model = cnn.Model(inputs, x)
    with pytest.raises(NotInEngineError, match="a functional model .* used as a layer is not in this engine yet: a Sequential is"):
        model(other)
    with pytest.raises(NotInEngineError, match="weights shared between models"):
        conv(other)

    class Net(cnn.Model):
        def __init__(self):
            super().__init__()

    with pytest.raises(InputError, match="needs a call"):
        Net()
    with pytest.raises(InputError, match="part of a graph"):
        cnn.Sequential([conv])
    in_a_sequential = cnn.layers.Dense(2)
    holder = cnn.Sequential([cnn.Input((3,)), in_a_sequential])  # noqa: F841 - alive: it owns the layer
    with pytest.raises(InputError, match="already in model 'sequential'"):
        in_a_sequential(cnn.Input((3,)))
    with pytest.raises(InputError, match="takes a list of tensors"):
        L.Add()(x)
    assert cnn.Input((28, 28, 1)).shape == (None, 28, 28, 1)  # as keras.Input


def _chapter_as_a_graph():
    L = cnn.layers
    inputs = cnn.Input((28, 28, 1))
    h = L.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    h = L.Conv2D(64, 3, padding="same", activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Dropout(0.25)(h)
    h = L.Flatten()(h)
    h = L.Dense(100, activation="relu")(h)
    h = L.Dropout(0.5)(h)
    return cnn.Model(inputs, L.Dense(10, activation="softmax")(h))


def test_the_chapters_model_as_a_graph_trains_as_the_sequential_bit_for_bit():
    """The same weights and the same dropout generators: the graph runner (with
    its fusions, softmax with cross-entropy and the max-pool inside the
    convolution's backward) gives the Sequential's losses and weights exactly."""
    import copy

    from cnn.chapter import build_model
    from cnn.data import load_mnist, one_hot

    (x, labels), _ = load_mnist(n_train=256, n_test=1)
    y = one_hot(labels)
    cnn.set_seed(5)
    sequential = build_model()
    graph = _chapter_as_a_graph()
    graph.set_weights(sequential.get_weights())
    for mine, theirs in zip(graph.layers, sequential.layers):
        mine.rng = copy.deepcopy(theirs.rng)  # the same dropout masks
    graph.compile(loss="categorical_crossentropy", optimizer=cnn.optimizers.get("adadelta"), metrics=["accuracy"])
    assert graph._fused and len(graph._pool_over_conv) == 1
    for s in range(0, 256, 64):
        assert graph.train_on_batch(x[s:s + 64], y[s:s + 64])[0] == sequential.train_on_batch(x[s:s + 64],
                                                                                               y[s:s + 64])[0]
    for got, want in zip(graph.get_weights(), sequential.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("build", [resnet_block, inception])
def test_a_graph_saves_and_loads_whole_and_resumes_training(tmp_path, build):
    cnn.set_seed(6)
    model = build(cnn)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    x, y = x.astype(np.float32), y.astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "graph.npz")
    again = cnn.load_model(tmp_path / "graph.npz")
    assert isinstance(again, cnn.Model) and [l.name for l in again.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, initial_epoch=1)
    again.fit(x, y, epochs=2, batch_size=8, verbose=0, initial_epoch=again.completed_epochs)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the optimizer's state and the generators came back too


def _rewrite_config(source, target, change):
    import json

    with np.load(source) as archive:  # our own file: read with NumPy, no pickle
        arrays = {k: archive[k] for k in archive.files}
    config = json.loads(arrays["config"].tobytes().decode())
    change(config)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(target, **arrays)


def _as_version_2(config, model):
    """The same model as the version-2 format wrote it: one "inbound" list per layer."""
    del config["graph"]
    config.update(version=2, inbound=model.producers(), input_shape=list(model.input_shape))


@pytest.mark.parametrize("change,message", [
    (lambda c: c["inbound"].__setitem__(3, [5]), "a layer may read the input .* or an earlier layer only"),
    (lambda c: c["inbound"].__setitem__(3, [3]), "a cycle"),
    (lambda c: c["inbound"].__setitem__(1, [99]), "reads 99"),
    (lambda c: c["inbound"].__setitem__(1, []), "not a non-empty list"),
    (lambda c: c["inbound"].pop(), "do not match its"),
    (lambda c: c.__setitem__("inbound", "everything"), "do not match its"),
    (lambda c: c["inbound"].__setitem__(4, [-1]), "dangling"),
    (lambda c: c["inbound"].__setitem__(2, [0, 1]), "only merge layers read several"),
    (lambda c: c.pop("inbound"), "do not match its"),
    (lambda c: c.__setitem__("version", 4), "format version 4"),
])
def test_hostile_version_2_graph_configs_are_refused_before_anything_is_built(tmp_path, change, message):
    from cnn.errors import ModelFileError

    cnn.set_seed(7)
    model = resnet_block(cnn)
    model.save(tmp_path / "good.npz")
    _rewrite_config(tmp_path / "good.npz", tmp_path / "v2.npz", lambda c: _as_version_2(c, model))
    again = cnn.load_model(tmp_path / "v2.npz")  # a version-2 file still loads
    np.testing.assert_array_equal(again.predict(_data()[0]), model.predict(_data()[0]))
    _rewrite_config(tmp_path / "v2.npz", tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=message):
        cnn.load_model(tmp_path / "bad.npz")


def _deep(levels):
    value = ["stem_relu", 0, 0]
    for _ in range(levels):
        value = [value]
    return value


def _calls(config, name):
    return config["graph"]["calls"][[spec["config"]["name"] for spec in config["layers"]].index(name)]


@pytest.mark.parametrize("change,message", [
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, ["conv_b", 0, 0]), "a cycle"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, ["nowhere", 0, 0]), "reads 'nowhere', which is no layer"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, ["stem_relu", 1, 0]), "reads call 1 .* has 1 call"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, ["stem_relu", 0, 1]), r"reads call 0 \(output 1\)"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, ["stem_relu", True, 0]), "must be \\[layer name"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, [[["stem_relu", 0, 0]]]), "must be \\[layer name"),
    (lambda c: _calls(c, "conv_a").__setitem__(0, [["stem_relu", 0, 0], ["stem", 0, 0]]), "must read one tensor"),
    (lambda c: _calls(c, "conv_a").clear(), "has no calls in the graph"),
    (lambda c: c["graph"]["outputs"].__setitem__(0, ["gap", 0, 0]), "call 0 of layer 'classes' is read by nothing"),
    (lambda c: c["graph"]["inputs"].append({"name": "extra", "shape": [8, 8, 3]}), "dangling input"),
    (lambda c: c["graph"]["inputs"][0].__setitem__("shape", [8, -8, 3]), "shape must be positive sizes"),
    (lambda c: c["graph"]["inputs"][0].__setitem__("name", "stem"), "named 'stem'"),
    (lambda c: c["graph"]["outputs"].__setitem__(0, ["classes", 3, 0]), "an output of the graph reads call 3"),
    (lambda c: c["graph"]["calls"].pop(), "the calls of 11 layers for 12"),
    (lambda c: _calls(c, "gap").extend([[["relu_out", 0, 0]]] * 10_000), "10013 calls; at most 10000"),
    (lambda c: c.__setitem__("graph", "everything"), "not a dict"),
    (lambda c: _calls(c, "conv_a")[0].__setitem__(0, _deep(200)), "nested 2.. levels deep"),
])
def test_hostile_graph_configs_are_refused_before_anything_is_built(tmp_path, change, message, monkeypatch):
    from cnn.errors import ModelFileError
    from cnn.layers.base import Layer

    cnn.set_seed(7)
    model = resnet_block(cnn)
    model.save(tmp_path / "good.npz")
    _rewrite_config(tmp_path / "good.npz", tmp_path / "bad.npz", change)
    built = []
    real = Layer.add_weight

    def add_weight(self, *args, **kwargs):  # param_shapes' shape-only builds allocate nothing: let them run
        return real(self, *args, **kwargs) if "_shapes_only" in self.__dict__ else built.append(self.name)

    monkeypatch.setattr(Layer, "add_weight", add_weight)
    with pytest.raises(ModelFileError, match=message):
        cnn.load_model(tmp_path / "bad.npz")
    assert built == []  # refused from the description alone: no weight was made


def test_a_version_1_sequential_file_still_loads_as_a_sequential(tmp_path):
    model = cnn.Sequential([cnn.layers.Dense(2, input_shape=(3,))])
    model.save(tmp_path / "s.npz")
    again = cnn.load_model(tmp_path / "s.npz")
    assert type(again) is cnn.Sequential and again.get_config()["name"] == model.name


def _digit_graph():
    """A 28x28 digit model with a skip connection, for the commands that take digits."""
    L = cnn.layers
    inputs = cnn.Input((28, 28, 1))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    b = L.Conv2D(4, 3, padding="same", activation="relu", name="b")(a)
    skip = L.Conv2D(4, 1, name="skip")(inputs)  # reads the input, not the layer listed before it
    x = L.add([b, skip], name="sum")
    x = L.MaxPooling2D(2, name="pool")(x)
    outputs = L.Dense(10, activation="softmax", name="classes")(L.Flatten(name="flat")(x))
    return cnn.Model(inputs, outputs)


def test_summary_lists_what_each_layer_reads():
    lines = []
    _digit_graph().summary(print_fn=lines.append)
    assert "Connected to" in lines[2]
    assert any(line.startswith("sum (Add)") and line.rstrip().endswith("b[0][0], skip[0][0]") for line in lines), lines
    assert any(line.startswith("skip (Conv2D)") and line.rstrip().endswith("input_layer[0][0]") for line in lines), lines


def test_the_explorer_explains_a_cell_from_the_tensor_that_fed_it():

    from cnn.explorer.server import serve_in_thread

    cnn.set_seed(8)
    model = _digit_graph()
    srv, url = serve_in_thread(model)
    try:
        call = explorer_api(url)
        described = call("/api/model")
        names = [l["name"] for l in described["layers"]]
        assert described["layers"][names.index("sum")]["inputs"] == [names.index("b"), names.index("skip")]
        predicted = call("/api/predict", {"sample": 2})
        assert [l["name"] for l in predicted["layers"]] == ["a", "b", "skip", "sum", "pool"]
        e = call("/api/explain", {"input": predicted["input"], "layer": names.index("skip"), "row": 14, "col": 9,
                                  "channel": 1})
        assert e["equal"] and e["receptive"]["layer"] == -1  # the skip convolution reads the input itself
        x = np.asarray(predicted["input"], np.float32)[None, :, :, None] / 255
        expected = model.trace(x)[names.index("skip")][2][0, 14, 9, 1]
        assert e["engine"] == pytest.approx(float(expected), abs=1e-6)
        e = call("/api/explain", {"input": predicted["input"], "layer": names.index("pool"), "row": 3, "col": 4,
                                  "channel": 0})
        assert e["equal"] and e["receptive"]["layer"] == names.index("sum")
        # a merge layer's cell: the cells of its inputs and the sum of them, beside the engine's value
        calls = model.trace(x)
        e = call("/api/explain", {"input": predicted["input"], "layer": names.index("sum"), "row": 5, "col": 7,
                                  "channel": 2})
        assert e["kind"] == "merge" and e["op"] == "Add" and e["equal"]
        assert [(i["name"], i["cell"]) for i in e["inputs"]] == [("b", [5, 7, 2]), ("skip", [5, 7, 2])]
        for source in e["inputs"]:
            assert source["value"] == pytest.approx(float(calls[names.index(source["name"])][2][0, 5, 7, 2]), abs=1e-6)
        assert e["value"] == pytest.approx(e["inputs"][0]["value"] + e["inputs"][1]["value"], abs=1e-6)
        assert e["engine"] == pytest.approx(float(calls[names.index("sum")][2][0, 5, 7, 2]), abs=1e-6)
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_explorer_explains_a_concatenated_cell_as_a_copy_of_one_input():

    from cnn.explorer.server import serve_in_thread

    L = cnn.layers
    cnn.set_seed(9)
    inputs = cnn.Input((28, 28, 1))
    a = L.Conv2D(3, 3, padding="same", activation="relu", name="a")(inputs)
    b = L.Conv2D(2, 5, padding="same", activation="relu", name="b")(inputs)
    x = L.concatenate([a, b], name="both")
    model = cnn.Model(inputs, L.Dense(10, activation="softmax")(L.Flatten()(L.MaxPooling2D(2)(x))))
    srv, url = serve_in_thread(model)
    try:
        call = explorer_api(url)
        names = [l["name"] for l in call("/api/model")["layers"]]
        predicted = call("/api/predict", {"sample": 4})
        e = call("/api/explain", {"input": predicted["input"], "layer": names.index("both"), "row": 12, "col": 15,
                                  "channel": 4})  # channel 4 of 5: input b's channel 1
        assert e["kind"] == "merge" and e["op"] == "Concatenate" and e["equal"]
        assert [(i["name"], i["cell"]) for i in e["inputs"]] == [("b", [12, 15, 1])]
    finally:
        srv.shutdown()
        srv.server_close()


def test_feature_map_pictures_of_a_graph(tmp_path):
    from cnn import plots

    model = _digit_graph()
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 8:20, 12:16] = 1
    plots.feature_maps(model, x, 1, tmp_path / "maps.png")
    assert (tmp_path / "maps.png").stat().st_size > 5_000


@pytest.mark.parametrize("depth,shape,steps", [(8, (16, 16, 3), 10), (20, (32, 32, 3), 2)])
def test_the_resnet_architecture_is_kerass_step_by_step(float64, depth, shape, steps):
    """cnn.architectures.resnet written against the Keras API: the same function
    builds it in Keras, with Keras's layer order, and in float64 it trains as Keras."""
    from cnn.architectures import resnet

    keras = float64
    cnn.set_seed(9)
    optimizer = {"optimizer": "sgd"}
    ours, theirs = resnet(shape, 10, depth, api=cnn, **optimizer), resnet(shape, 10, depth, api=keras, **optimizer)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers][1:]
    assert ours.count_params() == theirs.count_params()
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((8, *shape)), rng.integers(0, 10, 8)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-10, atol=1e-12)
    ours.compile(optimizer=cnn.optimizers.SGD(learning_rate=2**-5, momentum=0.875),
                 loss="sparse_categorical_crossentropy")
    theirs.compile(optimizer=keras.optimizers.SGD(learning_rate=2**-5, momentum=0.875),
                   loss="sparse_categorical_crossentropy")
    for step in range(steps):
        reference = theirs.train_on_batch(x, y)
        reference = reference[0] if isinstance(reference, list) else reference
        assert ours.train_on_batch(x, y) == pytest.approx(float(reference), rel=1e-9), step
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("build", [resnet_block, inception])
def test_a_graphs_weights_move_through_keras_weights_files_both_ways(keras, tmp_path, build):
    from cnn.keras_io import load_keras_weights, save_keras

    cnn.set_seed(11)
    ours, theirs = build(cnn), build(keras)
    x = np.random.default_rng(12).standard_normal((4, 8, 8, 3)).astype(np.float32)
    save_keras(ours, tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    other = build(keras)
    other.save_weights(tmp_path / "theirs.weights.h5")
    load_keras_weights(ours, tmp_path / "theirs.weights.h5")
    np.testing.assert_allclose(ours.predict(x), other.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_train_and_test_on_batch_return_what_keras_returns(keras):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    returned = {}
    for api in (cnn, keras):
        bare = api.Sequential([api.Input((3,)), api.layers.Dense(2, activation="softmax")])
        bare.compile(optimizer="sgd", loss="categorical_crossentropy")
        measured = api.Sequential([api.Input((3,)), api.layers.Dense(2, activation="softmax")])
        measured.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
        returned[api.__name__] = (bare.train_on_batch(x, y), measured.train_on_batch(x, y),
                                  measured.train_on_batch(x, y, return_dict=True), bare.test_on_batch(x, y),
                                  measured.test_on_batch(x, y, return_dict=True))
    ours, theirs = returned["cnn"], returned["keras"]
    assert isinstance(ours[0], float) and isinstance(theirs[0], float)  # no metrics: the loss alone
    assert isinstance(ours[1], list) and len(ours[1]) == len(theirs[1]) == 2  # [loss, accuracy]
    assert set(ours[2]) == set(theirs[2]) == {"loss", "accuracy"}
    assert isinstance(ours[3], float) and set(ours[4]) == set(theirs[4])
    model = cnn.Sequential([cnn.Input((3,)), cnn.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=cnn.optimizers.SGD(learning_rate=0.0), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    (loss, accuracy), evaluated = model.train_on_batch(x, y), model.evaluate(x, y)
    assert loss == pytest.approx(evaluated[0]) and accuracy == pytest.approx(evaluated[1])  # this batch's figures
    with pytest.raises(InputError, match="sample_weight"):
        model.train_on_batch(x, y, sample_weight=np.ones(8))


def test_a_graph_compiled_with_a_loss_object_saves_and_loads_both_ways(tmp_path):
    # a loss with arguments is saved as {'class_name', 'config'}; a graph's compile must not read it as
    # a dict of losses by output name (it did: "loss names 'class_name', which is not an output")
    inputs = cnn.Input((4,))
    model = cnn.Model(inputs, cnn.layers.Dense(3, name="logits")(inputs))
    model.compile(optimizer="adam", loss=cnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 3
    model.fit(x, y, epochs=1, verbose=0)
    for name in ("m.npz", "m.keras"):
        model.save(tmp_path / name)
        loaded = cnn.load_model(tmp_path / name)
        assert type(loaded.loss).__name__ == "SparseCategoricalCrossentropy" and loaded.loss.from_logits, name
        assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0)), name
