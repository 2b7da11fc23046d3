"""2-D convolution (cross-correlation, as in Keras) through im2col.

Shapes::

    x    : (n, h, w, cin)           NHWC input
    w    : (kh, kw, cin, cout)      Keras kernel layout
    b    : (cout,) or None
    out  : (n, oh, ow, cout)

Three paths compute the same thing:

* ``impl='numpy'`` is the readable reference: one patch matrix for the whole
  batch, one matrix product.
* ``impl='im2col'`` goes a few images at a time: the
  patch matrix of a chunk (about 4 MB) stays in the processor's cache between
  being built and being multiplied, instead of a 115 MB matrix for the
  chapter's second convolution making its way through main memory, and the
  buffers are reused. Chunks run on all cores (:mod:`kernels.parallel`).
  The same GEMMs, the same results up to rounding.
* ``impl='winograd'`` (3x3 kernels, stride 1 only) computes the same
  convolution with 2.25x fewer multiplications (:mod:`kernels.winograd`), in
  chunks on all cores too. It is not the default: on this project's 2-core
  machine it is no faster for the chapter's layers (see that module).

``impl='numba'``, what the layers run, is im2col.

``relu=True`` fuses the ReLU that follows most convolutions: it is applied to
each chunk's output while that is in cache, and its gradient mask is applied
chunk by chunk in the backward pass, instead of two more passes over the
whole activation.

Neither keeps the patch matrix for the backward pass: it is rebuilt there from
``x``, which costs less than storing it.
"""
import numpy as np

from . import winograd
from .activations import relu_backward_into, relu_backward_numpy
from .geometry import window_geometry
from .im2col import col2im_into, col2im_numpy, im2col_into, im2col_numpy
from .parallel import image_chunks, run_chunks

CHUNK_BYTES = 4 * 2**20  # scratch per chunk: a few MB fit the caches of this machine
CHUNK_IMAGES = 8  # at most, so that even a small layer has chunks for every core
IMPLS = ("numba", "im2col", "winograd", "numpy")


def _geometry(x_shape, w_shape, strides, padding):
    _, h, wd, cin = x_shape
    kh, kw, kcin, _ = w_shape
    if kcin != cin:
        raise ValueError(f"input has {cin} channels but the kernel expects {kcin}")
    sh, sw = strides
    oh, pt, _ = window_geometry(h, kh, sh, padding)
    ow, pl, _ = window_geometry(wd, kw, sw, padding)
    return (kh, kw, sh, sw, pt, pl, oh, ow)


def winograd_applies(w_shape, strides):
    """Whether :mod:`kernels.winograd` can compute this convolution."""
    return tuple(w_shape[:2]) == (3, 3) and tuple(strides) == (1, 1)


def _algorithm(impl, w_shape, strides):
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "numba":
        return "im2col"
    if impl == "winograd" and not winograd_applies(w_shape, strides):
        raise ValueError("impl='winograd' needs a 3x3 kernel and stride 1")
    return impl


def _chunks(n, bytes_per_image):
    """(index, start, stop) image ranges of about CHUNK_BYTES of scratch, and the
    most images in one. Depends on shapes only, never on the number of cores."""
    step = max(1, min(CHUNK_IMAGES, CHUNK_BYTES // max(bytes_per_image, 1)))
    return image_chunks(n, step), step


def conv2d_forward(x, w, b, strides=(1, 1), padding="valid", impl="numba", relu=False):
    """Convolve ``x`` with ``w``, add ``b`` and, if ``relu``, apply ReLU.

    Returns
    -------
    out : ndarray, shape (n, oh, ow, cout)
    cache : tuple
        What :func:`conv2d_backward` needs (the input, the kernel, geometry,
        the algorithm, and the output when ReLU is fused in).
    """
    geometry = _geometry(x.shape, w.shape, strides, padding)
    algorithm = _algorithm(impl, w.shape, strides)
    kh, kw, _, _, pt, pl, oh, ow = geometry
    n, cout = x.shape[0], w.shape[3]
    if algorithm == "numpy":
        out = (im2col_numpy(x, *geometry) @ w.reshape(-1, cout)).reshape(n, oh, ow, cout)
        if b is not None:
            out += b
        if relu:
            np.maximum(out, 0, out=out)
    else:
        x = np.ascontiguousarray(x)
        out = np.empty((n, oh, ow, cout), dtype=np.result_type(x, w))
        bias = np.zeros(cout, out.dtype) if b is None else b.astype(out.dtype, copy=False)
        forward = _winograd_forward if algorithm == "winograd" else _im2col_forward
        forward(x, w, bias, relu, geometry, out)
    cache = (x, w, b is not None, geometry, algorithm, out if relu else None)
    return out, cache


def _im2col_forward(x, w, bias, relu, geometry, out):
    kh, kw, _, _, _, _, oh, ow = geometry
    cout = w.shape[3]
    w2 = w.reshape(-1, cout)  # (kh*kw*cin, cout): rows in the patches' order, no transpose
    out2 = out.reshape(-1, cout)
    chunks, step = _chunks(x.shape[0], oh * ow * w2.shape[0] * x.itemsize)

    def work(group):
        cols = np.empty((step * oh * ow, w2.shape[0]), dtype=x.dtype)  # one per thread
        for _, start, stop in group:
            chunk_out = out2[start * oh * ow: stop * oh * ow]
            chunk_cols = im2col_into(x[start:stop], *geometry, cols[: (stop - start) * oh * ow])
            np.matmul(chunk_cols, w2, out=chunk_out)
            chunk_out += bias  # bias and ReLU while the chunk's output is still in cache
            if relu:
                np.maximum(chunk_out, 0, out=chunk_out)

    run_chunks(work, chunks)


def _winograd_pass(x, u, bias, relu, pad_top, pad_left, out):
    """out = ReLU?(conv(x, kernel) + bias) by Winograd, ``u`` the transformed
    kernel (16, cin, cout). Also the input gradient's pass."""
    n, _, _, cin = x.shape
    _, oh, ow, cout = out.shape
    th, tw = winograd.tiles(oh, ow)
    chunks, step = _chunks(n, 16 * th * tw * (cin + cout) * x.itemsize)

    def work(group):
        v_buf = np.empty(16 * step * th * tw * cin, dtype=x.dtype)  # scratch, one per thread
        m_buf = np.empty(16 * step * th * tw * cout, dtype=out.dtype)
        for _, start, stop in group:
            t = (stop - start) * th * tw
            v = winograd.input_transform(x[start:stop], pad_top, pad_left, th, tw,
                                         v_buf[: 16 * t * cin].reshape(16, t, cin))
            m = np.matmul(v, u, out=m_buf[: 16 * t * cout].reshape(16, t, cout))
            winograd.output_transform(m, bias, relu, th, tw, out[start:stop])

    run_chunks(work, chunks)


def _winograd_forward(x, w, bias, relu, geometry, out):
    pt, pl = geometry[4:6]
    _winograd_pass(x, winograd.kernel_transform(w), bias, relu, pt, pl, out)


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of a convolution (through its ReLU, when that was fused in).

    Parameters
    ----------
    dout : ndarray, shape (n, oh, ow, cout)
        Gradient of the loss with respect to the output.
    need_dx : bool
        False skips the input gradient (a first layer's input is data).

    Returns
    -------
    dx : ndarray, shape (n, h, w, cin), or None when not needed
    dw : ndarray, shape (kh, kw, cin, cout)
    db : ndarray, shape (cout,), or None when the layer has no bias
    """
    x, w, has_bias, geometry, algorithm, relu_out = cache
    cout = w.shape[-1]
    if algorithm == "numpy":
        dz = dout if relu_out is None else relu_backward_numpy(dout, relu_out)
        dz2 = dz.reshape(-1, cout)
        cols = im2col_numpy(x, *geometry)
        dw = (cols.T @ dz2).reshape(w.shape)  # each weight collects the inputs it multiplied
        db = dz2.sum(axis=0) if has_bias else None
        dx = col2im_numpy(dz2 @ w.reshape(-1, cout).T, x.shape, *geometry) if need_dx else None
        return dx, dw, db
    n, oh, ow, _ = dout.shape
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x.shape, dtype=dout.dtype) if need_dx else None
    chunk_grads = (_WinogradGradients if algorithm == "winograd" else _Im2colGradients)(x, w, geometry, need_dx)
    chunks, step = _chunks(n, chunk_grads.bytes_per_image)
    # every chunk's share of the sums; added in chunk order below, so the
    # result does not depend on how many threads ran the chunks
    dw_parts = np.empty((len(chunks), *chunk_grads.part_shape), dtype=dout.dtype)
    db_parts = np.empty((len(chunks), cout), dtype=dout.dtype)

    def work(group):
        scratch = chunk_grads.scratch(step)  # one per thread
        dz = np.empty((step, oh, ow, cout), dtype=dout.dtype) if relu_out is not None else None
        for index, start, stop in group:
            d = dout[start:stop]
            if relu_out is not None:  # ReLU's gradient, chunk by chunk while in cache
                d = relu_backward_into(d, relu_out[start:stop], dz[: stop - start])
            if has_bias:
                d.sum(axis=(0, 1, 2), out=db_parts[index])
            chunk_grads(x[start:stop], d, dw_parts[index], None if dx is None else dx[start:stop], scratch)

    run_chunks(work, chunks)
    dw = chunk_grads.kernel_gradient(dw_parts.sum(axis=0))
    db = db_parts.sum(axis=0) if has_bias else None
    return dx, dw, db


class _Im2colGradients:
    """One chunk's gradients through im2col: dW share = cols^T @ dout,
    dx = col2im(dout @ W^T)."""

    def __init__(self, x, w, geometry, need_dx):
        kh, kw, _, _, _, _, self.oh, self.ow = geometry
        self.geometry, self.need_dx = geometry, need_dx
        self.w2 = w.reshape(-1, w.shape[3])
        self.part_shape = self.w2.shape
        self.bytes_per_image = self.oh * self.ow * self.w2.shape[0] * x.itemsize * (2 if need_dx else 1)
        self.dtype, self.w_shape = x.dtype, w.shape

    def scratch(self, step):
        cols = np.empty((step * self.oh * self.ow, self.w2.shape[0]), dtype=self.dtype)
        return cols, (np.empty_like(cols) if self.need_dx else None)

    def __call__(self, x, d, dw_part, dx, scratch):
        cols, dcols = scratch
        count = x.shape[0] * self.oh * self.ow
        d2 = d.reshape(count, -1)
        chunk_cols = im2col_into(x, *self.geometry, cols[:count])
        np.matmul(chunk_cols.T, d2, out=dw_part)  # each weight collects the inputs it multiplied
        if dx is not None:
            np.matmul(d2, self.w2.T, out=dcols[:count])  # each patch entry gets the weights it met
            col2im_into(dcols[:count], *self.geometry, dx)

    def kernel_gradient(self, dw2):
        return dw2.reshape(self.w_shape)


class _WinogradGradients:
    """One chunk's gradients by Winograd: the dW share as summed tile products
    (16, cin, cout); dx as the forward pass of ``dout`` with the flipped kernel."""

    def __init__(self, x, w, geometry, need_dx):
        _, h, wd, cin = x.shape
        pt, pl, oh, ow = geometry[4:]
        cout = w.shape[3]
        self.pad, self.need_dx = (pt, pl), need_dx
        self.tiles = winograd.tiles(oh, ow)
        self.dx_tiles = winograd.tiles(h, wd)
        # the input gradient is a 'full' correlation: padding mirrored to 2 - pad
        self.dx_pad = (2 - pt, 2 - pl)
        self.u_dx = winograd.kernel_transform(winograd.flipped_kernel(w)) if need_dx else None
        self.cin, self.cout, self.dtype = cin, cout, x.dtype
        self.part_shape = (16, cin, cout)
        th, tw = self.tiles
        dh, dw = self.dx_tiles
        self.bytes_per_image = 16 * (th * tw + (dh * dw if need_dx else 0)) * (cin + cout) * x.itemsize

    def scratch(self, step):
        th, tw = self.tiles
        dh, dw = self.dx_tiles
        size = 16 * step * max(th * tw, dh * dw if self.need_dx else 0)
        return np.empty(size * self.cin, self.dtype), np.empty(size * self.cout, self.dtype)

    def __call__(self, x, d, dw_part, dx, scratch):
        in_buf, out_buf = scratch  # tiles with cin channels, tiles with cout channels
        (th, tw), cin, cout = self.tiles, self.cin, self.cout
        t = x.shape[0] * th * tw
        v = winograd.input_transform(x, *self.pad, th, tw, in_buf[: 16 * t * cin].reshape(16, t, cin))
        e = winograd.gradient_transform(d, th, tw, out_buf[: 16 * t * cout].reshape(16, t, cout))
        np.matmul(v.transpose(0, 2, 1), e, out=dw_part)
        if dx is not None:
            dh, dw = self.dx_tiles
            t = x.shape[0] * dh * dw
            vd = winograd.input_transform(d, *self.dx_pad, dh, dw, out_buf[: 16 * t * cout].reshape(16, t, cout))
            m = np.matmul(vd, self.u_dx, out=in_buf[: 16 * t * cin].reshape(16, t, cin))
            winograd.output_transform(m, np.zeros(cin, self.dtype), False, dh, dw, dx)

    def kernel_gradient(self, m):
        return winograd.kernel_gradient_from_products(m, self.dtype)
