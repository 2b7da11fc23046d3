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

from .parallel import image_chunks, run_chunks

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
def _dropout_flat(x, u, rate, scale, out, keep):
    for i in range(x.size):
        keep[i] = u[i] >= rate
        out[i] = x[i] * scale if keep[i] else 0


@njit(cache=True, nogil=True)
def _masked_scale_flat(dout, keep, scale, dx):
    for i in range(dout.size):
        dx[i] = dout[i] * scale if keep[i] else 0


def dropout_numba(x, u, rate):
    """:func:`dropout_numpy` in one compiled pass, in chunks on every core."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    keep = np.empty(x.shape, dtype=np.bool_)
    flats = (x.reshape(-1), np.ascontiguousarray(u).reshape(-1), out.reshape(-1), keep.reshape(-1))
    rate_u, scale = u.dtype.type(rate), x.dtype.type(1 / (1 - rate))

    def work(group):
        for _, a, b in group:
            xs, us, outs, keeps = (f[a:b] for f in flats)
            _dropout_flat(xs, us, rate_u, scale, outs, keeps)

    run_chunks(work, image_chunks(x.size, SPLIT))
    return out, keep


def dropout_backward_numba(dout, keep, rate):
    """:func:`dropout_backward_numpy` in one compiled pass, in chunks on every core."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    flats = (dout.reshape(-1), keep.reshape(-1), dx.reshape(-1))
    scale = dout.dtype.type(1 / (1 - rate))

    def work(group):
        for _, a, b in group:
            d, k, out = (f[a:b] for f in flats)
            _masked_scale_flat(d, k, scale, out)

    run_chunks(work, image_chunks(dout.size, SPLIT))
    return dx
