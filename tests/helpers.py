"""One helper to test a layer, in the spirit of tinygrad's ``helper_test_op``.

``helper_test_layer`` checks, for one layer and one input:

1. every gradient (input and parameters) against central finite differences
   in float64 (:func:`cnn.gradcheck.check_layer`);
2. the forward output and every gradient against the Keras 3 layer built with
   the same configuration and the same weights, in float32 (Keras's side from
   ``tf.GradientTape``).

Float32 tolerance: results are sums of ``k`` products, each rounded, and the
two engines add in different orders, so the difference grows like
``sqrt(k)`` ulps of the values summed. We use ``atol = 1e-6 * sqrt(k) * scale``
and ``rtol = 1e-5`` (``scale`` = the largest magnitude in the reference).
"""
import numpy as np

from cnn.gradcheck import check_layer

FD_TOLERANCE = 1e-6  # relative error of a correct float64 backward pass is ~1e-9


def keras_forward_and_grads(keras_layer, x, dout, training=False):
    """Keras's output and gradients of sum(out * dout) w.r.t. x and each weight."""
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = keras_layer(xt, training=training)
        objective = tf.reduce_sum(out * tf.constant(dout))
    grads = tape.gradient(objective, [xt, *keras_layer.trainable_weights])
    return out.numpy(), [g.numpy() for g in grads]


def assert_close_float32(ours, reference, reduction, what):
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.abs(reference).max(initial=0.0)), 1.0)
    atol = 1e-6 * np.sqrt(max(reduction, 1)) * scale
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=atol, err_msg=what)


def helper_test_layer(layer, keras_layer, x, training=False, reduction=1, fd=True, seed=0):
    """Check ``layer`` against finite differences and against ``keras_layer``.

    Checks, in one call (as Keras's ``run_layer_test`` and tinygrad's
    ``helper_test_op`` do between them): every gradient against central
    differences in float64; the output shape, the output and every gradient
    against the Keras layer with the same weights; the numbers of trainable
    and non-trainable weights against Keras's; the state a training pass
    updates (BatchNormalization's moving statistics); and that
    ``from_config(get_config())`` makes an equal layer.

    Parameters
    ----------
    layer : an engine layer (unbuilt)
    keras_layer : the equivalent Keras layer (unbuilt)
    x : float32 input (n, ...)
    reduction : how many products each output sums (for the tolerance)
    fd : run the finite-difference check too

    Returns
    -------
    dict : largest absolute difference against Keras, per array
    """
    x = np.asarray(x, dtype=np.float32)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config(), "from_config(get_config()) must give the same layer"
    layer.build(x.shape[1:])
    if fd:
        errors = check_layer(layer, x.astype(np.float64), training=training, seed=seed)
        for name, err in errors.items():
            assert err < FD_TOLERANCE, f"{type(layer).__name__} d/d{name}: relative error {err:.2e}"

    keras_layer.build((None, *x.shape[1:]))
    assert len(keras_layer.trainable_weights) == len(layer.trainable_weights), "trainable weight count"
    assert len(keras_layer.non_trainable_weights) == len(layer.non_trainable_weights), "non-trainable weight count"
    keras_layer.set_weights(layer.get_weights())
    dout = np.random.default_rng(seed + 1).standard_normal((x.shape[0], *layer.output_shape)).astype(np.float32)
    ref_out, ref_grads = keras_forward_and_grads(keras_layer, x, dout, training)

    out = layer.forward(x, training=training)
    dx = layer.backward(dout)
    assert out.dtype == np.float32 and dx.dtype == np.float32, "float32 in, float32 out"
    assert out.shape == ref_out.shape, f"output shape {out.shape} != Keras {ref_out.shape}"
    assert_close_float32(out, ref_out, reduction, "forward")
    # d/dx sums over the output cells that see each input: at most `reduction` terms too
    names = ["input", *layer.trainable_names]
    ours = [dx, *(layer.grads[name] for name in layer.trainable_names)]
    n_out = int(np.prod(ref_out.shape[:-1]))
    diffs = {"forward": float(np.abs(out - ref_out).max())}
    for name, mine, ref in zip(names, ours, ref_grads):
        terms = reduction if name == "input" else n_out  # a weight's gradient sums over every output cell
        assert_close_float32(mine, ref, terms, f"gradient w.r.t. {name}")
        diffs[name] = float(np.abs(mine - ref).max())
    # state a training pass moves (BatchNormalization's moving statistics), after the same one pass
    for mine, ref in zip(layer.non_trainable_weights, keras_layer.non_trainable_weights):
        assert_close_float32(mine, np.asarray(ref), n_out, "non-trainable state after the pass")
    return diffs


def small_model(seed=0, optimizer="adadelta", loss="categorical_crossentropy", dropout=(0.25, 0.5)):
    """A small CNN with every layer type, that trains in seconds on MNIST."""
    import cnn
    from cnn import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Sequential

    cnn.set_seed(seed)
    model = Sequential([
        Conv2D(4, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2),
        Dropout(dropout[0]),
        Flatten(),
        Dense(16, activation="relu"),
        Dropout(dropout[1]),
        Dense(10, activation="softmax"),
    ])
    model.compile(loss=loss, optimizer=optimizer, metrics=["acc"])
    return model
