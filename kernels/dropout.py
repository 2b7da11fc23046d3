"""Inverted dropout, given the random draws.

A value survives when its uniform draw ``u`` is at least ``rate`` and is then
scaled by ``1 / (1 - rate)``; the rest become 0. The caller draws (so the
random stream stays the model's); the forward pass returns the mask of
survivors (one byte a value), which the backward pass applies to the
gradient.

The draws are 32-bit integers, ``bits``: NumPy's float32 uniform number is
the top 24 bits of such a draw times 2^-24 (:func:`uniform_from_bits`), so
``u >= rate`` is the integer comparison ``bits >= threshold`` with
:func:`keep_threshold`. Drawing the integers (``rng.integers(0, 2**32,
dtype=np.uint32)``) takes the same values from the same stream as
``rng.random(dtype=np.float32)`` and leaves the generator in the same state,
but 2-2.5x faster (the float conversion is what costs), and the mask is the
same, bit for bit.

Shapes: ``x``, ``bits``, ``keep`` and ``out`` alike, any shape; ``bits``
uint32; ``keep`` bool.
"""
import numpy as np
from numba import njit

from .parallel import elementwise

SPLIT = 2**18  # values a chunk; each value is independent, so chunks change nothing


def draw_bits(rng, shape):
    """The 32-bit draws for ``shape`` values: the stream ``rng.random(shape, dtype=np.float32)`` reads."""
    return rng.integers(0, 2**32, size=shape, dtype=np.uint32)


def uniform_from_bits(bits):
    """The float32 uniform numbers in [0, 1) that NumPy makes of these draws."""
    return (bits >> 8).astype(np.float32) * np.float32(2.0**-24)


def keep_threshold(rate):
    """The smallest draw that survives: ``u >= float32(rate)`` exactly when
    ``bits >= keep_threshold(rate)`` (u's 24 bits times 2^-24 is exact)."""
    return int(np.ceil(np.float64(np.float32(rate)) * 2.0**24)) * 256


def dropout_numpy(x, bits, rate):
    """``x`` with the dropped values zeroed and the kept ones scaled, and the
    mask of kept values (reference: from the uniform numbers themselves)."""
    keep = uniform_from_bits(bits) >= np.float32(rate)
    scale = x.dtype.type(1 / (1 - rate))
    return np.where(keep, x * scale, 0).astype(x.dtype, copy=False), keep


def dropout_backward_numpy(dout, keep, rate):
    """The gradient through the same mask and scale (reference)."""
    return np.where(keep, dout * dout.dtype.type(1 / (1 - rate)), 0).astype(dout.dtype, copy=False)


@njit(cache=True, nogil=True)
def _dropout_flat(x, bits, out, keep, threshold, scale):
    for i in range(x.size):
        keep[i] = bits[i] >= threshold
    for i in range(x.size):  # a second loop: one that stores to two arrays is not vectorized
        out[i] = x[i] * scale if keep[i] else 0


@njit(cache=True, nogil=True)
def _masked_scale_flat(dout, keep, dx, scale):
    for i in range(dout.size):
        dx[i] = dout[i] * scale if keep[i] else 0


def dropout_numba(x, bits, rate):
    """:func:`dropout_numpy` in compiled passes, in chunks on every core."""
    if bits.dtype != np.uint32:
        raise TypeError(f"dropout draws must be uint32 bits (see draw_bits), got {bits.dtype}")
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    keep = np.empty(x.shape, dtype=np.bool_)
    elementwise(_dropout_flat, (x, np.ascontiguousarray(bits), out, keep), np.uint64(keep_threshold(rate)),
                x.dtype.type(1 / (1 - rate)), split=SPLIT)
    return out, keep


def dropout_backward_numba(dout, keep, rate):
    """:func:`dropout_backward_numpy` in one compiled pass, in chunks on every core."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    elementwise(_masked_scale_flat, (dout, keep, dx), dout.dtype.type(1 / (1 - rate)), split=SPLIT)
    return dx
