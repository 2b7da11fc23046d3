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
one core (2026-12-02, 2-core Xeon with AVX-512, caches warm): with the
transforms' matrices read at run time, input transform 0.25-0.41 ms, the 36
products 0.26 ms, output transform 0.40 ms; with F(4x4)'s entries written
into the arithmetic (below), 0.09, 0.22 and 0.13 ms; the backward pass's
transforms went from 0.41 to 0.16 ms (gradient) and to 0.10 ms (adjoint).
The products are now the larger part.

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


# ---------------------------------------------------------------- numba kernels, any tile size
# Each transform is two small matrix products, rows then columns, written as
# plain index loops (no slices: a slice inside a hot loop costs a view each
# time) whose innermost runs over the channels, contiguous in NHWC, so the
# compiler vectorizes it; zero coefficients are skipped. These read the
# matrices at run time, so they serve any F(m x m, 3x3); the layers run F(4x4)
# through the written-out kernels further down, which these check.

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
def input_transform_generic(xp, th, tw, bt, v):
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
def input_transform_adjoint_generic(v, th, tw, bt, dxp):
    """The adjoint of :func:`input_transform_generic`: ``B dV B^T`` of every tile of
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
def output_transform_generic(mm, at, bias, relu, th, tw, out, zero_window):
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
def gradient_transform_generic(dout, at, th, tw, e):
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


# ---------------------------------------------------------------- F(4x4, 3x3) written out
# The same four transforms for F(4x4, 3x3) with the matrices' entries written
# into the arithmetic (shared sums computed once), which the compiler can then
# vectorize and schedule; the run-time coefficient loops above spend most of
# their time on loop overhead and on re-reading partial sums.
#
# Each is cut in two passes, as the matrices are separable:
# * a "band" pass over a whole row of tiles at once, along the height: its
#   loops run over width x channels contiguous values (hundreds to thousands),
#   long enough for wide SIMD;
# * a per-tile pass along the width, over the channels.
#
# Why these formulas: B^T's rows are 4d0 - 5d2 + d4, -4(d1 + d2) + d3 + d4,
# 4(d1 - d2) - d3 + d4, (d4 - d2) -+ 2(d1 - d3), 4d1 - 5d3 + d5; A^T's rows
# are m0 + (m1 + m2) + (m3 + m4), (m1 - m2) + 2(m3 - m4), (m1 + m2) + 4(m3 + m4),
# (m1 - m2) + 8(m3 - m4) + m5 (F4 above). tests/test_kernels.py checks each
# against the generic kernel with the matrices.

@njit(cache=True, nogil=True)
def _input_transform_f4(xp, th, tw, v):
    n, hp, wp, c = xp.shape
    band = xp.reshape(n, hp, wp * c)
    r = np.empty((6, wp, c), dtype=xp.dtype)  # B^T d for the six rows of a band of tiles
    rf = r.reshape(6, wp * c)
    four, five, two = xp.dtype.type(4), xp.dtype.type(5), xp.dtype.type(2)
    for img in range(n):
        for ti in range(th):
            y = 4 * ti
            d0, d1, d2 = band[img, y], band[img, y + 1], band[img, y + 2]
            d3, d4, d5 = band[img, y + 3], band[img, y + 4], band[img, y + 5]
            for e in range(wp * c):  # down the columns: B^T d
                a = d4[e] - d2[e]
                b = d1[e] - d3[e]
                rf[0, e] = four * d0[e] - five * d2[e] + d4[e]
                rf[1, e] = d3[e] + d4[e] - four * (d1[e] + d2[e])
                rf[2, e] = d4[e] - d3[e] + four * (d1[e] - d2[e])
                rf[3, e] = a - two * b
                rf[4, e] = a + two * b
                rf[5, e] = four * d1[e] - five * d3[e] + d5[e]
            for tj in range(tw):  # along each tile's rows: (B^T d) B
                t = (img * th + ti) * tw + tj
                x = 4 * tj
                for i in range(6):
                    k = 6 * i
                    for ch in range(c):
                        v[k, t, ch] = four * r[i, x, ch] - five * r[i, x + 2, ch] + r[i, x + 4, ch]
                    for ch in range(c):
                        v[k + 1, t, ch] = r[i, x + 3, ch] + r[i, x + 4, ch] - four * (r[i, x + 1, ch] + r[i, x + 2, ch])
                    for ch in range(c):
                        v[k + 2, t, ch] = r[i, x + 4, ch] - r[i, x + 3, ch] + four * (r[i, x + 1, ch] - r[i, x + 2, ch])
                    for ch in range(c):
                        v[k + 3, t, ch] = r[i, x + 4, ch] - r[i, x + 2, ch] - two * (r[i, x + 1, ch] - r[i, x + 3, ch])
                    for ch in range(c):
                        v[k + 4, t, ch] = r[i, x + 4, ch] - r[i, x + 2, ch] + two * (r[i, x + 1, ch] - r[i, x + 3, ch])
                    for ch in range(c):
                        v[k + 5, t, ch] = four * r[i, x + 1, ch] - five * r[i, x + 3, ch] + r[i, x + 5, ch]
    return v


@njit(cache=True, nogil=True)
def _input_transform_adjoint_f4(v, th, tw, dxp):
    n, hp, wp, c = dxp.shape
    band = dxp.reshape(n, hp, wp * c)
    h = np.empty((6, wp, c), dtype=dxp.dtype)  # dV B^T for the six rows of a band, tiles added up
    hf = h.reshape(6, wp * c)
    four, five, two = dxp.dtype.type(4), dxp.dtype.type(5), dxp.dtype.type(2)
    dxp[:] = 0
    for img in range(n):
        for ti in range(th):
            hf[:] = 0
            for tj in range(tw):  # along the rows: dV B^T, overlapping tiles add up
                t = (img * th + ti) * tw + tj
                x = 4 * tj
                for i in range(6):
                    k = 6 * i
                    for ch in range(c):
                        h[i, x, ch] += four * v[k, t, ch]
                    for ch in range(c):
                        h[i, x + 1, ch] += (four * (v[k + 5, t, ch] - v[k + 1, t, ch] + v[k + 2, t, ch])
                                            - two * (v[k + 3, t, ch] - v[k + 4, t, ch]))
                    for ch in range(c):
                        h[i, x + 2, ch] -= (five * v[k, t, ch] + four * (v[k + 1, t, ch] + v[k + 2, t, ch])
                                            + (v[k + 3, t, ch] + v[k + 4, t, ch]))
                    for ch in range(c):
                        h[i, x + 3, ch] += (v[k + 1, t, ch] - v[k + 2, t, ch] + two * (v[k + 3, t, ch] - v[k + 4, t, ch])
                                            - five * v[k + 5, t, ch])
                    for ch in range(c):
                        h[i, x + 4, ch] += (v[k, t, ch] + (v[k + 1, t, ch] + v[k + 2, t, ch])
                                            + (v[k + 3, t, ch] + v[k + 4, t, ch]))
                    for ch in range(c):
                        h[i, x + 5, ch] += v[k + 5, t, ch]
            y = 4 * ti
            d0, d1, d2 = band[img, y], band[img, y + 1], band[img, y + 2]
            d3, d4, d5 = band[img, y + 3], band[img, y + 4], band[img, y + 5]
            # down the columns: B (dV B^T), overlapping bands add up; a row a loop
            for e in range(wp * c):
                d0[e] += four * hf[0, e]
            for e in range(wp * c):
                d1[e] += four * (hf[5, e] - hf[1, e] + hf[2, e]) - two * (hf[3, e] - hf[4, e])
            for e in range(wp * c):
                d2[e] -= five * hf[0, e] + four * (hf[1, e] + hf[2, e]) + (hf[3, e] + hf[4, e])
            for e in range(wp * c):
                d3[e] += hf[1, e] - hf[2, e] + two * (hf[3, e] - hf[4, e]) - five * hf[5, e]
            for e in range(wp * c):
                d4[e] += hf[0, e] + (hf[1, e] + hf[2, e]) + (hf[3, e] + hf[4, e])
            for e in range(wp * c):
                d5[e] += hf[5, e]
    return dxp


@njit(cache=True, nogil=True)
def _output_transform_f4(mm, bias, relu, th, tw, out, zero_window):
    n, oh, ow, c = out.shape
    flat = mm.reshape(36, mm.shape[1] * c)
    s = np.empty((4, 6, tw, c), dtype=out.dtype)  # A^T M for a band of tiles
    sf = s.reshape(4, 6, tw * c)
    zero, two, four, eight = out.dtype.type(0), out.dtype.type(2), out.dtype.type(4), out.dtype.type(8)
    for img in range(n):
        for ti in range(th):
            start = (img * th + ti) * tw * c
            stop = start + tw * c
            for q in range(6):  # down the columns: A^T M, every tile of the band at once
                # (views indexed by the loop's own counter: the compiler then knows
                # the reads are consecutive, and vectorizes)
                m0, m1, m2 = flat[q, start:stop], flat[6 + q, start:stop], flat[12 + q, start:stop]
                m3, m4, m5 = flat[18 + q, start:stop], flat[24 + q, start:stop], flat[30 + q, start:stop]
                for e in range(tw * c):
                    s12 = m1[e] + m2[e]
                    d12 = m1[e] - m2[e]
                    s34 = m3[e] + m4[e]
                    d34 = m3[e] - m4[e]
                    sf[0, q, e] = m0[e] + s12 + s34
                    sf[1, q, e] = d12 + two * d34
                    sf[2, q, e] = s12 + four * s34
                    sf[3, q, e] = d12 + eight * d34 + m5[e]
            for tj in range(tw):  # along the rows: (A^T M) A, plus the bias
                x = 4 * tj
                cols = min(4, ow - x)
                for i in range(min(4, oh - 4 * ti)):
                    y = 4 * ti + i
                    row = out[img, y]
                    # one output column a loop: a loop storing to several places at once
                    # is not vectorized (the compiler cannot rule out that they overlap)
                    for ch in range(c):
                        value = bias[ch] + (s[i, 0, tj, ch] + (s[i, 1, tj, ch] + s[i, 2, tj, ch])
                                            + (s[i, 3, tj, ch] + s[i, 4, tj, ch]))
                        row[x, ch] = max(value, zero) if relu else value
                    if cols > 1:
                        for ch in range(c):
                            value = bias[ch] + ((s[i, 1, tj, ch] - s[i, 2, tj, ch])
                                                + two * (s[i, 3, tj, ch] - s[i, 4, tj, ch]))
                            row[x + 1, ch] = max(value, zero) if relu else value
                    if cols > 2:
                        for ch in range(c):
                            value = bias[ch] + ((s[i, 1, tj, ch] + s[i, 2, tj, ch])
                                                + four * (s[i, 3, tj, ch] + s[i, 4, tj, ch]))
                            row[x + 2, ch] = max(value, zero) if relu else value
                    if cols > 3:
                        for ch in range(c):
                            value = bias[ch] + ((s[i, 1, tj, ch] - s[i, 2, tj, ch])
                                                + eight * (s[i, 3, tj, ch] - s[i, 4, tj, ch]) + s[i, 5, tj, ch])
                            row[x + 3, ch] = max(value, zero) if relu else value
                    for j in range(cols):
                        if zero_window[img, y, x + j]:  # exactly the bias, as the direct sum
                            for ch in range(c):
                                row[x + j, ch] = max(bias[ch], zero) if relu else bias[ch]
    return out


@njit(cache=True, nogil=True)
def _gradient_transform_f4(dout, th, tw, e):
    n, oh, ow, c = dout.shape
    width = 4 * tw  # whole tiles: the columns past ``ow`` stay zero
    band = dout.reshape(n, oh, ow * c)
    r = np.zeros((6, width, c), dtype=dout.dtype)  # A g for the six rows of a band of tiles
    rf = r.reshape(6, width * c)
    none = np.zeros(ow * c, dtype=dout.dtype)  # rows past the output's bottom edge
    two, four, eight = dout.dtype.type(2), dout.dtype.type(4), dout.dtype.type(8)
    for img in range(n):
        for ti in range(th):
            y = 4 * ti
            g0 = band[img, y]
            g1 = band[img, y + 1] if y + 1 < oh else none
            g2 = band[img, y + 2] if y + 2 < oh else none
            g3 = band[img, y + 3] if y + 3 < oh else none
            for k in range(ow * c):  # down the columns: A g
                s02 = g0[k] + g2[k]
                s13 = g1[k] + g3[k]
                t02 = g0[k] + four * g2[k]
                t13 = two * g1[k] + eight * g3[k]
                rf[0, k] = g0[k]
                rf[1, k] = s02 + s13
                rf[2, k] = s02 - s13
                rf[3, k] = t02 + t13
                rf[4, k] = t02 - t13
                rf[5, k] = g3[k]
            for tj in range(tw):  # along the rows: (A g) A^T
                t = (img * th + ti) * tw + tj
                x = 4 * tj
                for i in range(6):
                    k = 6 * i
                    for ch in range(c):
                        e[k, t, ch] = r[i, x, ch]
                    for ch in range(c):
                        e[k + 1, t, ch] = (r[i, x, ch] + r[i, x + 2, ch]) + (r[i, x + 1, ch] + r[i, x + 3, ch])
                    for ch in range(c):
                        e[k + 2, t, ch] = (r[i, x, ch] + r[i, x + 2, ch]) - (r[i, x + 1, ch] + r[i, x + 3, ch])
                    for ch in range(c):
                        e[k + 3, t, ch] = (r[i, x, ch] + four * r[i, x + 2, ch]) + (two * r[i, x + 1, ch] + eight * r[i, x + 3, ch])
                    for ch in range(c):
                        e[k + 4, t, ch] = (r[i, x, ch] + four * r[i, x + 2, ch]) - (two * r[i, x + 1, ch] + eight * r[i, x + 3, ch])
                    for ch in range(c):
                        e[k + 5, t, ch] = r[i, x + 3, ch]
    return e


# ---------------------------------------------------------------- what the layers call
def _is_f4(matrix):
    """Whether B^T (a, a) or A^T (m, a) is F(4x4, 3x3)'s: a = 6."""
    return matrix.shape[1] == 6


def input_transform(xp, th, tw, bt, v):
    """``B^T d B`` of every a x a tile d of ``xp`` into ``v`` (a*a, n*th*tw, c);
    see :func:`input_transform_generic`. F(4x4) runs the written-out kernel."""
    if _is_f4(bt):
        return _input_transform_f4(xp, th, tw, v)
    return input_transform_generic(xp, th, tw, bt, v)


def input_transform_adjoint(v, th, tw, bt, dxp):
    """The adjoint of :func:`input_transform` into ``dxp``; see :func:`input_transform_adjoint_generic`."""
    if _is_f4(bt):
        return _input_transform_adjoint_f4(v, th, tw, dxp)
    return input_transform_adjoint_generic(v, th, tw, bt, dxp)


def output_transform(mm, at, bias, relu, th, tw, out, zero_window):
    """``A^T M A`` + bias (+ ReLU) into ``out``; see :func:`output_transform_generic`."""
    if _is_f4(at):
        return _output_transform_f4(mm, bias, relu, th, tw, out, zero_window)
    return output_transform_generic(mm, at, bias, relu, th, tw, out, zero_window)


def gradient_transform(dout, at, th, tw, e):
    """``A g A^T`` of every m x m tile of ``dout`` into ``e``; see :func:`gradient_transform_generic`."""
    if _is_f4(at):
        return _gradient_transform_f4(dout, th, tw, e)
    return gradient_transform_generic(dout, at, th, tw, e)
