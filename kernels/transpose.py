"""Transposed 2-D convolution over NHWC images: the adjoint of a convolution.

A convolution C with kernel ``w`` (kh, kw, f, cin) maps images of ``f``
channels and size (H, W) to images of ``cin`` channels and size (h, w). Its
transpose C^T maps back: (n, h, w, cin) -> (n, H, W, f). That is exactly what
``Conv2DTranspose`` computes (and what TensorFlow's ``conv2d_transpose`` is:
the input gradient of ``conv2d``), which is why Keras stores its kernel as
(kh, kw, filters, in): it is the kernel of the convolution being transposed.

So the kernels are the two halves of a convolution's backward pass, swapped:

* forward: each input pixel scattered through the kernel, ``col2im(x @ w^T)``
  (x is (n*h*w, cin), w reshaped (kh*kw*f, cin)): every input value times
  the kernel, added into the output window it lands on;
* input gradient: the forward convolution of ``dout``, ``im2col(dout) @ w``;
* kernel gradient: ``im2col(dout)^T @ x``.

The geometry is the convolution's over the output size (H, W), which Keras
computes as ``deconv_output_length``: 'same' gives ``h * stride``, 'valid'
``h * stride + max(k - stride, 0)`` (k the dilated span), and with
``output_padding`` p, ``(h - 1) * stride + k - 2 * pad + p`` where pad is
``k // 2`` for 'same' and 0 for 'valid'. The convolution's own 'same' or
'valid' padding over (H, W) then says which output cells the scattered
windows cover (TensorFlow's rule: the odd cell of padding at the bottom/right).

Pure functions: ``conv2d_transpose_forward(...) -> (out, cache)``,
``conv2d_transpose_backward(dout, cache) -> (dx, dw, db)``; ``impl='numpy'``
runs the same steps through the NumPy twins of im2col and col2im.
"""
from typing import NamedTuple

import numpy as np

from .geometry import window_geometry
from .im2col import col2im_numba, col2im_numpy, im2col_numba, im2col_numpy
from .parallel import matmul

IMPLS = ("numba", "numpy")


def output_length(size, kernel, stride, padding, output_padding=None, dilation=1):
    """Keras's ``deconv_output_length``: the output size along one axis."""
    span = (kernel - 1) * dilation + 1
    if output_padding is None:
        return size * stride + max(span - stride, 0) if padding == "valid" else size * stride
    pad = span // 2 if padding == "same" else 0
    return (size - 1) * stride + span - 2 * pad + output_padding


class TransposeGeometry(NamedTuple):
    """The convolution being transposed: kernel taps, strides, its padding
    over the output (pad_top, pad_left), the input size it maps to (h, w),
    dilation, and the output size (H, W)."""
    kh: int
    kw: int
    sh: int
    sw: int
    pad_top: int
    pad_left: int
    h: int
    w: int
    dh: int
    dw: int
    out_h: int
    out_w: int


class TransposeCache(NamedTuple):
    x: np.ndarray
    w: np.ndarray
    geometry: TransposeGeometry
    impl: str


def transpose_geometry(x_shape, w_shape, strides, padding, output_padding=None, dilation=(1, 1)):
    _, h, w, _ = x_shape
    kh, kw = w_shape[:2]
    op = (None, None) if output_padding is None else output_padding
    out_h = output_length(h, kh, strides[0], padding, op[0], dilation[0])
    out_w = output_length(w, kw, strides[1], padding, op[1], dilation[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"a transposed convolution of {h}x{w} inputs gives an empty {out_h}x{out_w} output")
    # the convolution over the output that this transposes: it must give back (h, w)
    ch, pad_top, _ = window_geometry(out_h, (kh - 1) * dilation[0] + 1, strides[0], padding)
    cw, pad_left, _ = window_geometry(out_w, (kw - 1) * dilation[1] + 1, strides[1], padding)
    if (ch, cw) != (h, w):  # only an output_padding that Keras refuses gets here
        raise ValueError(f"output size {out_h}x{out_w} does not convolve back to {h}x{w}")
    return TransposeGeometry(kh, kw, strides[0], strides[1], pad_top, pad_left, h, w, dilation[0], dilation[1],
                             out_h, out_w)


def _taps(g):
    return g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.h, g.w, g.dh, g.dw


def conv2d_transpose_forward(x, w, b=None, strides=(1, 1), padding="valid", output_padding=None, dilation=(1, 1),
                             impl="numba"):
    """Transposed convolution.

    Parameters
    ----------
    x : (n, h, w, cin); w : (kh, kw, filters, cin), Keras's layout; b : (filters,) or None
    strides, dilation : (int, int); padding : 'valid' or 'same'
    output_padding : None or (int, int), each below its stride (Keras's rule)
    impl : 'numba' or 'numpy'

    Returns
    -------
    out : (n, H, W, filters)
    cache : TransposeCache
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    g = transpose_geometry(x.shape, w.shape, tuple(strides), padding, output_padding, tuple(dilation))
    n, cin, f = x.shape[0], x.shape[3], w.shape[2]
    w2 = np.ascontiguousarray(w.reshape(-1, cin), dtype=x.dtype)  # (kh*kw*f, cin): rows in (kh, kw, f) order
    cols = (matmul if impl == "numba" else np.matmul)(np.ascontiguousarray(x).reshape(-1, cin), w2.T)
    col2im = col2im_numba if impl == "numba" else col2im_numpy
    out = col2im(cols, (n, g.out_h, g.out_w, f), *_taps(g))
    out = np.ascontiguousarray(out)
    if b is not None:
        out += b
    return out, TransposeCache(x, w2, g, impl)


def conv2d_transpose_backward(dout, cache, need_dx=True):
    """Gradients of :func:`conv2d_transpose_forward`: (dx or None, dw, db)."""
    x, w2, g, impl = cache
    cin = x.shape[3]
    f = dout.shape[3]
    im2col = im2col_numba if impl == "numba" else im2col_numpy
    product = matmul if impl == "numba" else np.matmul
    cols = im2col(np.ascontiguousarray(dout, dtype=x.dtype), *_taps(g))  # (n*h*w, kh*kw*f)
    dw = np.matmul(cols.T, x.reshape(-1, cin)).reshape(g.kh, g.kw, f, cin)
    dx = product(cols, w2).reshape(x.shape) if need_dx else None
    return dx, dw, dout.sum(axis=(0, 1, 2))
