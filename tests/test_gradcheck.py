"""The gradient checker itself: it passes correct code, catches wrong code
(a deliberately wrong gradient in every built-in layer), and says why when the
point is a bad one (float32, a kink, a function that is not deterministic)."""
import numpy as np
import pytest

import cnn
from cnn.errors import InputError
from cnn.gradcheck import GradientCheckError, LowPrecisionWarning, check_gradients, check_layer, check_model
from cnn.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                        LeakyReLU)
from cnn.testing import untied


def test_any_function_with_a_backward(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    report = check_gradients(lambda a, b: a * b + np.sin(a), a, b,
                             backward=lambda d: (d * (b + np.cos(a)), d * a), names=["a", "b"])
    assert report.passed and max(report.values()) < 1e-8
    assert report.arrays["a"].checked == 12  # small arrays: every entry


def test_a_cs231n_forward_backward_pair(rng):
    from kernels.pool import maxpool_backward, maxpool_forward

    x = untied(rng, (2, 4, 4, 3)).astype(np.float64)
    report = check_gradients(lambda x: maxpool_forward(x, (2, 2)), x,
                             backward=lambda dout, cache: (maxpool_backward(dout, cache),))
    assert report.passed


def test_a_wrong_backward_is_refused_with_its_worst_entries(rng):
    a = rng.standard_normal((3, 4))
    with pytest.raises(GradientCheckError) as caught:
        check_gradients(lambda a: a ** 2, a, backward=lambda d: (d * 2 * a * 1.01,))
    message = str(caught.value)
    assert "arg0: 12 of 12 entries outside 1e-05 + 0.001 * |numeric|" in message
    assert "analytic" in message and "numeric" in message and "rel. error" in message
    report = check_gradients(lambda a: a ** 2, a, backward=lambda d: (d * 2 * a * 1.01,), raise_on_failure=False)
    assert not report.passed and report.arrays["arg0"].worst[0][3] == pytest.approx(0.01 / 1.01, rel=1e-3)


def test_big_arrays_are_sampled(rng):
    a = rng.standard_normal((40, 40))
    report = check_gradients(lambda a: 3 * a, a, backward=lambda d: (3 * d,))
    assert report.arrays["arg0"].checked == 300
    assert check_gradients(lambda a: 3 * a, a, backward=lambda d: (3 * d,), max_checks=5).arrays["arg0"].checked == 5


def test_float32_is_warned_about(rng):
    a = rng.standard_normal(5).astype(np.float32)
    with pytest.warns(LowPrecisionWarning, match="float32"):
        report = check_gradients(lambda a: a ** 3, a, backward=lambda d: (3 * d * a * a,), raise_on_failure=False)
    if not report.passed:
        assert any("float32" in note for note in report.diagnosis)


def test_a_kink_at_the_point_is_diagnosed():
    x = np.array([[0.0, 1.0, -2.0]])  # LeakyReLU's kink at 0
    with pytest.raises(GradientCheckError, match="kink or a tie within eps"):
        check_layer(LeakyReLU(0.2), x)


def test_a_function_that_is_not_deterministic_is_diagnosed(rng):
    a = rng.standard_normal(4)
    noise = np.random.default_rng(0)
    with pytest.raises(GradientCheckError, match="not deterministic"):
        check_gradients(lambda a: a + noise.standard_normal(a.shape) * 1e-3, a, backward=lambda d: (d,))


def test_layer_checks_say_what_they_need():
    with pytest.raises(InputError, match="give input_shape"):
        check_layer(Dense(3))
    with pytest.raises(InputError, match="check_model"):
        check_layer(cnn.Sequential([Dense(3, input_shape=(4,))]))
    assert check_layer(Dense(3, input_shape=(4,))).passed  # the layer knows its shape


def test_a_convolution_is_checked_on_every_algorithm_it_may_pick():
    report = check_layer(Conv2D(4, 3, padding="same", activation="relu"), input_shape=(6, 6, 16), max_checks=60)
    assert {"input [im2col]", "kernel [winograd]", "bias [winograd]"} <= set(report)


def _model(loss, last):
    cnn.set_seed(0)
    model = cnn.Sequential([
        cnn.Input((6, 6, 2)),
        Conv2D(3, 3, padding="same", activation="tanh"),
        BatchNormalization(),
        AveragePooling2D(2),
        Dropout(0.3),
        Flatten(),
        Dense(5, activation="elu", kernel_regularizer="l2"),
        last,
    ])
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.mark.parametrize("loss,last,labels", [
    ("categorical_crossentropy", Dense(4, activation="softmax"), "onehot"),
    ("sparse_categorical_crossentropy", Dense(4, activation="softmax"), "sparse"),
    (cnn.losses.SparseCategoricalCrossentropy(from_logits=True), Dense(4), "sparse"),
    ("binary_crossentropy", Dense(4, activation="sigmoid"), "binary"),
    ("mse", Dense(4, activation="linear"), "onehot"),
])
@pytest.mark.parametrize("training", [True, False])
def test_whole_models_with_every_loss(loss, last, labels, training, rng):
    model = _model(loss, last)
    x = rng.standard_normal((5, 6, 6, 2))
    k = rng.integers(0, 4, 5)
    y = {"onehot": np.eye(4)[k], "sparse": k, "binary": rng.integers(0, 2, (5, 4)).astype(float)}[labels]
    report = check_model(model, x, y, training=training)
    assert report.passed and max(report.values()) < 1e-6
    assert "batch_normalization/gamma" in report and "dense/kernel" in report


# ---------------------------------------------------------------- a wrong gradient in every layer
# every layer's own gradient check, and a gradient made 1% wrong caught in
# each, run from the registry: tests/test_registry.py


def test_the_cli_table_names_every_layer_and_its_tolerance():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cnn", "gradcheck"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for needle in ("Conv2D 3x3 'same' [winograd]", "BatchNormalization (training)", "AveragePooling2D", "gelu",
                   "sparse_categorical_crossentropy", "binary_crossentropy (from logits)", "1e-05 + 0.001"):
        assert needle in result.stdout, needle
