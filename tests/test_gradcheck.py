"""The gradient checker itself: it passes correct code, catches wrong code
(a deliberately wrong gradient in every built-in layer), and says why when the
point is a bad one (float32, a kink, a function that is not deterministic)."""
import numpy as np
import pytest

import cnn
from cnn.errors import InputError
from cnn.gradcheck import GradientCheckError, LowPrecisionWarning, check_gradients, check_layer, check_model
from cnn.layers import (ELU, Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                        GlobalAveragePooling2D, GlobalMaxPooling2D, LeakyReLU, MaxPooling2D, ReLU, Reshape, Softmax,
                        ZeroPadding2D)
from cnn.testing import assert_layer_gradients, untied


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
LAYERS = [
    ("Dense", lambda: Dense(4, activation="tanh"), (6,), False),
    ("Conv2D im2col", lambda: Conv2D(3, 3, strides=2, padding="same"), (7, 7, 2), False),
    ("Conv2D winograd", lambda: Conv2D(3, 3, padding="same", impl="winograd"), (6, 6, 2), False),
    ("Conv2D numpy", lambda: Conv2D(3, 2, impl="numpy"), (5, 5, 2), False),
    ("Conv2D dilated", lambda: Conv2D(3, 3, dilation_rate=2, padding="same"), (7, 7, 2), False),
    ("Conv2D relu", lambda: Conv2D(3, 3, padding="same", activation="relu", bias_initializer="ones"), (5, 5, 2), False),
    ("MaxPooling2D", lambda: MaxPooling2D(2), (6, 6, 3), False),
    ("AveragePooling2D", lambda: AveragePooling2D(3, strides=2, padding="same"), (7, 7, 2), False),
    ("GlobalAveragePooling2D", lambda: GlobalAveragePooling2D(), (4, 4, 3), False),
    ("GlobalMaxPooling2D", lambda: GlobalMaxPooling2D(), (4, 4, 3), False),
    ("BatchNormalization train", lambda: BatchNormalization(), (3, 3, 4), True),
    ("BatchNormalization infer", lambda: BatchNormalization(), (3, 3, 4), False),
    ("Dropout", lambda: Dropout(0.4), (20,), True),
    ("Flatten", lambda: Flatten(), (3, 2, 2), False),
    ("Reshape", lambda: Reshape((6, 2)), (3, 2, 2), False),
    ("ZeroPadding2D", lambda: ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2), False),
    ("ReLU", lambda: ReLU(max_value=2.0, negative_slope=0.1), (12,), False),
    ("LeakyReLU", lambda: LeakyReLU(), (12,), False),
    ("ELU", lambda: ELU(), (12,), False),
    ("Softmax", lambda: Softmax(), (12,), False),
    *[(f"Activation {name}", (lambda name=name: Activation(name)), (12,), False)
      for name in ("tanh", "sigmoid", "elu", "leaky_relu", "softplus", "gelu", "swish", "softmax", "relu")],
]


def _input(rng, shape):
    return untied(rng, (8, *shape), gap=7e-3).astype(np.float64) + 3e-3  # no ties, no value at a kink


@pytest.mark.parametrize("name,make,shape,training", LAYERS, ids=[c[0] for c in LAYERS])
def test_a_correct_layer_passes_in_float64(name, make, shape, training, rng):
    assert_layer_gradients(make(), _input(rng, shape), training=training)


def _has_weights(make, shape):
    layer = make()
    layer.build(shape)
    return bool(layer.trainable_names)


WRONG = [(*case, "input") for case in LAYERS] + [(*case, "weights") for case in LAYERS if _has_weights(case[1], case[2])]


@pytest.mark.parametrize("name,make,shape,training,wrong", WRONG, ids=[f"{c[0]}-{c[4]}" for c in WRONG])
def test_a_gradient_made_one_percent_wrong_is_caught(monkeypatch, name, make, shape, training, wrong, rng):
    layer = make()
    layer.build(shape)
    original = type(layer).backward

    def backward(self, dout):
        dx = original(self, dout)
        if wrong == "weights":
            for key in self.trainable_names:
                self.grads[key] = self.grads[key] * 1.01
            return dx
        return dx * 1.01

    monkeypatch.setattr(type(layer), "backward", backward)
    with pytest.raises(GradientCheckError, match="entries outside"):
        check_layer(layer, _input(rng, shape), training=training)


def test_the_cli_table_names_every_layer_and_its_tolerance():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cnn", "gradcheck"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for needle in ("Conv2D 3x3 'same' [winograd]", "BatchNormalization (training)", "AveragePooling2D", "gelu",
                   "sparse_categorical_crossentropy", "binary_crossentropy (from logits)", "1e-05 + 0.001"):
        assert needle in result.stdout, needle
