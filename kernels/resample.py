"""Resampling NHWC images: nearest-neighbour repetition and bilinear
interpolation, each with its adjoint (the gradient).

Bilinear resizing is linear and separable: along each spatial axis every
output row is a weighted sum of at most two input rows, so the whole resize is
``out = A_h @ x @ A_w^T`` per image and channel, with ``A`` an (out, in)
matrix of interpolation weights. Its gradient is the same product with the
matrices transposed: ``dx = A_h^T @ dout @ A_w``. The weights are
TensorFlow's (``tf.image.resize``, which Keras 3's ``UpSampling2D`` and
``Resizing`` call) with half-pixel centres: output cell ``o`` samples the
input at ``(o + 0.5) * in / out - 0.5``, clamped to the edges, and takes
``1 - f`` of the row below that point and ``f`` of the row above.

Nearest-neighbour upsampling by whole factors repeats every pixel in a
``size`` block; its gradient sums each block.

Pure functions: ``*_forward(x, ...) -> (out, cache)``, ``*_backward(dout,
cache)``; :func:`bilinear_reference` is the readable twin, one output cell at
a time from its four neighbours, that the tests compare the products with.
"""
import math
from typing import NamedTuple

import numpy as np


class ResizeCache(NamedTuple):
    rows: np.ndarray   # (out_h, in_h) interpolation weights
    cols: np.ndarray   # (out_w, in_w)


def bilinear_weights(size, out_size, dtype=np.float64):
    """The (out_size, size) matrix of half-pixel bilinear weights along one axis."""
    a = np.zeros((out_size, size), dtype=np.float64)
    scale = size / out_size
    for o in range(out_size):
        point = max((o + 0.5) * scale - 0.5, 0.0)
        low = min(int(math.floor(point)), size - 1)
        high = min(low + 1, size - 1)
        frac = point - low
        a[o, low] += 1.0 - frac
        a[o, high] += frac
    return a.astype(dtype)


def nearest_weights(size, out_size, dtype=np.float64):
    """The (out_size, size) matrix of TensorFlow's half-pixel nearest
    neighbours: output cell o copies input cell min(floor((o + 0.5) * size /
    out_size), size - 1)."""
    a = np.zeros((out_size, size), dtype=dtype)
    source = np.minimum(np.floor((np.arange(out_size) + 0.5) * (size / out_size)).astype(np.int64), size - 1)
    a[np.arange(out_size), source] = 1
    return a


def resize_forward(x, out_h, out_w, interpolation="bilinear"):
    """x (n, h, w, c) resized to (n, out_h, out_w, c) as tf.image.resize
    (no antialiasing), 'bilinear' or 'nearest', and the cache of weights."""
    weights = bilinear_weights if interpolation == "bilinear" else nearest_weights
    rows, cols = weights(x.shape[1], out_h, x.dtype), weights(x.shape[2], out_w, x.dtype)
    return _apply(x, rows, cols), ResizeCache(rows, cols)


def aspect_box(h, w, out_h, out_w):
    """(top, left, height, width) of the largest centred region of an h x w
    image with the aspect ratio out_h : out_w, as Keras computes it for
    ``crop_to_aspect_ratio`` and ``smart_resize`` (integer truncation, at
    least one pixel)."""
    crop_h = max(min(h, int(float(w * out_h) / out_w)), 1)
    crop_w = max(min(w, int(float(h * out_w) / out_h)), 1)
    return int(float(h - crop_h) / 2), int(float(w - crop_w) / 2), crop_h, crop_w


def crop_resize_forward(x, box, out_h, out_w, interpolation="bilinear"):
    """The region ``box = (top, left, height, width)`` of each image resized
    to (out_h, out_w) as tf.image.resize: the resize's weight matrices
    written into the region's columns (zero elsewhere), so one pair of
    products crops and resizes, and :func:`resize_backward` (their
    transposes) is the gradient."""
    top, left, crop_h, crop_w = box
    if top < 0 or left < 0 or top + crop_h > x.shape[1] or left + crop_w > x.shape[2]:
        raise ValueError(f"crop box {tuple(box)} is outside the {x.shape[1]} x {x.shape[2]} image")
    weights = bilinear_weights if interpolation == "bilinear" else nearest_weights
    rows = np.zeros((out_h, x.shape[1]), x.dtype)
    cols = np.zeros((out_w, x.shape[2]), x.dtype)
    rows[:, top:top + crop_h] = weights(crop_h, out_h, x.dtype)
    cols[:, left:left + crop_w] = weights(crop_w, out_w, x.dtype)
    return _apply(x, rows, cols), ResizeCache(rows, cols)


def bilinear_forward(x, out_h, out_w):
    """x (n, h, w, c) -> (n, out_h, out_w, c), and the cache of weights."""
    rows = bilinear_weights(x.shape[1], out_h, x.dtype)
    cols = bilinear_weights(x.shape[2], out_w, x.dtype)
    return _apply(x, rows, cols), ResizeCache(rows, cols)


def _apply(x, rows, cols):
    out = np.einsum("oh,nhwc->nowc", rows, x, optimize=True)
    out = np.einsum("pw,nowc->nopc", cols, out, optimize=True)
    return np.ascontiguousarray(out)


def bilinear_backward(dout, cache):
    """The adjoint of a resize by matrices: ``A_h^T dout A_w``."""
    rows, cols = cache
    dx = np.einsum("pw,nopc->nowc", cols, dout, optimize=True)
    return np.ascontiguousarray(np.einsum("oh,nowc->nhwc", rows, dx, optimize=True))


resize_backward = bilinear_backward


def bilinear_reference(x, out_h, out_w):
    """The twin: each output cell from its four neighbours, by the formula."""
    n, h, w, c = x.shape
    out = np.empty((n, out_h, out_w, c), dtype=x.dtype)

    def source(o, size, out_size):
        point = max((o + 0.5) * size / out_size - 0.5, 0.0)
        low = min(int(math.floor(point)), size - 1)
        return low, min(low + 1, size - 1), point - low

    for i in range(out_h):
        y0, y1, fy = source(i, h, out_h)
        for j in range(out_w):
            x0, x1, fx = source(j, w, out_w)
            top = x[:, y0, x0] * (1 - fx) + x[:, y0, x1] * fx
            bottom = x[:, y1, x0] * (1 - fx) + x[:, y1, x1] * fx
            out[:, i, j] = top * (1 - fy) + bottom * fy
    return out


def nearest_forward(x, size):
    """Each pixel repeated in a (size_h, size_w) block."""
    sh, sw = size
    n, h, w, c = x.shape
    out = np.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c)).reshape(n, h * sh, w * sw, c)
    return np.ascontiguousarray(out), tuple(size)


def nearest_backward(dout, cache):
    sh, sw = cache
    n, oh, ow, c = dout.shape
    return dout.reshape(n, oh // sh, sh, ow // sw, sw, c).sum(axis=(2, 4))
