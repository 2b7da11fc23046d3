"""A course's models, written as in Keras's documentation with ``keras.``
replaced by ``cnn.``: LeNet-5 and a small BatchNorm network train, save, load
and move to and from Keras; in float64 they follow Keras step by step.

Also the Keras habits around them: ``trainable = False``, a user's own layer
saved and loaded, ``validation_split``, the callbacks' ``mode='auto'``,
``restore_best_weights``, ``ReduceLROnPlateau``, ``LearningRateScheduler``,
an L2 penalty, ``compute_gradients`` and ``model(x)``.
"""
import numpy as np
import pytest

import cnn
from cnn.architectures import lenet5, small_vgg
from cnn.data import load_mnist
from cnn.errors import InputError, ModelFileError


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = load_mnist(n_train=640, n_test=200)
    return x, y.astype(np.int64), xt, yt.astype(np.int64)


def keras_lenet5(keras):
    """LeNet-5 as a Keras course writes it (tanh, average pooling)."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(6, kernel_size=5, activation="tanh", padding="same"),
        keras.layers.AveragePooling2D(pool_size=2, strides=2),
        keras.layers.Conv2D(16, kernel_size=5, activation="tanh"),
        keras.layers.AveragePooling2D(pool_size=2, strides=2),
        keras.layers.Flatten(),
        keras.layers.Dense(120, activation="tanh"),
        keras.layers.Dense(84, activation="tanh"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def engine_lenet5():
    """The same text with ``keras.`` replaced by ``cnn.``."""
    return cnn.Sequential([
        cnn.Input(shape=(28, 28, 1)),
        cnn.layers.Conv2D(6, kernel_size=5, activation="tanh", padding="same"),
        cnn.layers.AveragePooling2D(pool_size=2, strides=2),
        cnn.layers.Conv2D(16, kernel_size=5, activation="tanh"),
        cnn.layers.AveragePooling2D(pool_size=2, strides=2),
        cnn.layers.Flatten(),
        cnn.layers.Dense(120, activation="tanh"),
        cnn.layers.Dense(84, activation="tanh"),
        cnn.layers.Dense(10, activation="softmax"),
    ])


def keras_bn_net(keras, layers=None):
    """A small VGG-style network with BatchNormalization and global average pooling."""
    layers = layers or keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(8, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(16, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.0),
        layers.Dense(10, activation="softmax"),
    ])


def engine_bn_net():
    return keras_bn_net(cnn, cnn.layers)


def train_both(ours, theirs, x, y, steps, batch=32):
    """The same batches, one optimizer step each; the two loss curves."""
    theirs.set_weights(ours.get_weights())
    curve, reference = [], []
    for step in range(steps):
        xb, yb = x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
        curve.append(ours.train_on_batch(xb, yb, return_dict=True)["loss"])
        reference.append(float(theirs.train_on_batch(xb, yb, return_dict=True)["loss"]))
    return np.array(curve), np.array(reference)


def largest_relative_difference(ours, theirs):
    return max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
               for a, b in zip(ours.get_weights(), theirs.get_weights()))


def test_lenet5_follows_keras_in_float64_for_20_steps(float64, digits):
    keras = float64
    x, y, _, _ = digits
    cnn.set_seed(5)
    ours = engine_lenet5()
    # hyperparameters that float32 holds exactly: Keras 3 rounds them through float32 even
    # in float64 (with lr 0.001 and beta_1 0.9 the two drift apart by ~1e-8 a step)
    adam = dict(learning_rate=2**-10, beta_1=0.875, beta_2=1 - 2**-10, epsilon=2**-23)
    ours.compile(optimizer=cnn.optimizers.Adam(**adam), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs = keras_lenet5(keras)
    theirs.compile(optimizer=keras.optimizers.Adam(**adam), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])
    assert ours.get_weights()[0].dtype == np.float64
    curve, reference = train_both(ours, theirs, x.astype(np.float64), y, 20)
    np.testing.assert_allclose(curve, reference, rtol=1e-10, atol=1e-12)
    assert largest_relative_difference(ours, theirs) < 1e-9
    assert curve[-1] < 0.7 * curve[0]


def test_batchnorm_network_follows_keras_in_float64_for_20_steps(float64, digits):
    keras = float64
    x, y, _, _ = digits
    cnn.set_seed(6)
    ours = engine_bn_net()
    ours.compile(optimizer=cnn.optimizers.SGD(2**-4, momentum=0.875), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    theirs = keras_bn_net(keras)
    theirs.compile(optimizer=keras.optimizers.SGD(2**-4, momentum=0.875), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])
    curve, reference = train_both(ours, theirs, x.astype(np.float64), y, 20)
    np.testing.assert_allclose(curve, reference, rtol=1e-10, atol=1e-12)
    # every weight, the moving means and variances included (get_weights holds them)
    assert len(ours.get_weights()) == len(theirs.get_weights()) == 12
    assert largest_relative_difference(ours, theirs) < 1e-9
    # inference uses the moving statistics: the same predictions
    np.testing.assert_allclose(ours.predict(x[:64].astype(np.float64)), theirs.predict(x[:64], verbose=0),
                               rtol=1e-9, atol=1e-12)


def test_summary_counts_trainable_and_non_trainable_weights_as_keras(keras, capsys):
    theirs = keras_bn_net(keras)
    ours = engine_bn_net()
    ours.summary()
    text = capsys.readouterr().out
    trainable = sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in theirs.non_trainable_weights)
    assert f"Trainable params: {trainable:,}" in text and f"Non-trainable params: {frozen:,}" in text
    assert frozen == 48


@pytest.mark.parametrize("build", [engine_lenet5, engine_bn_net])
def test_course_models_move_to_keras_and_back(keras, digits, tmp_path, build):
    x, y, xt, _ = digits
    cnn.set_seed(1)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    expected = model.predict(xt)
    model.save(tmp_path / "m.keras")  # the extension picks Keras's format
    theirs = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(theirs.predict(xt, verbose=0), expected, rtol=1e-4, atol=1e-6)
    back = cnn.load_model(tmp_path / "m.keras")  # cnn.load_model reads both formats
    np.testing.assert_allclose(back.predict(xt), expected, rtol=1e-6, atol=1e-7)
    theirs.fit(x[:64], y[:64], epochs=1, verbose=0)
    theirs.save(tmp_path / "k.keras")
    again = cnn.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(again.predict(xt), theirs.predict(xt, verbose=0), rtol=1e-4, atol=1e-6)
    # and the engine's own format keeps everything too
    model.save(tmp_path / "m.npz")
    np.testing.assert_allclose(cnn.load_model(tmp_path / "m.npz").predict(xt), expected)


def test_every_new_layer_moves_through_keras_files(keras, tmp_path, rng):
    model = cnn.Sequential([
        cnn.Input(shape=(9, 9, 2)),
        cnn.layers.ZeroPadding2D(((1, 0), (0, 2))),
        cnn.layers.Conv2D(4, 3, activation="elu", kernel_initializer="he_normal",
                          kernel_regularizer=cnn.regularizers.L2(1e-3)),
        cnn.layers.BatchNormalization(momentum=0.9, epsilon=1e-4),
        cnn.layers.LeakyReLU(negative_slope=0.1),
        cnn.layers.AveragePooling2D(2, padding="same"),
        cnn.layers.ReLU(max_value=3.0),
        cnn.layers.GlobalMaxPooling2D(keepdims=True),
        cnn.layers.Reshape((4,)),
        cnn.layers.Dense(6, activation="gelu"),
        cnn.layers.Dense(5, activation="swish"),
        cnn.layers.Dense(4, activation="sigmoid"),
        cnn.layers.Activation("softplus"),
        cnn.layers.Dense(3),
        cnn.layers.Softmax(),
    ])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    x = rng.standard_normal((16, 9, 9, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    model.fit(x, y, epochs=1, verbose=0)  # moving statistics away from 0 and 1
    expected = model.predict(x)
    model.save(tmp_path / "all.keras")
    theirs = keras.models.load_model(tmp_path / "all.keras")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    theirs.save(tmp_path / "back.keras")
    back = cnn.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(back.predict(x), expected, rtol=1e-4, atol=1e-6)
    assert [l.get_config() for l in back.layers] == [l.get_config() for l in model.layers]
    # the weights alone, both ways (.weights.h5)
    from cnn.keras_io import load_keras_weights, save_keras
    save_keras(model, tmp_path / "all.weights.h5")
    fresh = keras.models.load_model(tmp_path / "all.keras")
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(tmp_path / "all.weights.h5")
    np.testing.assert_allclose(fresh.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    load_keras_weights(back, tmp_path / "theirs.weights.h5")
    np.testing.assert_allclose(back.predict(x), expected, rtol=1e-4, atol=1e-6)


def test_trainable_false_freezes_a_layer(digits):
    x, y, _, _ = digits
    cnn.set_seed(2)
    model = engine_lenet5()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    moving = model.layers[-1].get_weights()
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    for before, after in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(moving, model.layers[-1].get_weights()))
    assert len(model.trainable_weights) == len(model.weights) - 2


@cnn.layers.register
class Scale(cnn.layers.Layer):
    """A user's layer: one learned factor per channel."""

    def build(self, input_shape):
        out = super().build(input_shape)
        self.add_weight("factor", (input_shape[-1],), initializer="ones")
        return out

    def forward(self, x, training=False):
        self._x = x
        return x * self.params["factor"]

    def backward(self, dout):
        self.grads["factor"] = (dout * self._x).reshape(-1, dout.shape[-1]).sum(axis=0)
        return dout * self.params["factor"]


class Unregistered(Scale):
    pass


def test_a_users_layer_trains_saves_and_loads(digits, tmp_path):
    from cnn.gradcheck import check_layer

    assert max(check_layer(Scale(), input_shape=(3, 3, 2)).values()) < 1e-8
    x, y, xt, _ = digits
    model = cnn.Sequential([cnn.Input((28, 28, 1)), Scale(), cnn.layers.Flatten(), cnn.layers.Dense(10)])
    model.compile(optimizer="sgd", loss=cnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    model.save(tmp_path / "scale.npz")
    np.testing.assert_array_equal(cnn.load_model(tmp_path / "scale.npz").predict(xt), model.predict(xt))
    other = cnn.Sequential([cnn.Input((28, 28, 1)), Unregistered(), cnn.layers.Flatten(), cnn.layers.Dense(10)])
    other.save(tmp_path / "other.npz")
    with pytest.raises(ModelFileError, match="unknown layer type 'Unregistered'.*custom_objects"):
        cnn.load_model(tmp_path / "other.npz")
    loaded = cnn.load_model(tmp_path / "other.npz", custom_objects={"Unregistered": Unregistered})
    np.testing.assert_array_equal(loaded.predict(xt), other.predict(xt))


def test_validation_split_holds_out_the_last_samples_as_keras(keras, digits):
    x, y, _, _ = digits
    x, y = x[:100], y[:100]
    model = engine_lenet5()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, validation_split=0.25, shuffle=False, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    # Keras: the first floor(100 * 0.75) = 75 samples train, the last 25 validate
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[75:], y[75:])[0])
    with pytest.raises(InputError, match="validation_split"):
        model.fit(x, y, validation_split=1.5)


def test_callbacks_follow_keras_modes(digits, tmp_path):
    x, y, _, _ = digits
    cnn.set_seed(3)
    model = engine_lenet5()
    model.compile(optimizer=cnn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["acc"])
    saves = []

    class Recorder(cnn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saves.append(logs["val_acc"])

    checkpoint = cnn.callbacks.ModelCheckpoint(tmp_path / "best.npz", monitor="val_acc", save_best_only=True)
    assert checkpoint.sign == 1  # 'auto' reads an accuracy as "up is better", as Keras does
    stopper = cnn.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x[:320], y[:320], epochs=6, validation_split=0.2, verbose=0,
                        callbacks=[checkpoint, stopper, Recorder()])
    assert checkpoint.best == max(saves)
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert model.evaluate(x[256:320], y[256:320])[0] == pytest.approx(history.history["val_loss"][best_epoch], rel=1e-6)


def test_learning_rate_callbacks(digits):
    x, y, _, _ = digits
    model = engine_lenet5()
    model.compile(optimizer=cnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    seen = []
    schedule = cnn.callbacks.LearningRateScheduler(lambda epoch, lr: seen.append(lr) or lr * 0.5)
    history = model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[schedule])
    assert seen == [0.1, 0.05, 0.025] and history.history["learning_rate"] == [0.05, 0.025, 0.0125]
    plateau = cnn.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[plateau])
    assert model.optimizer.learning_rate == pytest.approx(0.0125 * 0.25)  # no epoch improves by 10


def test_l2_penalty_and_compute_gradients_match_keras(keras, rng):
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    ours = cnn.Sequential([cnn.Input((6,)), cnn.layers.Dense(5, activation="tanh", kernel_regularizer="l2"),
                           cnn.layers.Dense(3, activation="softmax")])
    ours.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    theirs = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh", kernel_regularizer="l2"),
                               keras.layers.Dense(3, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    loss, grads = ours.compute_gradients(x, y)
    import tensorflow as tf
    with tf.GradientTape() as tape:
        probs = theirs(x, training=True)
        reference = keras.losses.SparseCategoricalCrossentropy()(y, probs) + tf.add_n(theirs.losses)
    expected = tape.gradient(reference, theirs.trainable_weights)
    assert loss == pytest.approx(float(reference), rel=1e-5)
    for mine, ref in zip(grads.values(), expected):
        np.testing.assert_allclose(mine, ref.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours(x), theirs(x).numpy(), rtol=1e-5, atol=1e-6)  # model(x)


def test_floatx_switch_reaches_weights_and_outputs(digits):
    x, y, _, _ = digits
    cnn.set_floatx("float64")
    try:
        model = engine_bn_net()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        assert all(w.dtype == np.float64 for w in model.weights)
        model.fit(x[:32], y[:32], epochs=1, verbose=0)
        assert model.predict(x[:4]).dtype == np.float64
    finally:
        cnn.set_floatx("float32")
    with pytest.raises(InputError, match="floatx"):
        cnn.set_floatx("float16")


def test_named_architectures_build():
    for build in (lenet5, small_vgg):
        model = build()
        assert model.built and model.loss is not None
