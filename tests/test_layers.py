"""Every layer against central differences (float64) and against Keras 3 (float32)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn.gradcheck import DEFAULT_EPS, check_layer
from cnn.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnn.errors import InputError

from cnn.testing import conv2d_cases, pool2d_cases, untied
from helpers import FD_TOLERANCE, helper_test_layer


conv_cases = conv2d_cases()  # the strategy users get from cnn.testing


@settings(max_examples=30)
@given(case=conv_cases, seed=st.integers(0, 2**16))
def test_conv2d_against_finite_differences_and_keras(keras, case, seed):
    if case["padding"] == "valid" and (case["h"] < case["kh"] or case["w"] < case["kw"]):
        case = {**case, "padding": "same"}  # 'valid' needs the window to fit
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["cin"])).astype(np.float32)
    kwargs = dict(kernel_size=(case["kh"], case["kw"]), strides=(case["sh"], case["sw"]),
                  padding=case["padding"], use_bias=case["use_bias"])
    layer = Conv2D(case["cout"], **kwargs)
    reference = keras.layers.Conv2D(case["cout"], **kwargs)
    helper_test_layer(layer, reference, x, reduction=case["kh"] * case["kw"] * case["cin"], seed=seed)


@settings(max_examples=20)
@given(case=conv_cases, seed=st.integers(0, 2**16))
def test_winograd_conv2d_against_finite_differences_and_keras(keras, case, seed):
    # the same checks as the im2col layer above, for the 3x3 stride-1 cases Winograd runs
    case = {**case, "kh": 3, "kw": 3, "sh": 1, "sw": 1}
    if case["h"] < 3 or case["w"] < 3:
        case["padding"] = "same"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["cin"])).astype(np.float32)
    kwargs = dict(kernel_size=3, padding=case["padding"], use_bias=case["use_bias"])
    layer = Conv2D(case["cout"], impl="winograd", **kwargs)
    reference = keras.layers.Conv2D(case["cout"], **kwargs)
    helper_test_layer(layer, reference, x, reduction=9 * case["cin"], seed=seed)


def test_conv2d_impl_is_checked_when_the_layer_is_made():
    with pytest.raises(InputError, match="impl must be one of"):
        Conv2D(4, 3, impl="fft")
    with pytest.raises(InputError, match="winograd.*3x3 kernel, stride 1"):
        Conv2D(4, 3, strides=2, impl="winograd")


@pytest.mark.parametrize("impl,strides", [("numba", 1), ("numba", 2), ("numpy", 1), ("numpy", 2),
                                          ("winograd", 1)])  # Winograd runs stride 1 only
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_relu_chapter_like(keras, impl, padding, strides, rng):
    # ReLU is checked away from its kink: a bias pushes pre-activations off 0
    x = rng.standard_normal((2, 8, 7, 3)).astype(np.float32)
    layer = Conv2D(5, 3, strides=strides, padding=padding, activation="relu", impl=impl)
    layer.build(x.shape[1:])
    layer.params["bias"] = np.linspace(-0.5, 0.5, 5).astype(np.float32)
    reference = keras.layers.Conv2D(5, 3, strides=strides, padding=padding, activation="relu")
    helper_test_layer(layer, reference, x, reduction=27, fd=False)
    pre = Conv2D(5, 3, strides=strides, padding=padding, use_bias=True)
    pre.build(x.shape[1:])
    pre.params = dict(layer.params)
    z = pre.forward(x)
    # a step of eps in one entry moves a pre-activation by at most eps * (the largest |x| or |w| it meets):
    # ten times that keeps every central difference on one side of ReLU's kink, so the check always runs
    margin = 10 * DEFAULT_EPS * max(np.abs(x).max(), np.abs(layer.params["kernel"]).max())
    assert np.abs(z).min() > margin, "a pre-activation sits on ReLU's kink: finite differences would straddle it"
    errors = check_layer(layer, x.astype(np.float64))
    assert max(errors.values()) < FD_TOLERANCE, errors


pool_cases = pool2d_cases()  # the strategy users get from cnn.testing


@settings(max_examples=30)
@given(case=pool_cases, seed=st.integers(0, 2**16))
def test_maxpool_against_finite_differences_and_keras(keras, case, seed):
    if case["padding"] == "valid" and (case["h"] < case["ph"] or case["w"] < case["pw"]):
        case = {**case, "padding": "same"}
    rng = np.random.default_rng(seed)
    x = untied(rng, (case["n"], case["h"], case["w"], case["c"]))
    kwargs = dict(pool_size=(case["ph"], case["pw"]), strides=(case["sh"], case["sw"]), padding=case["padding"])
    helper_test_layer(MaxPooling2D(**kwargs), keras.layers.MaxPooling2D(**kwargs), x, seed=seed)


@pytest.mark.parametrize("shape", [(28, 28, 64), (7, 9, 2), (5, 5, 1)])
def test_maxpool_default_strides_are_pool_size(keras, shape, rng):
    x = untied(rng, (2, *shape))
    diffs = helper_test_layer(MaxPooling2D((2, 2)), keras.layers.MaxPooling2D((2, 2)), x, fd=shape[0] < 10)
    assert diffs["forward"] == 0  # a maximum is exact


@settings(max_examples=20)
@given(n=st.integers(1, 4), d_in=st.integers(1, 20), units=st.integers(1, 12),
       activation=st.sampled_from([None, "softmax"]), use_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_dense_against_finite_differences_and_keras(keras, n, d_in, units, activation, use_bias, seed):
    x = np.random.default_rng(seed).standard_normal((n, d_in)).astype(np.float32)
    layer = Dense(units, activation=activation, use_bias=use_bias)
    helper_test_layer(layer, keras.layers.Dense(units, activation=activation, use_bias=use_bias), x,
                      reduction=d_in, seed=seed)


def test_dense_relu(keras, rng):
    x = rng.standard_normal((3, 6)).astype(np.float32)
    layer = Dense(4, activation="relu")
    layer.build((6,))
    layer.params["bias"] = np.array([0.3, -0.3, 0.1, -0.1], np.float32)
    helper_test_layer(layer, keras.layers.Dense(4, activation="relu"), x, reduction=6, fd=False)
    assert max(check_layer(layer, x.astype(np.float64)).values()) < FD_TOLERANCE


@pytest.mark.parametrize("activation", ["relu", "softmax", "linear"])
def test_activation_layer(keras, activation, rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[np.abs(x) < 1e-2] = 0.5  # away from ReLU's kink
    helper_test_layer(Activation(activation), keras.layers.Activation(activation), x)


def test_flatten_is_c_order_like_keras(keras, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    diffs = helper_test_layer(Flatten(), keras.layers.Flatten(), x)
    assert diffs["forward"] == 0 and diffs["input"] == 0


def test_dropout_is_identity_at_inference(keras, rng):
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    diffs = helper_test_layer(Dropout(0.5), keras.layers.Dropout(0.5), x, training=False)
    assert diffs["forward"] == 0 and diffs["input"] == 0


def test_dropout_in_training_is_inverted_and_checked(rng):
    layer = Dropout(0.25)
    layer.build((1000,))
    x = np.ones((20, 1000), np.float32)
    out = layer.forward(x, training=True)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)  # survivors scaled up
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(layer.backward(x), out)  # gradient uses the same mask
    errors = check_layer(Dropout(0.25), input_shape=(30,), training=True)
    assert errors["input"] < FD_TOLERANCE


def test_same_padding_puts_the_extra_row_at_the_bottom_right():
    # 4x4 input, 3x3 kernel, stride 2, 'same': 2x2 output; total padding 1 goes after
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    layer = Conv2D(1, 3, strides=2, padding="same", use_bias=False)
    layer.build((4, 4, 1))
    layer.params["kernel"] = np.zeros((3, 3, 1, 1), np.float32)
    layer.params["kernel"][0, 0] = 1  # picks the window's top-left input
    out = layer.forward(x)[0, :, :, 0]
    np.testing.assert_array_equal(out, [[0, 2], [8, 10]])  # no padding at the top/left


def test_layer_argument_errors():
    with pytest.raises(InputError, match="padding"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(InputError, match="kernel_size"):
        Conv2D(2, 0)
    with pytest.raises(InputError, match="activation"):
        Dense(3, activation="tanhh")
    with pytest.raises(InputError, match="rate"):
        Dropout(1.0)
    with pytest.raises(InputError, match="Flatten"):
        Dense(3).build((4, 4, 1))
    layer = Dense(3)
    layer.build((4,))
    with pytest.raises(InputError, match="expects samples of shape"):
        layer.forward(np.zeros((2, 5), np.float32))
