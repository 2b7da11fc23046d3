"""Sequential: building, training, the Keras API, bad input, saving and loading."""
import io
import os
import zipfile

import numpy as np
import pytest

import cnn
from cnn import Conv2D, Dense, Flatten, Sequential
from cnn.callbacks import Callback, ModelSaver
from cnn.data import load_mnist, one_hot
from cnn.errors import InputError, ModelFileError, TrainingDivergedError
from cnn.saving import load_model
from scripts.mnist_cnn import build_model

from helpers import small_model as shared_small_model


def small_model(seed=0, optimizer="adadelta", loss="categorical_crossentropy"):
    # one dropout only: these tests train a few epochs and check that it learns
    return shared_small_model(seed, optimizer, loss, dropout=(0.25, 0.0))


@pytest.fixture(scope="module")
def mnist_small():
    (x, y), (xt, yt) = load_mnist(n_train=300, n_test=100)
    return x, one_hot(y), xt, one_hot(yt)


def test_chapter_model_summary_counts():
    model = build_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert [layer.count_params() for layer in model.layers if layer.params] == [320, 18496, 1254500, 1010]
    assert "Total params: 1,274,326" in text
    assert "(None, 14, 14, 64)" in text and "(None, 12544)" in text
    assert [layer.name for layer in model.layers][:3] == ["conv2d", "conv2d_1", "max_pooling2d"]


def test_training_learns_and_history_is_keras_like(mnist_small):
    x, y, xt, yt = mnist_small
    model = small_model()
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0, validation_data=(xt, yt))
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.7
    loss, acc = model.evaluate(xt, yt)
    assert acc > 0.6
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-6)


def test_epoch_logs_are_sample_weighted_batch_means(mnist_small):
    x, y, *_ = mnist_small
    model = small_model()
    seen = []

    class Recorder(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((logs["loss"], logs["acc"]))

    history = model.fit(x[:70], y[:70], batch_size=32, epochs=1, verbose=0, callbacks=[Recorder()])
    sizes = [32, 32, 6]
    assert len(seen) == 3
    expected = sum(s * l for s, (l, _) in zip(sizes, seen)) / 70
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-9)
    assert history.history["acc"][0] == pytest.approx(sum(s * a for s, (_, a) in zip(sizes, seen)) / 70)


def test_same_seed_same_weights_different_seed_different(mnist_small):
    x, y, *_ = mnist_small

    def run(seed):
        model = small_model(seed)
        model.fit(x[:100], y[:100], batch_size=32, epochs=2, verbose=0)
        return model.get_weights()

    a, b, c = run(7), run(7), run(8)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(wa, wc) for wa, wc in zip(a, c))


def test_fused_softmax_gradient_equals_the_unfused_chain(rng):
    cnn.set_seed(3)
    model = Sequential([Dense(5, activation="softmax", input_shape=(4,))])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = one_hot(rng.integers(0, 5, 6), 5)
    probs = model._forward(x, training=True)
    assert model._fused_softmax
    model._loss(probs, y)
    model._backward()
    fused = model.layers[0].grads["kernel"].copy()
    model.loss.forward(probs, y)  # the long way: loss on probabilities, then softmax's Jacobian
    model.layers[0].backward(model.loss.backward())
    np.testing.assert_allclose(model.layers[0].grads["kernel"], fused, rtol=1e-5, atol=1e-7)


def test_max_pool_over_a_relu_convolution_backward_is_fused_and_equal(rng, monkeypatch):
    # Sequential hands the pool's gradient straight to the convolution below
    # (one pass through the pool's and ReLU's backward); the gradients are
    # those of the two layers' backward passes one after the other, bit for bit
    import kernels.conv
    from cnn.layers import MaxPooling2D as Pool

    class UnfusedPool(Pool):  # another class: the model runs the two passes apart
        pass

    fused_calls = []
    unpool = kernels.conv.unpool_relu_into
    monkeypatch.setattr(kernels.conv, "unpool_relu_into", lambda *a: fused_calls.append(1) or unpool(*a))
    x = rng.standard_normal((9, 11, 10, 2)).astype(np.float32)
    y = one_hot(rng.integers(0, 3, 9), 3)
    grads = []
    for pool in (Pool, UnfusedPool):
        cnn.set_seed(5)
        model = Sequential([Conv2D(16, 3, padding="same", activation="relu", input_shape=(11, 10, 2)),
                            Conv2D(8, 3, padding="same", activation="relu"), pool(2), Flatten(),
                            Dense(3, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer="sgd")
        grads.append(model.compute_gradients(x, y)[1])
        assert bool(fused_calls) == (pool is Pool)
        fused_calls.clear()
    for key in grads[0]:
        np.testing.assert_array_equal(grads[0][key], grads[1][key])


def test_mse_and_other_optimizers_train(mnist_small):
    x, y, *_ = mnist_small
    for optimizer, loss in [("adam", "mse"), ("rmsprop", "categorical_crossentropy"),
                            (cnn.optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy"), ("adagrad", "mse")]:
        model = small_model(1, optimizer=optimizer, loss=loss)
        history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], (optimizer, loss)


def test_callbacks_see_the_model_and_can_save_at_chosen_epochs(mnist_small, tmp_path):
    x, y, *_ = mnist_small
    model = small_model()
    calls = []

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            calls.append((epoch, self.model is model, sorted(logs)))

    saver = ModelSaver(tmp_path / "m_{epoch:02d}.npz", epochs=[1, 2])
    model.fit(x[:64], y[:64], batch_size=32, epochs=3, verbose=0, callbacks=[Spy(), saver])
    assert calls == [(e, True, ["acc", "loss"]) for e in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_01.npz", "m_02.npz"]


def test_save_and_load_round_trip(mnist_small, tmp_path):
    x, y, xt, yt = mnist_small
    model = small_model()
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    assert loaded.evaluate(xt, yt) == model.evaluate(xt, yt)  # compile settings came along
    assert isinstance(loaded.optimizer, cnn.optimizers.Adadelta) and loaded.optimizer.learning_rate == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_weights_set_from_transposed_views_save_and_load(tmp_path):
    # set_weights(w.T), as a PyTorch (out, in) matrix is moved: the stored copy is C-ordered, so the
    # engine's own .npz (whose reader refuses Fortran-ordered arrays) reads it back
    model = Sequential([cnn.Input((6,)), Dense(4)])
    kernel = np.arange(24, dtype=np.float32).reshape(4, 6)
    model.set_weights([kernel.T, np.zeros(4, np.float32)])
    assert model.layers[0].params["kernel"].flags.c_contiguous
    model.save(tmp_path / "t.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "t.npz").get_weights()[0], kernel.T)


def test_a_failed_save_keeps_the_old_file(mnist_small, tmp_path, monkeypatch):
    model = small_model()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()
    model.layers[0].params["kernel"] += 1

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def _write_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def test_corrupt_model_files_are_refused(tmp_path):
    model = small_model()
    good = tmp_path / "good.npz"
    model.save(good)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).bytes(500),
        "empty": b"",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(ModelFileError):
            load_model(path)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(tmp_path / "single.npy")
    _write_npz(tmp_path / "pickled.npz", config=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="not a readable model file|no model configuration|only plain float32"):
        load_model(tmp_path / "pickled.npz")
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "missing.npz")


def test_weights_that_do_not_fit_the_architecture_are_named(tmp_path):
    model = small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.load(io.BytesIO(z.read(n))) for n in z.namelist()}
    arrays["layer_4/kernel"] = np.zeros((16, 784), np.float32)  # as many bytes, transposed
    bad = tmp_path / "bad.npz"
    _write_npz(bad, **arrays)
    with pytest.raises(ModelFileError, match=r"layer 'dense' kernel should be float32 \(784, 16\) \(float32 or float64\), the file has float32 \(16, 784\)"):
        load_model(bad)
    arrays["layer_4/kernel"] = np.zeros((784, 16), np.float32)
    del arrays["layer_4/bias"]
    _write_npz(bad, **arrays)
    with pytest.raises(ModelFileError, match=r"missing \['layer_4/bias'\]"):
        load_model(bad)


@pytest.fixture
def compiled(mnist_small):
    return small_model()


@pytest.mark.parametrize("make_x,message", [
    (lambda x: x[:, :, :, 0], r"must have shape \(n, 28, 28, 1\)"),
    (lambda x: x[:, :27], r"must have shape \(n, 28, 28, 1\)"),
    (lambda x: (x * 255).astype(np.uint8), "float32, got dtype uint8.*255"),
    (lambda x: x.astype(np.int32), "float32, got dtype int32"),
    (lambda x: np.where(x > 0.5, np.nan, x).astype(np.float32), "NaN or Inf"),
    (lambda x: np.where(x > 0.5, np.inf, x).astype(np.float32), "NaN or Inf"),
    (lambda x: x[:0], "empty"),
    (lambda x: x.tolist(), "NumPy array"),
])
def test_bad_x_is_refused_everywhere(compiled, mnist_small, make_x, message):
    x, y, *_ = mnist_small
    bad = make_x(x[:10])
    with pytest.raises(InputError, match=message):
        compiled.fit(bad, y[:10], verbose=0)
    with pytest.raises(InputError, match=message):
        compiled.predict(bad)
    with pytest.raises(InputError, match=message):
        compiled.evaluate(bad, y[:10])


@pytest.mark.parametrize("make_y,message", [
    (lambda y: y.argmax(1), "one-hot rows.*one_hot"),
    (lambda y: y[:, :9], r"shape \(10, 10\)"),
    (lambda y: y[:9], r"shape \(10, 10\)"),
    (lambda y: y * 3, r"\[0, 1\]"),
    (lambda y: -y, r"\[0, 1\]"),
    (lambda y: np.full_like(y, np.nan), "NaN or Inf"),
    (lambda y: y.astype(str), "numeric"),
])
def test_bad_labels_are_refused(compiled, mnist_small, make_y, message):
    x, y, *_ = mnist_small
    with pytest.raises(InputError, match=message):
        compiled.fit(x[:10], make_y(y[:10]), verbose=0)
    with pytest.raises(InputError, match=message):
        compiled.evaluate(x[:10], make_y(y[:10]))


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"epochs": -1}, "epochs"),
    ({"validation_data": (1,)}, "validation_data"),
])
def test_bad_fit_arguments(compiled, mnist_small, kwargs, message):
    x, y, *_ = mnist_small
    with pytest.raises(InputError, match=message):
        compiled.fit(x[:10], y[:10], verbose=0, **kwargs)


def test_model_misuse_is_explained(mnist_small):
    x, y, *_ = mnist_small
    model = Sequential([Flatten(input_shape=(28, 28, 1)), Dense(10, activation="softmax")])
    with pytest.raises(InputError, match="compile the model first"):
        model.fit(x[:4], y[:4])
    with pytest.raises(InputError, match="unknown metric"):
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["f1"])
    with pytest.raises(InputError, match="takes a layer"):
        model.add("dense")
    with pytest.raises(InputError, match="expected 2 weight arrays"):
        model.set_weights([np.zeros(1)])
    with pytest.raises(InputError, match=r"expected shape \(784, 10\)"):
        model.set_weights([np.zeros((3, 10)), np.zeros(10)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_divergence_stops_training_naming_epoch_and_batch(mnist_small):
    x, y, *_ = mnist_small
    model = small_model(optimizer=cnn.optimizers.SGD(1e30))
    with pytest.raises(TrainingDivergedError, match=r"epoch 0, batch \d+"):
        model.fit(x[:128], y[:128], batch_size=16, epochs=1, verbose=0)
