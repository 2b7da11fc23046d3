"""Winograd F(2x2, 3x3): the same 3x3, stride-1 convolution with fewer multiplications.

im2col spends 9 multiplications per output value and channel pair. Winograd's
minimal filtering (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016) computes a 2x2 block of outputs from a 4x4 block of input
with 16 multiplications instead of 36 (2.25x fewer):

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise)

with g the 3x3 kernel, d the 4x4 input tile and the constant matrices below.
Their entries are 0, +-1 and +-1/2, so the rounding is about that of the
direct sum. Summed over input channels, the 16 elementwise products become 16
matrix products (tiles x cin) @ (cin x cout): that is where the time goes.

All three passes of a layer use the same three matrices:

* forward: tiles of ``x`` and of the kernel, products, output transform;
* input gradient: the forward pass again, on ``dout``, with the kernel turned
  by 180 degrees and its channel axes swapped, and the padding mirrored;
* weight gradient: the products of the input tiles with the tiles of
  ``dout`` (transformed by ``A``), summed over all tiles, give
  ``G^T M G`` = the 3x3 kernel gradient. This is the adjoint of the forward
  formula: sum_k dW_k g_k = sum_a dout_a y_a.

Shapes (``th x tw`` tiles per image, ``t = n * th * tw``)::

    x        : (n, h, w, cin)          dout  : (n, oh, ow, cout)
    kernel   : (3, 3, cin, cout)       U     : (16, cin, cout)
    V (input tiles)     : (16, t, cin)
    M (tile products)   : (16, t, cout)

Measured (``python benchmarks/bench_kernels.py``, 2-core Xeon, OpenBLAS):
the chapter's second convolution (batch 128, 28x28, 32 -> 64 channels) takes
about as long as with im2col, 17 ms forward either way. The 16 products have
only ``cin`` = 32 terms each and run no faster per FLOP than im2col's
288-term product, and the tile transforms move as much memory as the saved
multiplications would have taken. With 64 -> 64 channels Winograd is ~20%
faster; for the first layer (1 input channel) it is 4x slower. So the layers
use im2col, and this path stays for study and for wider layers
(``Conv2D(..., impl='winograd')``).

``pad_top``/``pad_left`` and ``oh``/``ow`` are as in :mod:`kernels.im2col`:
output (i, j) reads input rows ``i - pad_top .. i - pad_top + 2``; cells
outside the input are zeros.
"""
import numpy as np
from numba import njit

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def tiles(oh, ow):
    """Number of 2x2 output tiles down and across."""
    return -(-oh // 2), -(-ow // 2)


def kernel_transform(w):
    """``G g G^T`` for every channel pair: (3, 3, cin, cout) -> (16, cin, cout)."""
    u = np.einsum("ia,abco,jb->ijco", G, w.astype(np.float64), G)
    return u.reshape(16, *w.shape[2:]).astype(w.dtype)


def kernel_gradient_from_products(m, dtype):
    """``G^T M G``: the summed tile products (16, cin, cout) -> dW (3, 3, cin, cout)."""
    m = m.astype(np.float64).reshape(4, 4, *m.shape[1:])
    return np.einsum("ia,ijco,jb->abco", G, m, G).astype(dtype)


def flipped_kernel(w):
    """The kernel of the input gradient: turned 180 degrees, channel axes swapped."""
    return np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))


# ---------------------------------------------------------------- NumPy twin
def _padded_tiles(a, pad_top, pad_left, th, tw, size):
    """The (size x size) tiles of ``a`` (n, h, w, c) at stride 2, zeros outside:
    (n, th, tw, size, size, c)."""
    n, h, w, c = a.shape
    hp, wp = 2 * (th - 1) + size, 2 * (tw - 1) + size
    ap = np.zeros((n, hp, wp, c), dtype=a.dtype)
    rows, cols = min(h, hp - pad_top), min(w, wp - pad_left)
    ap[:, pad_top:pad_top + rows, pad_left:pad_left + cols] = a[:, :rows, :cols]
    win = np.lib.stride_tricks.sliding_window_view(ap, (size, size), axis=(1, 2))[:, ::2, ::2]
    return win.transpose(0, 1, 2, 4, 5, 3)


def winograd_forward_numpy(x, w, pad_top, pad_left, oh, ow):
    """The convolution (no bias) by the formula above, whole batch at once."""
    th, tw = tiles(oh, ow)
    d = _padded_tiles(x, pad_top, pad_left, th, tw, 4)
    v = np.einsum("ia,ntuabc,jb->ijntuc", BT, d, BT)
    m = np.einsum("ijntuc,ijco->ijntuo", v, kernel_transform(w).reshape(4, 4, *w.shape[2:]))
    y = np.einsum("pi,ijntuo,qj->ntpuqo", AT, m, AT)  # (n, th, 2, tw, 2, cout)
    n, cout = x.shape[0], w.shape[3]
    return y.reshape(n, 2 * th, 2 * tw, cout)[:, :oh, :ow].astype(np.result_type(x, w))


def winograd_kernel_gradient_numpy(x, dout, pad_top, pad_left):
    """dW (3, 3, cin, cout) of the convolution, by the adjoint formula."""
    n, oh, ow, cout = dout.shape
    th, tw = tiles(oh, ow)
    v = np.einsum("ia,ntuabc,jb->ijntuc", BT, _padded_tiles(x, pad_top, pad_left, th, tw, 4), BT)
    e = _padded_tiles(dout, 0, 0, th, tw, 2)  # (n, th, tw, 2, 2, cout), zeros past the edge
    ue = np.einsum("ai,ntuabo,bj->ijntuo", AT, e, AT)
    m = np.einsum("ijntuc,ijntuo->ijco", v, ue)
    return kernel_gradient_from_products(m.reshape(16, *m.shape[2:]), np.result_type(x, dout))


# ---------------------------------------------------------------- numba kernels
@njit(cache=True, nogil=True)
def input_transform(x, pad_top, pad_left, th, tw, v):
    """``B^T d B`` of every 4x4 tile of ``x`` (n, h, w, c) into ``v`` (16, n*th*tw, c)."""
    n, h, w, c = x.shape
    d = np.empty((4, 4, c), dtype=x.dtype)
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                for a in range(4):  # gather the tile, zeros outside the image
                    y = 2 * ti - pad_top + a
                    for b in range(4):
                        xx = 2 * tj - pad_left + b
                        if y < 0 or y >= h or xx < 0 or xx >= w:
                            d[a, b, :] = 0
                        else:
                            d[a, b, :] = x[img, y, xx, :]
                for ch in range(c):
                    # rows: B^T d
                    r00 = d[0, 0, ch] - d[2, 0, ch]
                    r01 = d[0, 1, ch] - d[2, 1, ch]
                    r02 = d[0, 2, ch] - d[2, 2, ch]
                    r03 = d[0, 3, ch] - d[2, 3, ch]
                    r10 = d[1, 0, ch] + d[2, 0, ch]
                    r11 = d[1, 1, ch] + d[2, 1, ch]
                    r12 = d[1, 2, ch] + d[2, 2, ch]
                    r13 = d[1, 3, ch] + d[2, 3, ch]
                    r20 = d[2, 0, ch] - d[1, 0, ch]
                    r21 = d[2, 1, ch] - d[1, 1, ch]
                    r22 = d[2, 2, ch] - d[1, 2, ch]
                    r23 = d[2, 3, ch] - d[1, 3, ch]
                    r30 = d[1, 0, ch] - d[3, 0, ch]
                    r31 = d[1, 1, ch] - d[3, 1, ch]
                    r32 = d[1, 2, ch] - d[3, 2, ch]
                    r33 = d[1, 3, ch] - d[3, 3, ch]
                    # columns: (B^T d) B
                    v[0, t, ch] = r00 - r02
                    v[1, t, ch] = r01 + r02
                    v[2, t, ch] = r02 - r01
                    v[3, t, ch] = r01 - r03
                    v[4, t, ch] = r10 - r12
                    v[5, t, ch] = r11 + r12
                    v[6, t, ch] = r12 - r11
                    v[7, t, ch] = r11 - r13
                    v[8, t, ch] = r20 - r22
                    v[9, t, ch] = r21 + r22
                    v[10, t, ch] = r22 - r21
                    v[11, t, ch] = r21 - r23
                    v[12, t, ch] = r30 - r32
                    v[13, t, ch] = r31 + r32
                    v[14, t, ch] = r32 - r31
                    v[15, t, ch] = r31 - r33
    return v


@njit(cache=True, nogil=True)
def output_transform(m, bias, relu, th, tw, out):
    """``A^T M A`` of every tile of ``m`` (16, n*th*tw, c) into ``out``
    (n, oh, ow, c), plus ``bias`` (c,) (pass zeros for none), then ReLU if asked;
    the part of a tile past the output's edge is dropped."""
    n, oh, ow, c = out.shape
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                i, j = 2 * ti, 2 * tj
                for ch in range(c):
                    # rows: A^T m  (row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3)
                    s00 = m[0, t, ch] + m[4, t, ch] + m[8, t, ch]
                    s01 = m[1, t, ch] + m[5, t, ch] + m[9, t, ch]
                    s02 = m[2, t, ch] + m[6, t, ch] + m[10, t, ch]
                    s03 = m[3, t, ch] + m[7, t, ch] + m[11, t, ch]
                    s10 = m[4, t, ch] - m[8, t, ch] - m[12, t, ch]
                    s11 = m[5, t, ch] - m[9, t, ch] - m[13, t, ch]
                    s12 = m[6, t, ch] - m[10, t, ch] - m[14, t, ch]
                    s13 = m[7, t, ch] - m[11, t, ch] - m[15, t, ch]
                    # columns: (A^T m) A
                    y00 = s00 + s01 + s02 + bias[ch]
                    y01 = s01 - s02 - s03 + bias[ch]
                    y10 = s10 + s11 + s12 + bias[ch]
                    y11 = s11 - s12 - s13 + bias[ch]
                    if relu:
                        y00 = max(y00, 0)
                        y01 = max(y01, 0)
                        y10 = max(y10, 0)
                        y11 = max(y11, 0)
                    out[img, i, j, ch] = y00
                    if j + 1 < ow:
                        out[img, i, j + 1, ch] = y01
                    if i + 1 < oh:
                        out[img, i + 1, j, ch] = y10
                        if j + 1 < ow:
                            out[img, i + 1, j + 1, ch] = y11
    return out


@njit(cache=True, nogil=True)
def gradient_transform(dout, th, tw, e):
    """``A e A^T`` of every 2x2 tile of ``dout`` (n, oh, ow, c) into ``e``
    (16, n*th*tw, c); cells past the edge count as zeros."""
    n, oh, ow, c = dout.shape
    zero = np.zeros(1, dtype=dout.dtype)[0]  # a 0 of dout's type: no float64 promotion
    for img in range(n):
        for ti in range(th):
            for tj in range(tw):
                t = (img * th + ti) * tw + tj
                i, j = 2 * ti, 2 * tj
                has_right, has_below = j + 1 < ow, i + 1 < oh
                for ch in range(c):
                    e00 = dout[img, i, j, ch]
                    e01 = dout[img, i, j + 1, ch] if has_right else zero
                    e10 = dout[img, i + 1, j, ch] if has_below else zero
                    e11 = dout[img, i + 1, j + 1, ch] if has_right and has_below else zero
                    # rows: A e, A = [[1, 0], [1, 1], [1, -1], [0, -1]]
                    a0, b0 = e00, e01
                    a1, b1 = e00 + e10, e01 + e11
                    a2, b2 = e00 - e10, e01 - e11
                    a3, b3 = -e10, -e11
                    # columns: (A e) A^T, row q from (aq, bq): aq, aq + bq, aq - bq, -bq
                    e[0, t, ch] = a0
                    e[1, t, ch] = a0 + b0
                    e[2, t, ch] = a0 - b0
                    e[3, t, ch] = -b0
                    e[4, t, ch] = a1
                    e[5, t, ch] = a1 + b1
                    e[6, t, ch] = a1 - b1
                    e[7, t, ch] = -b1
                    e[8, t, ch] = a2
                    e[9, t, ch] = a2 + b2
                    e[10, t, ch] = a2 - b2
                    e[11, t, ch] = -b2
                    e[12, t, ch] = a3
                    e[13, t, ch] = a3 + b3
                    e[14, t, ch] = a3 - b3
                    e[15, t, ch] = -b3
    return e
