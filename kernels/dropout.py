"""Inverted dropout, given the uniform draws.

A value survives when its uniform draw ``u`` is at least ``rate`` and is then
scaled by ``1 / (1 - rate)``; the rest become 0. The caller draws ``u`` (so
the random stream stays the model's); the forward pass returns the mask of
survivors (one byte a value, a quarter of the draws), which the backward pass
applies to the gradient.

Shapes: ``x``, ``u``, ``keep`` and ``out`` alike, any shape; ``u`` float32 in
[0, 1); ``keep`` bool.
"""
import numpy as np
from numba import njit

from .parallel import elementwise

SPLIT = 2**18  # values a chunk; each value is independent, so chunks change nothing


def dropout_numpy(x, u, rate):
    """``x`` with the dropped values zeroed and the kept ones scaled, and the
    mask of kept values (reference)."""
    keep = u >= rate
    scale = x.dtype.type(1 / (1 - rate))
    return np.where(keep, x * scale, 0).astype(x.dtype, copy=False), keep


def dropout_backward_numpy(dout, keep, rate):
    """The gradient through the same mask and scale (reference)."""
    return np.where(keep, dout * dout.dtype.type(1 / (1 - rate)), 0).astype(dout.dtype, copy=False)


@njit(cache=True, nogil=True)
def _dropout_flat(x, u, out, keep, rate, scale):
    for i in range(x.size):
        keep[i] = u[i] >= rate
    for i in range(x.size):  # a loop of its own: one that stores to two arrays is not vectorized
        out[i] = x[i] * scale if keep[i] else 0


@njit(cache=True, nogil=True)
def _masked_scale_flat(dout, keep, dx, scale):
    for i in range(dout.size):
        dx[i] = dout[i] * scale if keep[i] else 0


def dropout_numba(x, u, rate):
    """:func:`dropout_numpy` in one compiled pass, in chunks on every core."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    keep = np.empty(x.shape, dtype=np.bool_)
    elementwise(_dropout_flat, (x, np.ascontiguousarray(u), out, keep), u.dtype.type(rate),
                x.dtype.type(1 / (1 - rate)), split=SPLIT)
    return out, keep


def dropout_backward_numba(dout, keep, rate):
    """:func:`dropout_backward_numpy` in one compiled pass, in chunks on every core."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    elementwise(_masked_scale_flat, (dout, keep, dx), dout.dtype.type(1 / (1 - rate)), split=SPLIT)
    return dx
