"""Gradient checks by central finite differences, in float64.

For a layer we pick a random upstream gradient ``dout`` and the scalar
``f = sum(layer.forward(x) * dout)``; then ``df/dx`` and ``df/dparam`` are
exactly what ``layer.backward(dout)`` returns, and each entry can be estimated
by ``(f(v + eps) - f(v - eps)) / (2 eps)``. In float64 with eps = 1e-6 a
correct backward pass agrees to about 1e-8 relative error; a wrong one is off
by far more than 1e-5.

Caveats: ReLU at 0 and max-pool ties are kinks where the finite difference
means nothing; test them with inputs away from 0 and without ties.

>>> from cnn.layers import Conv2D
>>> errors = check_layer(Conv2D(4, 3, padding='same'), input_shape=(5, 5, 2))
>>> max(errors.values()) < 1e-6
True
"""
import copy

import numpy as np

DEFAULT_EPS = 1e-6


def relative_error(analytic, numeric):
    """``||a - n|| / (||a|| + ||n||)``: 0 when equal, 1 when unrelated; 0 for two zeros."""
    analytic = np.asarray(analytic, dtype=np.float64).ravel()
    numeric = np.asarray(numeric, dtype=np.float64).ravel()
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


def numerical_gradient(f, array, eps=DEFAULT_EPS, indices=None):
    """Central differences of the scalar function ``f()`` with respect to ``array``.

    ``array`` is perturbed in place, one entry at a time, and restored.

    Parameters
    ----------
    f : callable with no arguments, returning a float
    array : float64 ndarray that ``f`` reads
    indices : sequence of flat indices to check (default: all)

    Returns
    -------
    grad : float64 ndarray of ``array``'s shape; unchecked entries are NaN.
    """
    grad = np.full(array.shape, np.nan)
    flat = array.reshape(-1)  # a view: writes reach ``array``
    for i in range(flat.size) if indices is None else indices:
        original = flat[i]
        flat[i] = original + eps
        up = f()
        flat[i] = original - eps
        down = f()
        flat[i] = original
        grad.flat[i] = (up - down) / (2 * eps)
    return grad


def _sample(size, max_checks, rng):
    if max_checks is None or size <= max_checks:
        return np.arange(size)
    return np.sort(rng.choice(size, max_checks, replace=False))


def check_layer(layer, x=None, input_shape=None, training=False, eps=DEFAULT_EPS,
                max_checks=None, seed=0):
    """Check a layer's backward pass against central differences.

    Parameters
    ----------
    layer : a layer (built or not); it is copied, never changed
    x : ndarray (n, *input_shape), optional; default: normal noise, batch of 2
    input_shape : tuple, needed when ``x`` is not given and the layer is not built
    training : bool, forward mode (Dropout's mask is held fixed between calls)
    max_checks : int, check at most this many random entries of each array

    Returns
    -------
    dict : name -> relative error, for ``'input'`` and every parameter
    """
    rng = np.random.default_rng(seed)
    layer = copy.deepcopy(layer)
    layer.needs_input_gradient = True  # even a model's first layer: we check dx too
    if x is None:
        shape = input_shape or layer.input_shape
        x = rng.standard_normal((2, *shape))
    x = np.array(x, dtype=np.float64)
    if not layer.built:
        layer.build(x.shape[1:])
    for name in layer.params:
        layer.params[name] = layer.params[name].astype(np.float64)
    trainable = layer.trainable_names  # the weights that get gradients (not BatchNorm's moving statistics)
    fixed_rng = copy.deepcopy(getattr(layer, "rng", None))

    def forward():
        if fixed_rng is not None:  # the same dropout mask on every call
            layer.rng = copy.deepcopy(fixed_rng)
        return layer.forward(x, training=training)

    dout = rng.standard_normal(forward().shape)

    def f():
        return float(np.sum(forward() * dout))

    forward()
    analytic = {"input": layer.backward(dout)}
    analytic.update({name: layer.grads[name].copy() for name in trainable})
    arrays = {"input": x, **{name: layer.params[name] for name in trainable}}
    errors = {}
    for name, array in arrays.items():
        idx = _sample(array.size, max_checks, rng)
        numeric = numerical_gradient(f, array, eps, idx)
        errors[name] = relative_error(np.asarray(analytic[name]).reshape(-1)[idx], numeric.reshape(-1)[idx])
    return errors


def check_loss(loss, y_pred, y_true, from_logits=False, eps=DEFAULT_EPS):
    """Check a loss's gradient with respect to its predictions (or logits).

    Returns
    -------
    float : the relative error
    """
    y_pred = np.array(y_pred, dtype=np.float64)
    y_true = np.array(y_true, dtype=np.float64)
    forward = loss.forward_from_logits if from_logits else loss.forward
    backward = loss.backward_from_logits if from_logits else loss.backward
    forward(y_pred, y_true)
    analytic = backward()
    numeric = numerical_gradient(lambda: forward(y_pred, y_true), y_pred, eps)
    return relative_error(analytic, numeric)
