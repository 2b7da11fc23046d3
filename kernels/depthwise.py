"""Depthwise 2-D convolution over NHWC images: each input channel convolved
with its own ``depth_multiplier`` filters, no sum across channels.

Output channel ``c * dm + m`` is input channel ``c`` through filter ``m``
(Keras's and TensorFlow's order); the kernel is ``(kh, kw, cin, dm)``::

    out[n, i, j, c * dm + m] = sum over (a, b) of
        x[n, i * sh + a * dh - pad_top, j * sw + b * dw - pad_left, c] * w[a, b, c, m]

It is not an im2col product: a GEMM with one channel per group would multiply
a (pixels, kh * kw) matrix by a (kh * kw, dm) one, too thin to use the GEMM
(and im2col would copy every input value kh * kw times to do it). The compiled
loops below walk the taps and run along the channels, which are contiguous in
NHWC, so the innermost loop is a vector multiply-add over channels; each
input value is read kh * kw times from cache instead of copied.

Pure functions, CS231n style: ``depthwise_forward(...) -> (out, cache)`` and
``depthwise_backward(dout, cache) -> (dx, dw, db)``; ``impl='numpy'`` is the
readable twin (one strided slice per tap) the tests compare the loops with.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .geometry import window_geometry
from .parallel import image_chunks, run_chunks

IMPLS = ("numba", "numpy")


class DepthwiseGeometry(NamedTuple):
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pad_top: int
    pad_left: int
    oh: int
    ow: int


class DepthwiseCache(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    geometry: DepthwiseGeometry
    impl: str


def depthwise_geometry(x_shape, w_shape, strides, padding, dilation=(1, 1)):
    kh, kw = w_shape[:2]
    (sh, sw), (dh, dw) = strides, dilation
    oh, pt, _ = window_geometry(x_shape[1], (kh - 1) * dh + 1, sh, padding)
    ow, pl, _ = window_geometry(x_shape[2], (kw - 1) * dw + 1, sw, padding)
    return DepthwiseGeometry(kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)


# ---------------------------------------------------------------- NumPy twin
def _taps(xp, g):
    """(a, b, the (n, oh, ow, c) slice of the padded input under tap (a, b))."""
    for a in range(g.kh):
        for b in range(g.kw):
            y, x = a * g.dh, b * g.dw
            yield a, b, xp[:, y: y + (g.oh - 1) * g.sh + 1: g.sh, x: x + (g.ow - 1) * g.sw + 1: g.sw]


def _padded(x, g):
    n, h, w, c = x.shape
    bottom = max((g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1 - h - g.pad_top, 0)
    right = max((g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1 - w - g.pad_left, 0)
    return np.pad(x, ((0, 0), (g.pad_top, bottom), (g.pad_left, right), (0, 0)))


def _forward_numpy(x, w, g):
    n, c, dm = x.shape[0], w.shape[2], w.shape[3]
    out = np.zeros((n, g.oh, g.ow, c, dm), dtype=x.dtype)
    for a, b, window in _taps(_padded(x, g), g):
        out += window[..., None] * w[a, b]
    return out.reshape(n, g.oh, g.ow, c * dm)


def _backward_numpy(dout, x, w, g):
    n, c, dm = x.shape[0], w.shape[2], w.shape[3]
    d = dout.reshape(n, g.oh, g.ow, c, dm)
    xp = _padded(x, g)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for a, b, window in _taps(xp, g):
        dw[a, b] = np.einsum("nijc,nijcm->cm", window, d)
        y, xx = a * g.dh, b * g.dw
        dxp[:, y: y + (g.oh - 1) * g.sh + 1: g.sh, xx: xx + (g.ow - 1) * g.sw + 1: g.sw] += \
            np.einsum("nijcm,cm->nijc", d, w[a, b])
    h, wd = x.shape[1:3]
    return dxp[:, g.pad_top: g.pad_top + h, g.pad_left: g.pad_left + wd], dw


# ---------------------------------------------------------------- compiled loops
@njit(cache=True, nogil=True)
def _forward_into(x, w, bias, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, out):
    n, h, wd, c = x.shape
    dm = w.shape[3]
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                acc = out[img, i, j]
                for k in range(c * dm):
                    acc[k] = bias[k]
                for a in range(kh):
                    y = i * sh - pt + a * dh
                    if y < 0 or y >= h:
                        continue
                    for b in range(kw):
                        xx = j * sw - pl + b * dw
                        if xx < 0 or xx >= wd:
                            continue
                        row = x[img, y, xx]
                        taps = w[a, b]
                        if dm == 1:
                            for ch in range(c):
                                acc[ch] += row[ch] * taps[ch, 0]
                        else:
                            for ch in range(c):
                                v = row[ch]
                                for m in range(dm):
                                    acc[ch * dm + m] += v * taps[ch, m]


@njit(cache=True, nogil=True)
def _backward_into(dout, x, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, need_dx, dx, dwt):
    """dx (zeroed here) for these images, and their share of dw added into ``dwt``."""
    n, h, wd, c = x.shape
    dm = w.shape[3]
    if need_dx:
        dx[:] = 0
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                d = dout[img, i, j]
                for a in range(kh):
                    y = i * sh - pt + a * dh
                    if y < 0 or y >= h:
                        continue
                    for b in range(kw):
                        xx = j * sw - pl + b * dw
                        if xx < 0 or xx >= wd:
                            continue
                        row = x[img, y, xx]
                        taps = w[a, b]
                        grads = dwt[a, b]
                        if dm == 1:  # MobileNet's case: two contiguous vector loops over the channels
                            for ch in range(c):
                                grads[ch, 0] += row[ch] * d[ch]
                            if need_dx:
                                drow = dx[img, y, xx]
                                for ch in range(c):
                                    drow[ch] += taps[ch, 0] * d[ch]
                            continue
                        for ch in range(c):
                            v = row[ch]
                            g = 0.0
                            for m in range(dm):
                                dv = d[ch * dm + m]
                                grads[ch, m] += v * dv
                                g += taps[ch, m] * dv
                            if need_dx:
                                dx[img, y, xx, ch] += g


# ---------------------------------------------------------------- public API
def _chunks(n):
    return image_chunks(n, max(1, -(-n // 8)))  # up to 8 chunks, from n alone


def depthwise_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1), impl="numba"):
    """Depthwise convolution.

    Parameters
    ----------
    x : (n, h, w, c); w : (kh, kw, c, dm); b : (c * dm,) or None
    strides, dilation : (int, int); padding : 'valid' or 'same' (Keras's)
    impl : 'numba' (the compiled loops, images shared out over the cores)
        or 'numpy' (the twin)

    Returns
    -------
    out : (n, oh, ow, c * dm)
    cache : DepthwiseCache
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    g = depthwise_geometry(x.shape, w.shape, tuple(strides), padding, tuple(dilation))
    n, c, dm = x.shape[0], w.shape[2], w.shape[3]
    if impl == "numpy":
        out = _forward_numpy(x, w, g)
        if b is not None:
            out = out + b
    else:
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w, dtype=x.dtype)
        bias = np.zeros(c * dm, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
        out = np.empty((n, g.oh, g.ow, c * dm), dtype=x.dtype)

        def work(group):
            for _, start, stop in group:
                _forward_into(x[start:stop], w, bias, *g, out[start:stop])

        run_chunks(work, _chunks(n))
    return out, DepthwiseCache(x, w, g, impl)


def depthwise_backward(dout, cache, need_dx=True):
    """Gradients of :func:`depthwise_forward`: (dx or None, dw, db)."""
    x, w, g, impl = cache
    db = dout.sum(axis=(0, 1, 2))
    if impl == "numpy":
        dx, dw = _backward_numpy(dout, x, w, g)
        return (dx if need_dx else None), dw, db
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    n = x.shape[0]
    dx = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), x.dtype)
    partials = {}

    def work(group):
        for index, start, stop in group:
            part = np.zeros(w.shape, dtype=x.dtype)
            _backward_into(dout[start:stop], x[start:stop], w, *g, need_dx,
                           dx[start:stop] if need_dx else dx, part)
            partials[index] = part

    # chunks that depend on n alone, and their kernel gradients summed in chunk
    # order: the same bits whatever the number of threads and whichever ends first
    run_chunks(work, _chunks(n))
    dw = partials[0]
    for index in range(1, len(partials)):
        dw += partials[index]
    return (dx if need_dx else None), dw, db
