"""Inverted dropout, given the uniform draws.

A value survives when its uniform draw ``u`` is at least ``rate`` and is then
scaled by ``1 / (1 - rate)``; the rest become 0. The caller draws ``u`` (so
the random stream stays the model's) and keeps it for the backward pass,
which applies the same mask to the gradient.

Shapes: ``x``, ``u`` and ``out`` alike, any shape; ``u`` float32 in [0, 1).
"""
import numpy as np
from numba import njit


def dropout_numpy(x, u, rate):
    """``x`` with the dropped values zeroed and the kept ones scaled (reference)."""
    scale = x.dtype.type(1 / (1 - rate))
    return np.where(u >= rate, x * scale, 0).astype(x.dtype, copy=False)


@njit(cache=True, nogil=True)
def _dropout_flat(x, u, rate, scale, out):
    for i in range(x.size):
        out[i] = x[i] * scale if u[i] >= rate else 0


def dropout_numba(x, u, rate):
    """:func:`dropout_numpy` in one compiled pass (no mask array)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _dropout_flat(x.reshape(-1), np.ascontiguousarray(u).reshape(-1), u.dtype.type(rate),
                  x.dtype.type(1 / (1 - rate)), out.reshape(-1))
    return out
