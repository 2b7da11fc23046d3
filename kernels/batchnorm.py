"""Batch normalization over the last (channel) axis.

Training uses the batch's statistics over every axis but the last::

    mean = mean(x),  var = mean((x - mean)^2)    (biased, as tf.nn.moments)
    xhat = (x - mean) / sqrt(var + eps),  out = gamma * xhat + beta

and the backward pass, with m values per channel and g = dout * gamma::

    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
    dgamma = sum(dout * xhat),  dbeta = sum(dout)

At inference the statistics are constants (the moving averages), so
``dx = dout * gamma / sqrt(var + eps)``.

Shapes: x, out, dout (..., c) seen as (m, c); gamma, beta, mean, var (c,).
Each numba kernel sits beside its NumPy twin; they agree to rounding.
"""
import numpy as np
from numba import njit


# ---------------------------------------------------------------- NumPy twins
def moments_numpy(x2):
    mean = x2.mean(axis=0)
    return mean, np.square(x2 - mean).mean(axis=0)


def normalize_numpy(x2, mean, var, gamma, beta, eps):
    inv = 1 / np.sqrt(var + eps)
    xhat = (x2 - mean) * inv
    return (xhat * gamma + beta).astype(x2.dtype, copy=False), xhat.astype(x2.dtype, copy=False), inv


def backward_numpy(dout2, xhat, inv, gamma):
    dbeta = dout2.sum(axis=0)
    dgamma = (dout2 * xhat).sum(axis=0)
    g = dout2 * gamma
    dx = (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0)) * inv
    return dx.astype(dout2.dtype, copy=False), dgamma, dbeta


# ---------------------------------------------------------------- numba kernels
@njit(cache=True, nogil=True)
def moments_numba(x2):
    """Per-channel mean and biased variance of x2 (m, c), two passes (stable)."""
    m, c = x2.shape
    mean = np.zeros(c, np.float64)
    for i in range(m):
        for ch in range(c):
            mean[ch] += x2[i, ch]
    mean /= m
    var = np.zeros(c, np.float64)
    for i in range(m):
        for ch in range(c):
            d = x2[i, ch] - mean[ch]
            var[ch] += d * d
    var /= m
    return mean.astype(x2.dtype), var.astype(x2.dtype)


@njit(cache=True, nogil=True)
def normalize_numba(x2, mean, var, gamma, beta, eps):
    m, c = x2.shape
    inv = (1 / np.sqrt(var.astype(np.float64) + eps)).astype(x2.dtype)
    out = np.empty_like(x2)
    xhat = np.empty_like(x2)
    for i in range(m):
        for ch in range(c):
            h = (x2[i, ch] - mean[ch]) * inv[ch]
            xhat[i, ch] = h
            out[i, ch] = h * gamma[ch] + beta[ch]
    return out, xhat, inv


@njit(cache=True, nogil=True)
def backward_numba(dout2, xhat, inv, gamma):
    m, c = dout2.shape
    dbeta = np.zeros(c, np.float64)
    dgamma = np.zeros(c, np.float64)
    for i in range(m):
        for ch in range(c):
            dbeta[ch] += dout2[i, ch]
            dgamma[ch] += dout2[i, ch] * xhat[i, ch]
    # mean(g) = gamma * dbeta / m and mean(g * xhat) = gamma * dgamma / m
    dx = np.empty_like(dout2)
    for i in range(m):
        for ch in range(c):
            g = dout2[i, ch] * gamma[ch]
            dx[i, ch] = (g - gamma[ch] * (dbeta[ch] + xhat[i, ch] * dgamma[ch]) / m) * inv[ch]
    return dx, dgamma.astype(dout2.dtype), dbeta.astype(dout2.dtype)


IMPLS = {"numba": (moments_numba, normalize_numba, backward_numba),
         "numpy": (moments_numpy, normalize_numpy, backward_numpy)}


def batchnorm_forward(x, gamma, beta, mean, var, eps, training, impl="numba"):
    """Normalize ``x`` (..., c) with the batch's statistics (``training``) or
    the given ``mean`` and ``var``.

    Returns
    -------
    out : ndarray, the shape of x
    batch_stats : (mean, var) of the batch when training, else None
    cache : what :func:`batchnorm_backward` needs
    """
    moments, normalize, _ = IMPLS[impl]
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    stats = moments(x2) if training else None
    use_mean, use_var = stats if training else (mean, var)
    out, xhat, inv = normalize(x2, use_mean.astype(x.dtype), use_var.astype(x.dtype),
                               gamma.astype(x.dtype), beta.astype(x.dtype), eps)
    return out.reshape(x.shape), stats, (xhat, inv, gamma.astype(x.dtype), training, x.shape, impl)


def batchnorm_backward(dout, cache):
    """Gradients with respect to x, gamma and beta."""
    xhat, inv, gamma, training, shape, impl = cache
    dout2 = np.ascontiguousarray(dout).reshape(-1, shape[-1])
    if training:
        dx, dgamma, dbeta = IMPLS[impl][2](dout2, xhat, inv, gamma)
    else:
        dx = (dout2 * (gamma * inv)).astype(dout2.dtype, copy=False)
        dgamma, dbeta = (dout2 * xhat).sum(axis=0), dout2.sum(axis=0)
    return dx.reshape(shape), dgamma, dbeta
