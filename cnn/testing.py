"""Test helpers for your own layers, the ones this project's suite uses.

* :func:`assert_layer_gradients`: a layer's backward pass against central
  differences in float64 (raises :class:`cnn.gradcheck.GradientCheckError`
  with the worst entries when it is wrong);
* :func:`check_layer_against_keras`: that, plus the forward output and every
  gradient against the Keras 3 layer with the same weights (float32), the
  weight counts, the state a training pass moves and the config round trip;
* hypothesis strategies for layer cases (:func:`conv2d_cases`,
  :func:`pool2d_cases`) and :func:`untied` inputs (no two values equal, so
  max-pooling has no ties for a finite difference to trip on).

In a pytest suite::

    from cnn.testing import assert_layer_gradients

    def test_my_layer():
        assert_layer_gradients(MyLayer(), input_shape=(5, 5, 3))

hypothesis (for the strategies) and Keras with TensorFlow (for the Keras
comparison) are test dependencies: ``pip install -e '.[test]'``.
"""
import numpy as np

from .gradcheck import DEFAULT_ATOL, DEFAULT_RTOL, check_layer

FD_TOLERANCE = 1e-6  # norm-wise relative error; a correct float64 backward pass scores ~1e-9


def assert_layer_gradients(layer, x=None, input_shape=None, training=False, **options):
    """:func:`cnn.gradcheck.check_layer`, raising on any entry out of tolerance
    and on a norm-wise relative error above 1e-6. Returns the report."""
    report = check_layer(layer, x=x, input_shape=input_shape, training=training, raise_on_failure=True, **options)
    for name, err in report.items():
        assert err < FD_TOLERANCE, f"{type(layer).__name__} d/d{name}: relative error {err:.2e}"
    return report


def untied(rng, shape, gap=1e-3):
    """float32 values with no two equal (at least ``gap`` apart): no max-pool ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * gap - n * gap / 2).astype(np.float32)


def example_input(example, batch=8, seed=0, dtype=np.float64):
    """The batch the registry's checks give a layer's :class:`cnn.layers.Example`
    (a list of batches for a merge layer): distinct values in [-3, 3] on a
    lattice, so that no two are equal (no max-pool or Maximum ties, also
    between a merge layer's inputs, whose lattices interleave) and none lies
    within 1e-3 of a kink at 0 or at a ReLU's integer max_value."""
    shapes = example.sample_shape
    several = bool(shapes) and isinstance(shapes[0], (tuple, list))
    shapes = [tuple(s) for s in shapes] if several else [tuple(shapes)]
    rng = np.random.default_rng(seed)
    batches = []
    for k, shape in enumerate(shapes):
        n = batch * int(np.prod(shape))
        step = 6.0 / n
        x = rng.permutation(n).reshape(batch, *shape) * step - 3 + 1e-3 + k * step / (len(shapes) + 1)
        batches.append(x.astype(dtype))
    return batches if several else batches[0]


def conv2d_cases(max_size=9, max_kernel=4, max_stride=3, channels=(1, 3), max_filters=4):
    """A hypothesis strategy of Conv2D cases: batch, image size, channels,
    kernel, strides, padding, bias."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "n": st.integers(1, 2), "h": st.integers(1, max_size), "w": st.integers(1, max_size),
        "cin": st.sampled_from(list(channels)), "cout": st.integers(1, max_filters),
        "kh": st.integers(1, max_kernel), "kw": st.integers(1, max_kernel),
        "sh": st.integers(1, max_stride), "sw": st.integers(1, max_stride),
        "padding": st.sampled_from(["valid", "same"]), "use_bias": st.booleans(),
    })


def pool2d_cases(max_size=9, max_pool=3, max_stride=3, max_channels=3):
    """A hypothesis strategy of pooling cases: batch, image size, channels, pool, strides, padding."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "n": st.integers(1, 2), "h": st.integers(1, max_size), "w": st.integers(1, max_size),
        "c": st.integers(1, max_channels), "ph": st.integers(1, max_pool), "pw": st.integers(1, max_pool),
        "sh": st.integers(1, max_stride), "sw": st.integers(1, max_stride),
        "padding": st.sampled_from(["valid", "same"]),
    })


def fits(case, kernel=("kh", "kw"), size=("h", "w")):
    """The case with padding 'same' when a 'valid' window would not fit the image."""
    if case["padding"] == "valid" and (case[size[0]] < case[kernel[0]] or case[size[1]] < case[kernel[1]]):
        return {**case, "padding": "same"}
    return case


# ------------------------------------------------------------ against Keras
def keras_forward_and_grads(keras_layer, x, dout, training=False):
    """Keras's output and gradients of sum(out * dout) w.r.t. x (each of a
    list of inputs) and each trainable weight."""
    import tensorflow as tf

    several = isinstance(x, (list, tuple))
    xts = [tf.constant(one) for one in (x if several else [x])]
    with tf.GradientTape() as tape:
        tape.watch(xts)
        out = keras_layer(xts if several else xts[0], training=training)
        objective = tf.reduce_sum(out * tf.constant(dout))
    grads = tape.gradient(objective, [*xts, *keras_layer.trainable_weights])
    return out.numpy(), [g.numpy() for g in grads]


def assert_close_float32(ours, reference, reduction, what):
    """Float32 results that sum ``reduction`` rounded products in another
    order differ by ~sqrt(reduction) ulps: atol = 1e-6 sqrt(k) * scale, rtol 1e-5."""
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.abs(reference).max(initial=0.0)), 1.0)
    atol = 1e-6 * np.sqrt(max(reduction, 1)) * scale
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=atol, err_msg=what)


def check_layer_against_keras(layer, keras_layer, x, training=False, reduction=1, fd=True, seed=0):
    """Check ``layer`` against finite differences and against ``keras_layer``.

    In one call (what Keras's ``run_layer_test`` and tinygrad's
    ``helper_test_op`` do between them): every gradient against central
    differences in float64, entry by entry; the output shape, the output and
    every gradient against the Keras layer with the same weights; the numbers
    of trainable and non-trainable weights; the state a training pass moves
    (BatchNormalization's moving statistics); and that
    ``from_config(get_config())`` makes an equal layer.

    Parameters
    ----------
    layer : an engine layer (unbuilt, or built on x's sample shape)
    keras_layer : the equivalent Keras layer (unbuilt)
    x : float32 input (n, ...), or a list of them for a merge layer
    reduction : how many products each output sums (for the float32 tolerance)
    fd : run the finite-difference check too

    Returns
    -------
    dict : largest absolute difference against Keras, per array
    """
    several = isinstance(x, (list, tuple))
    xs = [np.asarray(one, dtype=np.float32) for one in (x if several else [x])]
    x = xs if several else xs[0]
    shape = [one.shape[1:] for one in xs] if several else xs[0].shape[1:]
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config(), "from_config(get_config()) must give the same layer"
    layer.build(shape)
    if fd:
        assert_layer_gradients(layer, [one.astype(np.float64) for one in xs] if several else x.astype(np.float64),
                               training=training, seed=seed)

    keras_layer.build([(None, *s) for s in shape] if several else (None, *shape))
    assert len(keras_layer.trainable_weights) == len(layer.trainable_weights), "trainable weight count"
    assert len(keras_layer.non_trainable_weights) == len(layer.non_trainable_weights), "non-trainable weight count"
    keras_layer.set_weights(layer.get_weights())
    dout = np.random.default_rng(seed + 1).standard_normal((xs[0].shape[0], *layer.output_shape)).astype(np.float32)
    ref_out, ref_grads = keras_forward_and_grads(keras_layer, x, dout, training)

    out = layer.forward(x, training=training)
    dxs = layer.backward(dout)
    dxs = list(dxs) if several else [dxs]
    assert out.dtype == np.float32 and all(dx.dtype == np.float32 for dx in dxs), "float32 in, float32 out"
    assert out.shape == ref_out.shape, f"output shape {out.shape} != Keras {ref_out.shape}"
    assert_close_float32(out, ref_out, reduction, "forward")
    # d/dx sums over the output cells that see each input: at most `reduction` terms too
    inputs = [f"input {i}" for i in range(len(xs))] if several else ["input"]
    names = [*inputs, *layer.trainable_names]
    ours = [*dxs, *(layer.grads[name] for name in layer.trainable_names)]
    n_out = int(np.prod(ref_out.shape[:-1]))
    diffs = {"forward": float(np.abs(out - ref_out).max())}
    for name, mine, ref in zip(names, ours, ref_grads):
        terms = reduction if name.startswith("input") else n_out  # a weight's gradient sums over every output cell
        assert_close_float32(mine, ref, terms, f"gradient w.r.t. {name}")
        diffs[name] = float(np.abs(mine - ref).max())
    for mine, ref in zip(layer.non_trainable_weights, keras_layer.non_trainable_weights):
        assert_close_float32(mine, np.asarray(ref), n_out, "non-trainable state after the pass")
    return diffs


__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "FD_TOLERANCE", "assert_layer_gradients", "check_layer_against_keras",
           "conv2d_cases", "pool2d_cases", "example_input", "untied", "fits", "keras_forward_and_grads", "assert_close_float32"]
