"""The layers and activations a CNN course adds past the chapter, each against
central differences (float64) and the Keras 3 layer with the same weights
(float32), through the one helper; and each new compiled kernel against its
NumPy twin."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnn
from cnn.errors import InputError
from cnn.layers import (ELU, Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
                        GlobalMaxPooling2D, LeakyReLU, ReLU, Reshape, Softmax, ZeroPadding2D)

from cnn.testing import pool2d_cases, untied
from helpers import helper_test_layer


pool_cases = pool2d_cases()  # the strategy users get from cnn.testing


@settings(max_examples=30)
@given(case=pool_cases, seed=st.integers(0, 2**16))
def test_average_pooling_against_finite_differences_and_keras(keras, case, seed):
    if case["padding"] == "valid" and (case["h"] < case["ph"] or case["w"] < case["pw"]):
        case = {**case, "padding": "same"}
    x = np.random.default_rng(seed).standard_normal((case["n"], case["h"], case["w"], case["c"])).astype(np.float32)
    kwargs = dict(pool_size=(case["ph"], case["pw"]), strides=(case["sh"], case["sw"]), padding=case["padding"])
    helper_test_layer(AveragePooling2D(**kwargs), keras.layers.AveragePooling2D(**kwargs), x,
                      reduction=case["ph"] * case["pw"], seed=seed)


@settings(max_examples=30)
@given(case=pool_cases, seed=st.integers(0, 2**16))
def test_average_pooling_kernel_matches_its_numpy_twin(case, seed):
    from kernels.pool import avgpool_backward, avgpool_forward

    if case["padding"] == "valid" and (case["h"] < case["ph"] or case["w"] < case["pw"]):
        case = {**case, "padding": "same"}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))
    args = ((case["ph"], case["pw"]), (case["sh"], case["sw"]), case["padding"])
    fast, fast_cache = avgpool_forward(x, *args, impl="numba")
    slow, slow_cache = avgpool_forward(x, *args, impl="numpy")
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(fast.shape)
    np.testing.assert_allclose(avgpool_backward(dout, fast_cache), avgpool_backward(dout, slow_cache),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("kind", ["average", "max"])
def test_global_pooling(keras, kind, keepdims, rng):
    x = untied(rng, (3, 5, 4, 6), gap=1e-2)
    ours = {"average": GlobalAveragePooling2D, "max": GlobalMaxPooling2D}[kind](keepdims=keepdims)
    theirs = {"average": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}[kind](keepdims=keepdims)
    helper_test_layer(ours, theirs, x, reduction=20)


def test_global_max_pooling_shares_the_gradient_of_ties_as_tensorflow(keras):
    x = np.zeros((1, 2, 2, 1), np.float32)  # four tied maxima
    layer = GlobalMaxPooling2D()
    layer.build(x.shape[1:])
    layer.forward(x)
    dx = layer.backward(np.ones((1, 1), np.float32))
    import tensorflow as tf
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = keras.layers.GlobalMaxPooling2D()(xt)
    np.testing.assert_allclose(dx, tape.gradient(out, xt).numpy())


bn_cases = st.fixed_dictionaries({
    "shape": st.sampled_from([(4, 3, 3, 2), (6, 5), (2, 4, 3, 5), (8, 1, 1, 3)]),
    "center": st.booleans(), "scale": st.booleans(),
    "momentum": st.sampled_from([0.99, 0.9, 0.5]), "epsilon": st.sampled_from([1e-3, 1e-5, 0.1]),
    "training": st.booleans(),
})


@settings(max_examples=30)
@given(case=bn_cases, seed=st.integers(0, 2**16))
def test_batch_normalization_against_finite_differences_and_keras(keras, case, seed):
    # not the check's own seed: with x and dout from one stream, dout is a linear function of x,
    # which normalization removes, leaving a gradient of almost nothing to compare
    rng = np.random.default_rng(seed + 7919)
    x = (rng.standard_normal(case["shape"]) * 2 + 0.5).astype(np.float32)
    kwargs = {k: case[k] for k in ("center", "scale", "momentum", "epsilon")}
    layer = BatchNormalization(**kwargs)
    layer.build(x.shape[1:])
    c = x.shape[-1]
    # weights away from their initial values, so that each one matters
    new = {"gamma": rng.uniform(0.5, 2, c), "beta": rng.standard_normal(c),
           "moving_mean": rng.standard_normal(c), "moving_variance": rng.uniform(0.5, 2, c)}
    layer.set_weights([new[name] for name in layer.params])
    helper_test_layer(layer, keras.layers.BatchNormalization(**kwargs), x, training=case["training"],
                      reduction=int(np.prod(x.shape[:-1])), seed=seed)


def test_batch_normalization_declares_keras_weights_in_keras_order():
    layer = BatchNormalization()
    layer.build((5, 5, 3))
    assert list(layer.params) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.trainable_names == ["gamma", "beta"] and len(layer.non_trainable_weights) == 2
    assert (layer.momentum, layer.epsilon) == (0.99, 1e-3)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4


def test_frozen_batch_normalization_runs_in_inference_mode_as_keras(keras, rng):
    x = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    ours, theirs = BatchNormalization(), keras.layers.BatchNormalization()
    ours.trainable = theirs.trainable = False
    helper_test_layer(ours, theirs, x, training=True, reduction=36, fd=False)
    assert not ours.params["moving_mean"].any()  # untouched by a training pass


@pytest.mark.parametrize("impl_shape", [(64, 3), (7, 5, 5, 4)])
def test_batch_normalization_kernels_match_their_numpy_twins(impl_shape, rng):
    from kernels.batchnorm import batchnorm_backward, batchnorm_forward

    x = rng.standard_normal(impl_shape) * 3 + 1
    c = impl_shape[-1]
    gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    for training in (True, False):
        fast = batchnorm_forward(x, gamma, beta, mean, var, 1e-3, training, "numba")
        slow = batchnorm_forward(x, gamma, beta, mean, var, 1e-3, training, "numpy")
        np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12, atol=1e-12)
        if training:
            for a, b in zip(fast[1], slow[1]):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        dout = rng.standard_normal(x.shape)
        for a, b in zip(batchnorm_backward(dout, fast[2]), batchnorm_backward(dout, slow[2])):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", [1, (2, 0), ((0, 1), (2, 3))])
def test_zero_padding(keras, padding, rng):
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    helper_test_layer(ZeroPadding2D(padding), keras.layers.ZeroPadding2D(padding), x)


@pytest.mark.parametrize("target", [(12,), (3, 4), (-1, 2), (2, 3, 2)])
def test_reshape(keras, target, rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    helper_test_layer(Reshape(target), keras.layers.Reshape(target), x)


def test_reshape_refuses_a_size_that_does_not_fit():
    with pytest.raises(InputError, match="cannot reshape"):
        Reshape((5,)).build((3, 2))


ACTIVATION_NAMES = [*cnn.activations.NAMES, "swish", "hard_swish"]  # every kernel, and Keras's other names


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_layer(keras, name, rng):
    x = (rng.standard_normal((3, 4, 5)) * 2).astype(np.float32)
    helper_test_layer(Activation(name), keras.layers.Activation(name), x, reduction=5)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_inside_dense_and_conv(keras, name, rng):
    x = rng.standard_normal((2, 6)).astype(np.float32)
    helper_test_layer(Dense(4, activation=name), keras.layers.Dense(4, activation=name), x, reduction=6)
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    helper_test_layer(Conv2D(3, 3, padding="same", activation=name),
                      keras.layers.Conv2D(3, 3, padding="same", activation=name), x, reduction=18)


def test_activation_functions_are_accepted_where_keras_accepts_them(keras, rng):
    x = rng.standard_normal((2, 6)).astype(np.float32)
    helper_test_layer(Dense(4, activation=cnn.activations.tanh), keras.layers.Dense(4, activation="tanh"), x,
                      reduction=6)
    np.testing.assert_allclose(cnn.activations.gelu(x), keras.activations.gelu(x).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="activation=.*must be one of cnn.activations"):
        Dense(4, activation=lambda z: z * 2)
    with pytest.raises(InputError, match="unknown activation 'mish'"):
        Dense(4, activation="mish")


def test_gelu_kernel_matches_its_numpy_twin(rng):
    from kernels.activations import gelu_backward, gelu_backward_numpy, gelu_forward, gelu_forward_numpy

    z = rng.standard_normal((50, 7)) * 3
    dout = rng.standard_normal(z.shape)
    np.testing.assert_allclose(gelu_forward(z), gelu_forward_numpy(z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(gelu_backward(dout, None, z), gelu_backward_numpy(dout, None, z), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kwargs", [{}, {"max_value": 1.0}, {"negative_slope": 0.1}, {"threshold": 0.5},
                                    {"max_value": 2.0, "negative_slope": 0.2, "threshold": 0.3}])
def test_relu_layer_arguments(keras, kwargs, rng):
    x = (untied(rng, (3, 4, 5), gap=0.05) + 0.013).astype(np.float32)  # no value on a kink
    helper_test_layer(ReLU(**kwargs), keras.layers.ReLU(**kwargs), x)


@pytest.mark.parametrize("layer,reference", [
    (lambda: LeakyReLU(), lambda k: k.layers.LeakyReLU()),
    (lambda: LeakyReLU(negative_slope=0.05), lambda k: k.layers.LeakyReLU(negative_slope=0.05)),
    (lambda: ELU(alpha=0.7), lambda k: k.layers.ELU(alpha=0.7)),
    (lambda: Softmax(), lambda k: k.layers.Softmax()),
])
def test_activation_layers_with_arguments(keras, layer, reference, rng):
    x = (rng.standard_normal((3, 7)) * 2).astype(np.float32)
    helper_test_layer(layer(), reference(keras), x, reduction=7)


def test_keras_defaults_of_the_activation_layers():
    assert LeakyReLU().negative_slope == 0.3  # the layer's default; the function's is 0.2
    assert cnn.activations.get("leaky_relu").forward(np.array([-1.0]))[0] == -0.2


dilated_cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(3, 10), "w": st.integers(3, 10), "cin": st.sampled_from([1, 3]),
    "cout": st.integers(1, 3), "kh": st.integers(1, 3), "kw": st.integers(1, 3), "dh": st.integers(1, 3),
    "dw": st.integers(1, 3), "padding": st.sampled_from(["valid", "same"]), "impl": st.sampled_from(["numba", "numpy"]),
})


@settings(max_examples=30)
@given(case=dilated_cases, seed=st.integers(0, 2**16))
def test_dilated_conv2d_against_finite_differences_and_keras(keras, case, seed):
    span_h, span_w = (case["kh"] - 1) * case["dh"] + 1, (case["kw"] - 1) * case["dw"] + 1
    if case["padding"] == "valid" and (case["h"] < span_h or case["w"] < span_w):
        case = {**case, "padding": "same"}
    x = np.random.default_rng(seed).standard_normal((case["n"], case["h"], case["w"], case["cin"])).astype(np.float32)
    kwargs = dict(kernel_size=(case["kh"], case["kw"]), dilation_rate=(case["dh"], case["dw"]), padding=case["padding"])
    helper_test_layer(Conv2D(case["cout"], impl=case["impl"], **kwargs), keras.layers.Conv2D(case["cout"], **kwargs), x,
                      reduction=case["kh"] * case["kw"] * case["cin"], seed=seed)


@settings(max_examples=30)
@given(case=dilated_cases, seed=st.integers(0, 2**16))
def test_dilated_im2col_kernels_match_their_numpy_twins(case, seed):
    from kernels.conv import _geometry
    from kernels.im2col import col2im_numba, col2im_numpy, im2col_numba, im2col_numpy

    x = np.random.default_rng(seed).standard_normal((case["n"], case["h"], case["w"], case["cin"]))
    try:
        geometry = _geometry(x.shape, (case["kh"], case["kw"], case["cin"], 1), (1, 1), case["padding"],
                             (case["dh"], case["dw"]))
    except ValueError:  # 'valid' with a span wider than the image
        return
    cols = im2col_numba(x, *geometry)
    np.testing.assert_array_equal(cols, im2col_numpy(x, *geometry))
    c = np.random.default_rng(seed + 1).standard_normal(cols.shape)
    back = col2im_numba(c, x.shape, *geometry)
    np.testing.assert_allclose(back, col2im_numpy(c, x.shape, *geometry), rtol=1e-12, atol=1e-12)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, back), rel=1e-10, abs=1e-10)  # the adjoint


def test_unsupported_keras_arguments_are_refused_by_name():
    with pytest.raises(InputError, match="dilation"):
        Conv2D(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(InputError, match="no dilation"):
        Conv2D(4, 3, dilation_rate=2, impl="winograd")
    with pytest.raises(InputError, match="groups=3 must divide filters=4"):
        Conv2D(4, 3, groups=3)
    with pytest.raises(InputError, match="groups=2 must divide the 3 input channels"):
        Conv2D(4, 3, groups=2).build((5, 5, 3))
    with pytest.raises(InputError, match="kernel_constraint"):
        Dense(4, kernel_constraint="non_neg")
    with pytest.raises(InputError, match="unknown argument 'kernel_size'"):
        Dense(4, kernel_size=3)
    with pytest.raises(InputError, match="impl must be one of"):
        cnn.layers.MaxPooling2D(impl="bogus")
    with pytest.raises(InputError, match="data_format='channels_first'"):
        AveragePooling2D(data_format="channels_first")
    with pytest.raises(InputError, match="axis=1"):
        BatchNormalization(axis=1)
    Dense(4, kernel_constraint=None, activity_regularizer=None)  # Keras's defaults, as configs hold them


def _ks(a, b):
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical distributions."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    points = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, points, "right") / a.size - np.searchsorted(b, points, "right") / b.size).max()


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                                  "lecun_normal", "random_normal", "random_uniform", "truncated_normal"])
def test_initializers_by_keras_name_draw_kerass_distribution(keras, name):
    # 73,728 draws each: the whole distribution (mean, spread, shape, the truncation) against Keras's
    shape = (3, 3, 64, 128)
    ours = cnn.initializers.get(name)(shape, np.random.default_rng(0), dtype=np.float64)
    theirs = np.asarray(keras.initializers.get(name)(shape), dtype=np.float64)
    assert ours.shape == shape
    std = theirs.std()
    assert ours.std() == pytest.approx(std, rel=0.03)
    assert abs(ours.mean() - theirs.mean()) < 0.03 * std  # 5.7 standard errors of the difference
    assert _ks(ours, theirs) < 0.015  # at these sizes two draws of one distribution differ by ~0.005
    # what these asserts catch: the same spread shifted by a tenth of it, or a normal for a uniform
    assert _ks(ours + 0.1 * std, theirs) > 0.03 and abs(ours.mean() + 0.1 * std - theirs.mean()) > 0.03 * std
    other = np.random.default_rng(1).normal(0, std, shape) if "uniform" in name else \
        np.random.default_rng(1).uniform(-np.sqrt(3) * std, np.sqrt(3) * std, shape)
    assert _ks(other, theirs) > 0.015


def test_ones_and_constant_initializers():
    layer = Dense(3, kernel_initializer="ones", bias_initializer=cnn.initializers.Constant(0.5))
    layer.build((2,))
    assert (layer.params["kernel"] == 1).all() and (layer.params["bias"] == 0.5).all()
