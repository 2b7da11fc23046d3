"""Affine transforms of NHWC images (the geometric augmentations: translation,
rotation, zoom), as TensorFlow's ``ImageProjectiveTransformV3``, which Keras
3's ``ops.image.affine_transform`` runs.

Each image has a transform ``[a0, a1, a2, b0, b1, b2, c0, c1]`` that maps an
output pixel (x, y) (column, row) to the input point::

    k = c0 * x + c1 * y + 1
    x_in = (a0 * x + a1 * y + a2) / k,   y_in = (b0 * x + b1 * y + b2) / k

That point is first brought inside the image by the fill mode, along each axis
of length L:

* 'reflect': mirrored about the edge pixels' outer sides (d c b a | a b c d | d c b a);
* 'wrap': the image tiled (a b c d | a b c d | a b c d);
* 'nearest': clamped to [0, L - 1] (the edge pixel repeated);
* 'constant': left as it is; a neighbour outside the image reads ``fill_value``.

Then it is read bilinearly: the four pixels around it, weighted by
(1 - fx)(1 - fy), fx (1 - fy), (1 - fx) fy and fx fy (fx, fy the fractional
parts), or, with ``interpolation='nearest'``, the pixel it rounds to.

For a fixed transform the output is linear in the image (plus the fill value's
constant term): ``out = S x + f``, S a sparse matrix of those weights. The
input gradient is its adjoint, ``dx = S^T dout``: every output cell's gradient
sent back to the (at most four) input pixels it read, with the same weights.

Pure functions: ``affine_forward(x, transforms, ...) -> (out, cache)`` and
``affine_backward(dout, cache) -> dx``; ``impl='numpy'`` is the twin (the
same weights computed for all cells at once by array arithmetic).
"""
import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .parallel import image_chunks, run_chunks

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")
IMPLS = ("numba", "numpy")


class AffineCache(NamedTuple):
    transforms: np.ndarray   # (n, 8), float32 as TensorFlow takes them
    shape: tuple             # the images' shape
    fill_mode: int           # index into FILL_MODES
    nearest: bool            # interpolation == 'nearest'
    impl: str


# ---------------------------------------------------------------- the coordinate maps
@njit(cache=True, nogil=True)
def _map(coord, length, mode):
    """One input coordinate brought inside [0, length - 1] by the fill mode
    (0 reflect, 1 wrap, 2 constant: unchanged, 3 nearest)."""
    if mode == 2:
        return coord
    if mode == 0:
        if coord < 0:
            if length <= 1:
                coord = 0.0
            else:
                size = 2 * length
                if coord < -size:
                    coord = size * int(-coord / size) + coord
                coord = coord + size if coord < -length else -coord - 1
        elif coord > length - 1:
            if length <= 1:
                coord = 0.0
            else:
                size = 2 * length
                coord -= size * int(coord / size)
                if coord >= length:
                    coord = size - coord - 1
    elif mode == 1:
        if coord < 0:
            if length <= 1:
                coord = 0.0
            else:
                size = length - 1
                coord += length * (int(-coord / size) + 1)
        elif coord > length - 1:
            if length <= 1:
                coord = 0.0
            else:
                size = length - 1
                coord -= length * int(coord / size)
    return min(max(coord, 0.0), length - 1.0)


@njit(cache=True, nogil=True)
def _source(t, x, y, h, w, mode):
    k = t[6] * x + t[7] * y + 1.0
    if k == 0:
        return False, 0.0, 0.0
    xin = (t[0] * x + t[1] * y + t[2]) / k
    yin = (t[3] * x + t[4] * y + t[5]) / k
    return True, _map(yin, h, mode), _map(xin, w, mode)


@njit(cache=True, nogil=True)
def _forward_into(x, transforms, mode, nearest, fill, out):
    n, h, w, c = x.shape
    for img in range(n):
        t = transforms[img]
        for i in range(h):
            for j in range(w):
                cell = out[img, i, j]
                ok, sy, sx = _source(t, np.float32(j), np.float32(i), h, w, mode)
                if not ok:
                    cell[:] = fill
                    continue
                if nearest:
                    yy, xx = int(round(sy)), int(round(sx))  # TF rounds half away from zero
                    if 0 <= yy < h and 0 <= xx < w:
                        cell[:] = x[img, yy, xx]
                    else:
                        cell[:] = fill
                    continue
                y0, x0 = math.floor(sy), math.floor(sx)
                fy, fx = sy - y0, sx - x0
                cell[:] = 0
                for dy in range(2):
                    yy = int(y0) + dy
                    wy = fy if dy else 1 - fy
                    for dx in range(2):
                        xx = int(x0) + dx
                        wt = wy * (fx if dx else 1 - fx)
                        if 0 <= yy < h and 0 <= xx < w:
                            for ch in range(c):
                                cell[ch] += wt * x[img, yy, xx, ch]
                        else:
                            for ch in range(c):
                                cell[ch] += wt * fill


@njit(cache=True, nogil=True)
def _backward_into(dout, transforms, mode, nearest, dx):
    n, h, w, c = dout.shape
    dx[:] = 0
    for img in range(n):
        t = transforms[img]
        for i in range(h):
            for j in range(w):
                ok, sy, sx = _source(t, np.float32(j), np.float32(i), h, w, mode)
                if not ok:
                    continue
                d = dout[img, i, j]
                if nearest:
                    yy, xx = int(round(sy)), int(round(sx))
                    if 0 <= yy < h and 0 <= xx < w:
                        for ch in range(c):
                            dx[img, yy, xx, ch] += d[ch]
                    continue
                y0, x0 = math.floor(sy), math.floor(sx)
                fy, fx = sy - y0, sx - x0
                for dy in range(2):
                    yy = int(y0) + dy
                    wy = fy if dy else 1 - fy
                    for dxx in range(2):
                        xx = int(x0) + dxx
                        if 0 <= yy < h and 0 <= xx < w:
                            wt = wy * (fx if dxx else 1 - fx)
                            for ch in range(c):
                                dx[img, yy, xx, ch] += wt * d[ch]


# ---------------------------------------------------------------- the NumPy twin
def _weights_numpy(transforms, h, w, mode, nearest):
    """For every output cell, its (up to four) source pixels and weights:
    (rows, cols, weights, valid), each (n, h, w, taps), and ``defined``
    (n, h, w), False where the projection is 0."""
    n = transforms.shape[0]
    t = transforms.astype(np.float32)[:, :, None, None]
    y, x = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    k = t[:, 6] * x + t[:, 7] * y + 1
    defined = k != 0
    k = np.where(defined, k, 1)
    xin = (t[:, 0] * x + t[:, 1] * y + t[:, 2]) / k
    yin = (t[:, 3] * x + t[:, 4] * y + t[:, 5]) / k
    sy = np.vectorize(_map.py_func, otypes=[np.float64])(yin.astype(np.float64), h, mode)
    sx = np.vectorize(_map.py_func, otypes=[np.float64])(xin.astype(np.float64), w, mode)
    if nearest:
        # round half away from zero, as C's round
        rows = (np.sign(sy) * np.floor(np.abs(sy) + 0.5)).astype(np.int64)[..., None]
        cols = (np.sign(sx) * np.floor(np.abs(sx) + 0.5)).astype(np.int64)[..., None]
        weights = np.ones(rows.shape)
    else:
        y0, x0 = np.floor(sy), np.floor(sx)
        fy, fx = sy - y0, sx - x0
        rows = np.stack([y0, y0, y0 + 1, y0 + 1], axis=-1).astype(np.int64)
        cols = np.stack([x0, x0 + 1, x0, x0 + 1], axis=-1).astype(np.int64)
        weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    assert defined.shape == (n, h, w)
    return rows, cols, weights, valid, defined


def _forward_numpy(x, transforms, mode, nearest, fill):
    n, h, w, c = x.shape
    rows, cols, weights, valid, defined = _weights_numpy(transforms, h, w, mode, nearest)
    images = np.arange(n)[:, None, None, None]
    values = x[images, np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)]  # (n, h, w, taps, c)
    values = np.where(valid[..., None], values, fill)
    out = (values * weights[..., None]).sum(axis=3)
    return np.where(defined[..., None], out, fill).astype(x.dtype)


def _backward_numpy(dout, transforms, mode, nearest):
    n, h, w, c = dout.shape
    rows, cols, weights, valid, defined = _weights_numpy(transforms, h, w, mode, nearest)
    dx = np.zeros(dout.shape, dtype=np.float64)
    images = np.broadcast_to(np.arange(n)[:, None, None, None], rows.shape)
    keep = valid & defined[..., None]
    contributions = dout[:, :, :, None, :] * weights[..., None]  # (n, h, w, taps, c)
    np.add.at(dx, (images[keep], rows[keep], cols[keep]), contributions[keep])
    return dx.astype(dout.dtype)


# ---------------------------------------------------------------- public API
def affine_forward(x, transforms, fill_mode="reflect", fill_value=0.0, interpolation="bilinear", impl="numba"):
    """x (n, h, w, c) through one transform per image (n, 8) -> (out, cache)."""
    if fill_mode not in FILL_MODES or interpolation not in INTERPOLATIONS or impl not in IMPLS:
        raise ValueError(f"fill_mode {fill_mode!r}, interpolation {interpolation!r}, impl {impl!r}: "
                         f"expected one of {FILL_MODES}, {INTERPOLATIONS}, {IMPLS}")
    transforms = np.ascontiguousarray(transforms, dtype=np.float32).reshape(x.shape[0], 8)
    mode, nearest = FILL_MODES.index(fill_mode), interpolation == "nearest"
    fill = x.dtype.type(fill_value)
    if impl == "numpy":
        out = _forward_numpy(x, transforms, mode, nearest, fill)
    else:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)

        def work(group):
            for _, start, stop in group:
                _forward_into(x[start:stop], transforms[start:stop], mode, nearest, fill, out[start:stop])

        run_chunks(work, image_chunks(x.shape[0], max(1, -(-x.shape[0] // 8))))
    return out, AffineCache(transforms, x.shape, mode, nearest, impl)


def affine_backward(dout, cache):
    """The adjoint: dout (n, h, w, c) -> dx, each output cell's gradient sent
    back to the pixels it read, with their weights."""
    transforms, _, mode, nearest, impl = cache
    if impl == "numpy":
        return _backward_numpy(dout, transforms, mode, nearest)
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)

    def work(group):
        for _, start, stop in group:
            _backward_into(dout[start:stop], transforms[start:stop], mode, nearest, dx[start:stop])

    run_chunks(work, image_chunks(dout.shape[0], max(1, -(-dout.shape[0] // 8))))
    return dx
