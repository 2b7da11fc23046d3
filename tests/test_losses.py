"""Losses: gradients by finite differences; values and gradients against Keras."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn.data import one_hot
from cnn.gradcheck import check_loss
from cnn.losses import CategoricalCrossentropy, MeanSquaredError, get
from cnn.errors import InputError


def probabilities(rng, n, k):
    p = rng.random((n, k)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


@settings(max_examples=25)
@given(n=st.integers(1, 6), k=st.integers(2, 10), seed=st.integers(0, 2**16))
def test_loss_gradients_by_finite_differences(n, k, seed):
    rng = np.random.default_rng(seed)
    y = one_hot(rng.integers(0, k, n), k).astype(np.float64)
    p = probabilities(rng, n, k)
    assert check_loss(CategoricalCrossentropy(), p, y) < 1e-6
    # logits of moderate size: with saturated ones the loss itself (~1e-6) has too few
    # significant digits for a finite difference; large logits are checked against Keras
    assert check_loss(CategoricalCrossentropy(), rng.standard_normal((n, k)), y, from_logits=True) < 1e-6
    assert check_loss(MeanSquaredError(), p, y) < 1e-6


def test_fused_gradient_is_p_minus_y_over_batch(rng):
    z = rng.standard_normal((4, 10)).astype(np.float32)
    y = one_hot(np.array([0, 3, 9, 2]))
    loss = CategoricalCrossentropy()
    loss.forward_from_logits(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(loss.backward_from_logits(), (p - y) / 4, rtol=1e-5, atol=1e-7)


def _keras_loss_and_grad(keras_loss, y, p):
    import tensorflow as tf

    pt = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        value = keras_loss(tf.constant(y), pt)
    return float(value), tape.gradient(value, pt).numpy()


@pytest.mark.parametrize("case", ["ordinary", "zeros_and_ones", "unnormalised"])
def test_crossentropy_matches_keras_with_clipping(keras, case, rng):
    y = one_hot(np.array([1, 0, 2, 2]), 3)
    p = probabilities(rng, 4, 3).astype(np.float32)
    if case == "zeros_and_ones":
        p[0] = [0, 1, 0]          # certain and right: clipped at 1 - 1e-7
        p[1] = [0, 0, 1]          # certain and wrong: -log(1e-7), not infinity
    if case == "unnormalised":
        p = p * np.array([[2.0], [0.5], [1.0], [3.0]], np.float32)
    ours = CategoricalCrossentropy()
    value = ours.forward(p, y)
    grad = ours.backward()
    ref_value, ref_grad = _keras_loss_and_grad(keras.losses.CategoricalCrossentropy(), y, p)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_crossentropy_from_logits_matches_keras(keras, rng):
    y = one_hot(np.array([1, 0, 2, 2, 1]), 3)
    z = (rng.standard_normal((5, 3)) * 20).astype(np.float32)  # large logits: no overflow
    ours = CategoricalCrossentropy()
    value = ours.forward_from_logits(z, y)
    ref_value, ref_grad = _keras_loss_and_grad(keras.losses.CategoricalCrossentropy(from_logits=True), y, z)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    np.testing.assert_allclose(ours.backward_from_logits(), ref_grad, rtol=1e-5, atol=1e-7)


def test_mse_matches_keras(keras, rng):
    y = one_hot(np.array([1, 0, 2]), 3)
    p = probabilities(rng, 3, 3).astype(np.float32)
    ours = MeanSquaredError()
    value = ours.forward(p, y)
    ref_value, ref_grad = _keras_loss_and_grad(keras.losses.MeanSquaredError(), y, p)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(ours.backward(), ref_grad, rtol=1e-6)


def test_unknown_loss_is_refused():
    with pytest.raises(InputError, match="unknown loss"):
        get("hinge_squared")


# ---------------------------------------------------------------- the course's losses
from cnn.losses import BinaryCrossentropy, SparseCategoricalCrossentropy  # noqa: E402


@settings(max_examples=20)
@given(n=st.integers(1, 6), k=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_new_losses_gradients_by_finite_differences(n, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    assert check_loss(SparseCategoricalCrossentropy(), probabilities(rng, n, k), labels) < 1e-6
    assert check_loss(SparseCategoricalCrossentropy(from_logits=True), rng.standard_normal((n, k)), labels) < 1e-6
    assert check_loss(CategoricalCrossentropy(from_logits=True), rng.standard_normal((n, k)),
                      one_hot(labels, k).astype(np.float64)) < 1e-6
    targets = rng.integers(0, 2, (n, k)).astype(np.float64)
    assert check_loss(BinaryCrossentropy(), rng.uniform(0.05, 0.95, (n, k)), targets) < 1e-6
    assert check_loss(BinaryCrossentropy(from_logits=True), rng.standard_normal((n, k)), targets) < 1e-6
    # the fused forms the model uses when the output activation matches the loss
    assert check_loss(SparseCategoricalCrossentropy(), rng.standard_normal((n, k)), labels, from_logits=True) < 1e-6
    assert check_loss(BinaryCrossentropy(), rng.standard_normal((n, k)), targets, from_logits=True) < 1e-6


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("name", ["sparse", "binary", "categorical"])
def test_new_losses_match_keras(keras, name, from_logits, rng):
    n, k = 5, 4
    if from_logits:
        pred = (rng.standard_normal((n, k)) * 4).astype(np.float32)
    elif name == "binary":
        pred = rng.uniform(0, 1, (n, k)).astype(np.float32)
        pred[0, :2] = [0.0, 1.0]  # clipped, as Keras clips
    else:
        pred = probabilities(rng, n, k).astype(np.float32)
        pred[0] = [0, 1, 0, 0]
    labels = np.array([1, 0, 3, 2, 2])
    if name == "sparse":
        ours, theirs, y = SparseCategoricalCrossentropy(from_logits), keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), labels
    elif name == "binary":
        y = rng.integers(0, 2, (n, k)).astype(np.float32)
        ours, theirs = BinaryCrossentropy(from_logits), keras.losses.BinaryCrossentropy(from_logits=from_logits)
    else:
        y = one_hot(labels, k)
        ours, theirs = CategoricalCrossentropy(from_logits), keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    value = ours.forward(pred, y)
    ref_value, ref_grad = _keras_loss_and_grad(theirs, y, pred)
    assert value == pytest.approx(ref_value, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(ours.backward(), ref_grad, rtol=1e-4, atol=1e-6)


def test_sparse_labels_are_checked():
    loss = SparseCategoricalCrossentropy()
    with pytest.raises(InputError, match=r"labels must lie in 0\.\.9"):
        loss.check_targets(np.array([0, 10]), 2, (10,))
    with pytest.raises(InputError, match="integer labels of shape"):
        loss.check_targets(np.zeros((2, 10)), 2, (10,))
    with pytest.raises(InputError, match="whole-number labels"):
        loss.check_targets(np.array([0.5, 1.0]), 2, (10,))
    assert loss.check_targets(np.array([[3], [4]]), 2, (10,)).tolist() == [3, 4]
