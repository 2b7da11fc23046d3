"""Winograd convolution F(m x m, 3x3): a 3x3, stride-1 convolution with fewer multiplications.

im2col spends 9 multiplications per output value and channel pair. Winograd's
minimal filtering (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016) computes an m x m block of outputs from an a x a block of
input, a = m + 2, with a*a multiplications per channel pair:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise)

with g the 3x3 kernel, d the input tile and the constant matrices below.
F(2x2, 3x3) does 16 multiplications for 4 outputs (2.25x fewer than 36);
F(4x4, 3x3) does 36 for 16 (4x fewer than 144). Summed over input channels,
the a*a elementwise products become a*a matrix products
(tiles x cin) @ (cin x cout): that is where the time goes.

The price is rounding: F(2x2)'s matrices hold only 0, +-1 and +-1/2, so it
rounds about like the direct sum; F(4x4)'s hold 4, 5, 8, 1/6, 1/24 ..., and
in float32 its results differ from the exact ones by ~5e-6 of the largest
value instead of ~5e-7 for im2col (the chapter's second layer; measured
against float64). In float64 both agree with the direct sum to ~1e-13.

Where the time goes, per chunk of 4 images of the chapter's second layer on
one core: input transform 0.19 ms, the 36 products 0.19 ms, output transform
0.20 ms, against 0.88 ms for im2col and its one product. The transforms are
now the larger part: making them cheaper is the next step.

All three passes of a layer use the same three matrices:

* forward: tiles of ``x`` and of the kernel, products, output transform;
* input gradient: the forward pass read backwards (its adjoint): the tiles
  of ``dout`` transformed by ``A`` (as for the weight gradient), times the
  transformed kernel transposed, then ``B dV B^T`` added back where each
  input tile was read from (tiles overlap, so gradients add up);
* weight gradient: the products of the input tiles with the tiles of
  ``dout`` (transformed by ``A``), summed over all tiles, give
  ``G^T M G`` = the 3x3 kernel gradient. This is the adjoint of the forward
  formula: sum_k dW_k g_k = sum_a dout_a y_a.

Shapes (``th x tw`` tiles per image, ``t = n * th * tw``, ``a = m + 2``)::

    x        : (n, h, w, cin)          dout  : (n, oh, ow, cout)
    kernel   : (3, 3, cin, cout)       U     : (a*a, cin, cout)
    V (input tiles)     : (a*a, t, cin)
    M (tile products)   : (a*a, t, cout)

``pad_top``/``pad_left`` and ``oh``/``ow`` are as in :mod:`kernels.im2col`:
output (i, j) reads input rows ``i - pad_top .. i - pad_top + 2``; cells
outside the input are zeros.
"""
from collections import namedtuple

import numpy as np
from numba import njit

Transform = namedtuple("Transform", "m BT G AT")

# F(2x2, 3x3), interpolation points 0, 1, -1 and infinity
F2 = Transform(
    2,
    np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64),
    np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]], dtype=np.float64),
    np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64),
)
# F(4x4, 3x3), points 0, 1, -1, 2, -2 and infinity
F4 = Transform(
    4,
    np.array([[4, 0, -5, 0, 1, 0],
              [0, -4, -4, 1, 1, 0],
              [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0],
              [0, 2, -1, -2, 1, 0],
              [0, 4, 0, -5, 0, 1]], dtype=np.float64),
    np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], dtype=np.float64),
    np.array([[1, 1, 1, 1, 1, 0],
              [0, 1, -1, 2, -2, 0],
              [0, 1, 1, 4, 4, 0],
              [0, 1, -1, 8, -8, 1]], dtype=np.float64),
)
TRANSFORMS = {2: F2, 4: F4}


def tiles(oh, ow, m):
    """Number of m x m output tiles down and across."""
    return -(-oh // m), -(-ow // m)


def kernel_transform(w, f):
    """``G g G^T`` for every channel pair: (3, 3, cin, cout) -> (a*a, cin, cout),
    summed in float64 (the kernel is small; its transform's rounding is not)."""
    u = np.empty((f.m + 2, f.m + 2, *w.shape[2:]), dtype=np.float64)
    _sandwich(f.G, w.astype(np.float64), u)
    return u.reshape(-1, *w.shape[2:]).astype(w.dtype)


def kernel_gradient_from_products(m, f, dtype):
    """``G^T M G``: the summed tile products (a*a, cin, cout) -> dW (3, 3, cin, cout)."""
    a = f.m + 2
    dw = np.empty((3, 3, *m.shape[1:]), dtype=np.float64)
    _sandwich(np.ascontiguousarray(f.G.T), m.astype(np.float64).reshape(a, a, *m.shape[1:]), dw)
    return dw.astype(dtype)


@njit(cache=True, nogil=True)
def _sandwich(left, g, out):
    """out[i, j] = sum_ab left[i, a] g[a, b] left[j, b] for every channel pair:
    ``left g left^T`` over the first two axes of g (p, p, cin, cout)."""
    r, p = left.shape
    _, _, cin, cout = g.shape
    half = np.zeros((r, p, cin, cout), dtype=g.dtype)
    for i in range(r):
        for a in range(p):
            coef = left[i, a]
            if coef != 0:
                for b in range(p):
                    for c in range(cin):
                        for o in range(cout):
                            half[i, b, c, o] += coef * g[a, b, c, o]
    out[:] = 0
    for i in range(r):
        for j in range(r):
            for b in range(p):
                coef = left[j, b]
                if coef != 0:
                    for c in range(cin):
                        for o in range(cout):
                            out[i, j, c, o] += coef * half[i, b, c, o]
    return out


# ---------------------------------------------------------------- NumPy twin
def _padded_tiles(a, pad_top, pad_left, th, tw, size, stride):
    """The (size x size) tiles of ``a`` (n, h, w, c) at ``stride``, zeros outside:
    (n, th, tw, size, size, c)."""
    n, h, w, c = a.shape
    hp, wp = stride * (th - 1) + size, stride * (tw - 1) + size
    ap = np.zeros((n, hp, wp, c), dtype=a.dtype)
    rows, cols = min(h, hp - pad_top), min(w, wp - pad_left)
    ap[:, pad_top:pad_top + rows, pad_left:pad_left + cols] = a[:, :rows, :cols]
    win = np.lib.stride_tricks.sliding_window_view(ap, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return win.transpose(0, 1, 2, 4, 5, 3)


def winograd_forward_numpy(x, w, pad_top, pad_left, oh, ow, f=F4):
    """The convolution (no bias) by the formula above, whole batch at once."""
    m = f.m
    th, tw = tiles(oh, ow, m)
    d = _padded_tiles(x, pad_top, pad_left, th, tw, m + 2, m)
    v = np.einsum("ia,ntuabc,jb->ijntuc", f.BT, d, f.BT)
    u = kernel_transform(w, f).reshape(m + 2, m + 2, *w.shape[2:])
    y = np.einsum("pi,ijntuc,ijco,qj->ntpuqo", f.AT, v, u, f.AT)  # (n, th, m, tw, m, cout)
    n, cout = x.shape[0], w.shape[3]
    return y.reshape(n, m * th, m * tw, cout)[:, :oh, :ow].astype(np.result_type(x, w))


def winograd_kernel_gradient_numpy(x, dout, pad_top, pad_left, f=F4):
    """dW (3, 3, cin, cout) of the convolution, by the adjoint formula."""
    n, oh, ow, cout = dout.shape
    m = f.m
    th, tw = tiles(oh, ow, m)
    v = np.einsum("ia,ntuabc,jb->ijntuc", f.BT, _padded_tiles(x, pad_top, pad_left, th, tw, m + 2, m), f.BT)
    e = _padded_tiles(dout, 0, 0, th, tw, m, m)  # (n, th, tw, m, m, cout), zeros past the edge
    ue = np.einsum("ai,ntuabo,bj->ijntuo", f.AT, e, f.AT)
    products = np.einsum("ijntuc,ijntuo->ijco", v, ue)
    return kernel_gradient_from_products(products.reshape(-1, *products.shape[2:]), f, np.result_type(x, dout))


# ---------------------------------------------------------------- numba kernels
# Each transform is two small matrix products, rows then columns, written as
# plain index loops (no slices: a slice inside a hot loop costs a view each
# time) whose innermost runs over the channels, contiguous in NHWC, so the
# compiler vectorizes it; zero coefficients are skipped.

def padded_shape(n, th, tw, m, c):
    """Shape of the zero-bordered copy of ``n`` images that :func:`input_transform` reads."""
    return (n, m * th + 2, m * tw + 2, c)


def pad_into(x, pad_top, pad_left, xp):
    """Copy ``x`` (n, h, w, c) into ``xp`` (n, hp, wp, c) at (pad_top, pad_left).
    ``xp``'s border must be zeros already (it is scratch that only this writes);
    rows and columns of ``x`` past ``xp``'s edge are never read by a tile."""
    n, h, w, _ = x.shape
    rows, cols = min(h, xp.shape[1] - pad_top), min(w, xp.shape[2] - pad_left)
    xp[:n, pad_top:pad_top + rows, pad_left:pad_left + cols] = x[:, :rows, :cols]
    return xp[:n]


@njit(cache=True, nogil=True)
def input_transform(xp, th, tw, bt, v):
    """``B^T d B`` of every a x a tile d of ``xp`` into ``v`` (a*a, n*th*tw, c).

    ``xp`` (n, m*th + 2, m*tw + 2, c) is the input already padded (see
    :func:`pad_into`): tile (ti, tj) starts at row m*ti, column m*tj.
    ``bt`` is B^T (a, a) in the data's dtype.
    """
    n, _, _, c = xp.shape
    a = bt.shape[0]
    m = a - 2
    rows = np.empty((a, a, c), dtype=xp.dtype)
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                for i in range(a):  # rows: B^T d
                    for q in range(a):
                        for ch in range(c):
                            rows[i, q, ch] = 0
                    for p in range(a):
                        coef = bt[i, p]
                        if coef != 0:
                            for q in range(a):
                                for ch in range(c):
                                    rows[i, q, ch] += coef * xp[img, m * ti + p, m * tj + q, ch]
                for i in range(a):  # columns: (B^T d) B
                    for j in range(a):
                        k = i * a + j
                        for ch in range(c):
                            v[k, t, ch] = 0
                        for q in range(a):
                            coef = bt[j, q]
                            if coef != 0:
                                for ch in range(c):
                                    v[k, t, ch] += coef * rows[i, q, ch]
    return v


@njit(cache=True, nogil=True)
def input_transform_adjoint(v, th, tw, bt, dxp):
    """The adjoint of :func:`input_transform`: ``B dV B^T`` of every tile of
    ``v`` (a*a, n*th*tw, c), added into the zero-bordered gradient ``dxp``
    (n, m*th + 2, m*tw + 2, c) where the tile was read from. Neighbouring
    tiles overlap by two rows and columns, so their gradients add up there,
    as col2im's do for overlapping windows. ``dxp`` is zeroed first."""
    n, _, _, c = dxp.shape
    a = bt.shape[0]
    m = a - 2
    rows = np.empty((a, a, c), dtype=dxp.dtype)
    dxp[:] = 0
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                for i in range(a):  # columns: dV B^T, row i of the tile
                    for q in range(a):
                        for ch in range(c):
                            rows[i, q, ch] = 0
                        for j in range(a):
                            coef = bt[j, q]
                            if coef != 0:
                                for ch in range(c):
                                    rows[i, q, ch] += coef * v[i * a + j, t, ch]
                for p in range(a):  # rows: B (dV B^T), added at the tile's place
                    y = m * ti + p
                    for i in range(a):
                        coef = bt[i, p]
                        if coef != 0:
                            for q in range(a):
                                for ch in range(c):
                                    dxp[img, y, m * tj + q, ch] += coef * rows[i, q, ch]
    return dxp


@njit(cache=True, nogil=True)
def zero_windows(x, pad_top, pad_left, oh, ow, flags):
    """Set ``flags[img, i, j]`` (n, oh, ow) where output (i, j)'s 3x3 window of
    ``x`` (n, h, w, c) holds only zeros (padding counts as zero).

    The direct sum gives exactly the bias there; Winograd's transforms give
    the bias plus rounding noise of either sign. ReLU's kink at 0 and
    max-pool's ties on flat regions (MNIST's background) must fall where
    they fall for im2col and Keras, so :func:`output_transform` writes the
    exact bias at these outputs.
    """
    n, h, w, c = x.shape
    nonzero = np.zeros((h, w), dtype=np.bool_)
    for img in range(n):
        for y in range(h):
            for xx in range(w):
                found = False
                for ch in range(c):  # no early exit: a branch-free loop vectorizes
                    found |= x[img, y, xx, ch] != 0
                nonzero[y, xx] = found
        for i in range(oh):
            for j in range(ow):
                empty = True
                for p in range(3):
                    y = i - pad_top + p
                    if 0 <= y < h:
                        for q in range(3):
                            xx = j - pad_left + q
                            if 0 <= xx < w and nonzero[y, xx]:
                                empty = False
                flags[img, i, j] = empty
    return flags


@njit(cache=True, nogil=True)
def output_transform(mm, at, bias, relu, th, tw, out, zero_window):
    """``A^T M A`` of every tile of ``mm`` (a*a, n*th*tw, c) into ``out`` (n, oh, ow, c),
    plus ``bias`` (c,) (zeros for none), then ReLU if asked; the part of a tile
    past the output's edge is dropped. ``at`` is A^T (m, a).

    ``zero_window`` (n, oh, ow) from :func:`zero_windows` marks the outputs
    that get exactly ``bias``.
    """
    n, oh, ow, c = out.shape
    m, a = at.shape
    rows = np.empty((m, a, c), dtype=out.dtype)
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                for i in range(m):  # rows: A^T M
                    for q in range(a):
                        for ch in range(c):
                            rows[i, q, ch] = 0
                    for p in range(a):
                        coef = at[i, p]
                        if coef != 0:
                            for q in range(a):
                                for ch in range(c):
                                    rows[i, q, ch] += coef * mm[p * a + q, t, ch]
                for i in range(min(m, oh - m * ti)):  # columns: (A^T M) A, inside the output
                    y = m * ti + i
                    for j in range(min(m, ow - m * tj)):
                        xx = m * tj + j
                        for ch in range(c):
                            out[img, y, xx, ch] = bias[ch]
                        if not zero_window[img, y, xx]:  # else exactly the bias, as the direct sum
                            for q in range(a):
                                coef = at[j, q]
                                if coef != 0:
                                    for ch in range(c):
                                        out[img, y, xx, ch] += coef * rows[i, q, ch]
                        if relu:
                            for ch in range(c):
                                out[img, y, xx, ch] = max(out[img, y, xx, ch], 0)
    return out


@njit(cache=True, nogil=True)
def gradient_transform(dout, at, th, tw, e):
    """``A g A^T`` of every m x m tile g of ``dout`` (n, oh, ow, c) into ``e``
    (a*a, n*th*tw, c); cells past the edge count as zeros. ``at`` is A^T (m, a)."""
    n, oh, ow, c = dout.shape
    m, a = at.shape
    rows = np.empty((a, m, c), dtype=dout.dtype)
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                for i in range(a):  # rows: A g, row i = sum_p A^T[p, i] g[p]
                    for q in range(m):
                        for ch in range(c):
                            rows[i, q, ch] = 0
                    for p in range(min(m, oh - m * ti)):
                        coef = at[p, i]
                        if coef != 0:
                            for q in range(min(m, ow - m * tj)):
                                for ch in range(c):
                                    rows[i, q, ch] += coef * dout[img, m * ti + p, m * tj + q, ch]
                for i in range(a):  # columns: (A g) A^T
                    for j in range(a):
                        k = i * a + j
                        for ch in range(c):
                            e[k, t, ch] = 0
                        for q in range(m):
                            coef = at[q, j]
                            if coef != 0:
                                for ch in range(c):
                                    e[k, t, ch] += coef * rows[i, q, ch]
    return e
