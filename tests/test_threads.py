"""Two models in two threads: each gives what it gives alone, bit for bit.

The kernels share one thread pool and BLAS's thread count; a loss object may
serve two models; gradient checks switch to float64 in their own thread
only; the seed sequence is taken under a lock. What cannot be shared (a layer,
an optimizer's state) is refused by name."""
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import cnn
from cnn.architectures import chapter
from cnn.data import load_mnist_split
from cnn.errors import CNNError, InputError
from cnn.layers import Conv2D, Dense, Flatten
from kernels import parallel


@pytest.fixture(scope="module")
def digits():
    x, labels = load_mnist_split(None, "train", 512)
    return x, np.eye(10, dtype=np.float32)[labels]


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def _built(seed, loss="categorical_crossentropy"):
    """The chapter's model (convolutions in chunks on the pool, Winograd, dropout), seeded."""
    cnn.set_seed(seed)
    model = chapter()
    model.build((28, 28, 1))
    model.compile(loss=loss, optimizer="adadelta", metrics=["accuracy"])
    return model


def _train(model, x, y, barrier=None):
    if barrier is not None:
        barrier.wait()  # both threads start together
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)


def _run_in_threads(*calls):
    errors = []

    def guarded(fn, args):
        try:
            fn(*args)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_two_models_training_in_two_threads_equal_each_alone(digits):
    x, y = digits
    blas_before = _blas_threads()
    alone = []
    for seed in (1, 2):
        model = _built(seed)
        _train(model, x, y)
        alone.append(model.get_weights())
    assert _blas_threads() == blas_before
    shared_loss = cnn.losses.CategoricalCrossentropy()  # one loss object serves both models
    models = [_built(seed, shared_loss) for seed in (1, 2)]  # built one after the other: the same seeds' draws
    barrier = threading.Barrier(2)
    _run_in_threads(*[(_train, (m, x, y, barrier)) for m in models])
    for model, expected in zip(models, alone):
        for got, want in zip(model.get_weights(), expected):
            np.testing.assert_array_equal(got, want)
    assert _blas_threads() == blas_before  # restored, not left at 1 by interleaved limits


def test_one_model_predicting_while_another_trains(digits):
    x, y = digits
    predictor = _built(3)
    expected_predictions = predictor.predict(x, batch_size=100)
    trainer = _built(4)
    _train(trainer, x, y)
    expected_weights = trainer.get_weights()
    trainer = _built(4)
    predictions = []

    def predict_many(barrier):
        barrier.wait()
        for _ in range(6):
            predictions.append(predictor.predict(x, batch_size=100))

    barrier = threading.Barrier(2)
    _run_in_threads((_train, (trainer, x, y, barrier)), (predict_many, (barrier,)))
    for got in predictions:
        np.testing.assert_array_equal(got, expected_predictions)
    for got, want in zip(trainer.get_weights(), expected_weights):
        np.testing.assert_array_equal(got, want)


def test_set_workers_while_another_thread_runs_kernels(digits):
    x, y = digits
    model = _built(5)
    expected = model.predict(x, batch_size=128)
    saved = parallel.WORKERS
    stop = threading.Event()
    results = []

    def predict_until_stopped():
        while not stop.is_set():
            results.append(model.predict(x, batch_size=128))

    def change_workers():
        for count in (1, 2, 3, 2, 1, 2) * 3:
            parallel.set_workers(count)
        stop.set()

    try:
        _run_in_threads((predict_until_stopped, ()), (change_workers, ()))
    finally:
        parallel.set_workers(saved)
    assert results
    for got in results:
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="at least 1|>= 1"):
        parallel.set_workers(0)


def test_a_gradient_check_in_one_thread_leaves_floatx_alone_in_another():
    from cnn.backend import floatx_in_this_thread

    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def checking():
        with floatx_in_this_thread("float64"):
            layer = Dense(3)
            layer.build((4,))
            seen["checking"] = layer.params["kernel"].dtype
            inside.set()
            outside.wait(30)

    def building():
        inside.wait(30)
        layer = Dense(3)
        layer.build((4,))
        seen["building"] = layer.params["kernel"].dtype
        seen["floatx"] = cnn.floatx()
        outside.set()

    _run_in_threads((checking, ()), (building, ()))
    assert seen == {"checking": np.float64, "building": np.float32, "floatx": "float32"}
    assert cnn.floatx() == "float32"


def test_two_threads_building_models_get_distinct_generators():
    cnn.set_seed(7)
    states = []
    lock = threading.Lock()

    def build_many():
        for _ in range(200):
            state = cnn.random.new_generator().bit_generator.state["state"]["state"]
            with lock:
                states.append(state)

    _run_in_threads((build_many, ()), (build_many, ()))
    assert len(set(states)) == len(states) == 400  # no child of the sequence handed out twice


def test_what_cannot_be_shared_is_refused_by_name():
    first = cnn.Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), Flatten(), Dense(2, activation="softmax")],
                           name="first")
    optimizer = cnn.optimizers.Adam()
    first.compile(loss="categorical_crossentropy", optimizer=optimizer)
    first.compile(loss="categorical_crossentropy", optimizer=optimizer)  # the same model again: fine
    second = cnn.Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), Flatten(), Dense(2, activation="softmax")])
    with pytest.raises(InputError, match="already compiled into model 'first'"):
        second.compile(loss="categorical_crossentropy", optimizer=optimizer)
    with pytest.raises(InputError, match="already in model 'first'.*from_config"):
        cnn.Sequential([first.layers[0]])
    assert first.layers[0].name == "conv2d" and first.layers[0].built  # not renamed, not rebuilt
    layer = Dense(2)
    model = cnn.Sequential([layer])
    with pytest.raises(InputError, match="already in this model"):
        model.add(layer)


@pytest.mark.parametrize("arg,value", [("run_eagerly", True), ("jit_compile", True), ("jit_compile", False),
                                       ("auto_scale_loss", False), ("steps_per_execution", 2)])
def test_compile_refuses_what_it_would_ignore(arg, value):
    model = cnn.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    with pytest.raises(InputError, match=f"{arg}={value!r} is not supported"):
        model.compile(loss="categorical_crossentropy", optimizer="sgd", **{arg: value})


def test_fit_acts_on_validation_batch_size(monkeypatch):
    model = cnn.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    x = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(40) % 2]
    sizes = []
    original = type(model)._evaluate_checked
    monkeypatch.setattr(type(model), "_evaluate_checked",
                        lambda self, xv, yv, b: (sizes.append(b), original(self, xv, yv, b))[1])
    model.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, validation_batch_size=3, verbose=0)
    model.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, verbose=0)
    assert sizes == [3, 8]  # Keras's default: the training batch size
    with pytest.raises(InputError, match="validation_batch_size"):
        model.fit(x, y, validation_split=0.25, validation_batch_size=0, verbose=0)


def test_the_engines_errors_are_its_own():
    from cnn.explain import ExplainError

    with pytest.raises(InputError, match="seed must be"):
        cnn.set_seed("x")
    assert issubclass(ExplainError, CNNError) and issubclass(ExplainError, ValueError)


def test_a_result_does_not_depend_on_the_number_of_workers(digits):
    """One worker runs every call in the caller's thread, two share calls out in
    chunks; BLAS is on one thread either way, as some OpenBLAS builds round a
    product on two threads otherwise (OpenBLAS 0.3.31's Haswell kernels did)."""
    x, y = digits
    saved = parallel.WORKERS
    results = []
    try:
        for count in (1, 2, 1):
            parallel.set_workers(count)
            model = _built(6)
            _train(model, x[:256], y[:256])
            results.append((model.predict(x, batch_size=100), model.get_weights()))
    finally:
        parallel.set_workers(saved)
    for predictions, weights in results[1:]:
        np.testing.assert_array_equal(predictions, results[0][0])
        for got, want in zip(weights, results[0][1]):
            np.testing.assert_array_equal(got, want)
