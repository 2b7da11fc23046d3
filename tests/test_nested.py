"""A Sequential used as a layer of a functional model (cnn.nested), as Keras
allows it: the same layers, weights and order as Keras's, training step by
step as Keras's does in float64, frozen with trainable=False, in inference
mode with training=False, augmentation blocks; what is not in the engine
yet refused by name."""
import numpy as np
import pytest

import cnn
from cnn.errors import NotInEngineError


def build(k, freeze=False):
    L = k.layers
    block = k.Sequential([k.Input((8, 8, 2)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(),
                          L.Activation("relu"), L.MaxPooling2D(2)], name="block")
    block.trainable = not freeze
    inputs = k.Input((8, 8, 2))
    x = block(inputs)
    x = L.Conv2D(3, 3, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return k.Model(inputs, L.Dense(3, activation="softmax")(x)), block


@pytest.mark.parametrize("freeze", [False, True])
def test_a_nested_sequential_trains_as_kerass_step_by_step(float64, freeze):
    keras = float64
    cnn.set_seed(7)
    (ours, our_block), (theirs, their_block) = build(cnn, freeze), build(keras, freeze)
    # the layer types as Keras lists them (Keras numbers default names across models, the engine within one)
    assert [type(layer).__name__ for layer in ours.layers] == [
        type(layer).__name__ for layer in theirs.layers if type(layer).__name__ != "InputLayer"]
    assert ours.layers[0].name == "block" and ours.get_layer("block").model is our_block
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((6, 8, 8, 2)), np.eye(3)[rng.integers(0, 3, 6)]
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-10, atol=1e-12)
    ours.compile(optimizer=cnn.optimizers.SGD(2**-4, momentum=0.875), loss="categorical_crossentropy")
    theirs.compile(optimizer=keras.optimizers.SGD(2**-4, momentum=0.875), loss="categorical_crossentropy")
    assert len(ours.trainable_weights) == len(theirs.trainable_weights)
    before = [w.copy() for w in our_block.get_weights()]
    for _ in range(20):
        assert ours.train_on_batch(x, y) == pytest.approx(float(theirs.train_on_batch(x, y)), rel=1e-10)
    for got, want in zip(ours.get_weights(), theirs.get_weights()):  # the BatchNorm statistics too
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)
    moved = [not np.array_equal(a, b) for a, b in zip(before, our_block.get_weights())]
    assert any(moved) != freeze  # frozen: not even BatchNorm's statistics move (inference mode)


def test_an_augmentation_block_acts_in_training_only_and_the_outer_model_is_one_graph():
    cnn.set_seed(1)
    augment = cnn.Sequential([cnn.layers.RandomFlip("horizontal"), cnn.layers.RandomRotation(0.1)],
                             name="augment")
    inputs = cnn.Input((8, 8, 1))
    x = augment(inputs)
    x = cnn.layers.Conv2D(2, 3)(x)
    model = cnn.Model(inputs, cnn.layers.Dense(3, activation="softmax")(cnn.layers.Flatten()(x)))
    assert [type(layer).__name__ for layer in model.layers][:2] == ["Sequential", "Conv2D"]
    assert model.layers[0].count_params() == 0
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((16, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 16)
    history = model.fit(xs, ys, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    inner = model.layers[0]
    np.testing.assert_array_equal(inner.forward(xs, training=False), xs)  # the identity at inference
    assert not np.array_equal(inner.forward(xs, training=True), xs)


def test_what_is_not_in_the_engine_yet_is_refused_by_name(tmp_path):
    block = cnn.Sequential([cnn.Input((4,)), cnn.layers.Dense(3)], name="block")
    inputs = cnn.Input((4,))
    model = cnn.Model(inputs, cnn.layers.Dense(2)(block(inputs)))
    with pytest.raises(NotInEngineError, match="'block' is already a layer of a model"):
        block(cnn.Input((4,)))
    other = cnn.Sequential([cnn.Input((4,)), cnn.layers.Dense(3)], name="other")
    with pytest.raises(NotInEngineError, match="other\\(x, training=False\\) on a symbolic tensor"):
        other(cnn.Input((4,)), training=False)
    with pytest.raises(NotInEngineError, match="saving a model that holds the Sequential 'block' as a layer"):
        model.save(tmp_path / "m.npz")
    with pytest.raises(NotInEngineError, match="saving a model that holds the Sequential 'block'"):
        model.save(tmp_path / "m.keras")
    assert not list(tmp_path.iterdir())
    functional = cnn.Model(inputs, cnn.layers.Dense(2)(inputs))
    with pytest.raises(NotInEngineError, match="a functional model .* used as a layer is not in this engine yet"):
        functional(cnn.Input((4,)))
    # get_weights / set_weights go through the inner layers' own arrays
    weights = [w + 1 for w in model.get_weights()]
    model.set_weights(weights)
    np.testing.assert_array_equal(block.layers[0].params["kernel"], weights[0])
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.predict(x), (x @ weights[0] + weights[1]) @ weights[2] + weights[3], rtol=1e-6)
