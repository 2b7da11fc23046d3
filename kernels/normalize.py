"""Normalizing each sample over some of its axes (layer and group
normalization): ``xhat = (x - mean) / sqrt(var + eps)`` with the mean and the
biased variance taken over ``axes``, and the vector-Jacobian product.

With N values in each normalized group and ``g = dL/dxhat``::

    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)

(the means over the same axes): the gradient of a normalization has no
component along the constant direction or along xhat itself, since shifting
or scaling a group's input does not change its xhat.

Pure functions: ``normalize_forward(x, axes, epsilon) -> (xhat, cache)``,
``normalize_backward(dxhat, cache) -> dx``. They are memory-bound passes that
NumPy's reductions already run at memory speed: one implementation, which is
its own reference.
"""
from typing import NamedTuple

import numpy as np


class NormalizeCache(NamedTuple):
    xhat: np.ndarray
    inv_std: np.ndarray   # 1 / sqrt(var + eps), with the normalized axes kept as 1s
    axes: tuple


def normalize_forward(x, axes, epsilon):
    axes = tuple(axes)
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    xhat = centered * inv_std
    return xhat, NormalizeCache(xhat, inv_std, axes)


def normalize_backward(dxhat, cache):
    xhat, inv_std, axes = cache
    mean_g = dxhat.mean(axis=axes, keepdims=True)
    mean_gx = np.mean(dxhat * xhat, axis=axes, keepdims=True)
    return ((dxhat - mean_g - xhat * mean_gx) * inv_std).astype(dxhat.dtype, copy=False)
