"""2-D convolution (cross-correlation, as in Keras) through im2col.

Shapes::

    x    : (n, h, w, cin)           NHWC input
    w    : (kh, kw, cin, cout)      Keras kernel layout
    b    : (cout,) or None
    out  : (n, oh, ow, cout)

Two paths compute the same thing:

* ``impl='numpy'`` is the readable reference: one patch matrix for the whole
  batch, one matrix product.
* ``impl='numba'`` (what the layers run) goes a few images at a time: the
  patch matrix of a chunk (about 4 MB) stays in the processor's cache between
  being built and being multiplied, instead of a 115 MB matrix for the
  chapter's second convolution making its way through main memory, and the
  buffers are reused. Chunks run on all cores (:mod:`kernels.parallel`).
  The same GEMMs, the same results up to rounding.

``relu=True`` fuses the ReLU that follows most convolutions: it is applied to
each chunk's output while that is in cache, and its gradient mask is applied
chunk by chunk in the backward pass, instead of two more passes over the
whole activation.

Neither keeps the patch matrix for the backward pass: it is rebuilt there from
``x``, which costs less than storing it.
"""
import numpy as np

from .activations import relu_backward_into, relu_backward_numpy
from .geometry import window_geometry
from .im2col import col2im_into, col2im_numpy, im2col_into, im2col_numpy
from .parallel import image_chunks, run_chunks

CHUNK_BYTES = 4 * 2**20  # patch matrix per chunk: a few MB fit the caches of this machine
CHUNK_IMAGES = 8  # at most, so that even a small layer has chunks for every core


def _geometry(x_shape, w_shape, strides, padding):
    _, h, wd, cin = x_shape
    kh, kw, kcin, _ = w_shape
    if kcin != cin:
        raise ValueError(f"input has {cin} channels but the kernel expects {kcin}")
    sh, sw = strides
    oh, pt, _ = window_geometry(h, kh, sh, padding)
    ow, pl, _ = window_geometry(wd, kw, sw, padding)
    return (kh, kw, sh, sw, pt, pl, oh, ow)


def _chunks(x, geometry):
    """(index, start, stop) image ranges whose patch matrices are about
    CHUNK_BYTES, and the most images in one. Depends on shapes only."""
    kh, kw, _, _, _, _, oh, ow = geometry
    per_image = oh * ow * kh * kw * x.shape[3] * x.itemsize
    step = max(1, min(CHUNK_IMAGES, CHUNK_BYTES // max(per_image, 1)))
    return image_chunks(x.shape[0], step), step


def conv2d_forward(x, w, b, strides=(1, 1), padding="valid", impl="numba", relu=False):
    """Convolve ``x`` with ``w``, add ``b`` and, if ``relu``, apply ReLU.

    Returns
    -------
    out : ndarray, shape (n, oh, ow, cout)
    cache : tuple
        What :func:`conv2d_backward` needs (the input, the kernel, geometry,
        and the output when ReLU is fused in).
    """
    geometry = _geometry(x.shape, w.shape, strides, padding)
    kh, kw, _, _, _, _, oh, ow = geometry
    n, cout = x.shape[0], w.shape[3]
    w2 = w.reshape(-1, cout)  # (kh*kw*cin, cout): rows in the patches' order, no transpose
    if impl == "numpy":
        out = im2col_numpy(x, *geometry) @ w2
        if b is not None:
            out += b
        if relu:
            np.maximum(out, 0, out=out)
    else:
        x = np.ascontiguousarray(x)
        out = np.empty((n * oh * ow, cout), dtype=np.result_type(x, w))
        chunks, step = _chunks(x, geometry)

        def work(group):
            cols = np.empty((step * oh * ow, w2.shape[0]), dtype=x.dtype)  # one per thread
            for _, start, stop in group:
                chunk_out = out[start * oh * ow: stop * oh * ow]
                chunk_cols = im2col_into(x[start:stop], *geometry, cols[: (stop - start) * oh * ow])
                np.matmul(chunk_cols, w2, out=chunk_out)
                # bias and ReLU while the chunk's output is still in cache
                if b is not None:
                    chunk_out += b
                if relu:
                    np.maximum(chunk_out, 0, out=chunk_out)

        run_chunks(work, chunks)
    out = out.reshape(n, oh, ow, cout)
    cache = (x, w, b is not None, geometry, impl, out if relu else None)
    return out, cache


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
    x, w, has_bias, geometry, impl, relu_out = cache
    kh, kw, _, _, _, _, oh, ow = geometry
    cout = w.shape[-1]
    w2 = w.reshape(-1, cout)
    if impl == "numpy":
        dz = dout if relu_out is None else relu_backward_numpy(dout, relu_out)
        dz2 = dz.reshape(-1, cout)
        cols = im2col_numpy(x, *geometry)
        dw = (cols.T @ dz2).reshape(w.shape)  # each weight collects the inputs it multiplied
        db = dz2.sum(axis=0) if has_bias else None
        dx = col2im_numpy(dz2 @ w2.T, x.shape, *geometry) if need_dx else None
        return dx, dw, db
    dout2 = np.ascontiguousarray(dout).reshape(-1, cout)
    out2 = None if relu_out is None else relu_out.reshape(-1, cout)
    dx = np.empty(x.shape, dtype=dout.dtype) if need_dx else None
    chunks, step = _chunks(x, geometry)
    # every chunk's share of the sums; added in chunk order below, so the
    # result does not depend on how many threads ran the chunks
    dw_parts = np.empty((len(chunks), *w2.shape), dtype=dout.dtype)
    db_parts = np.empty((len(chunks), cout), dtype=dout.dtype)

    def work(group):
        cols = np.empty((step * oh * ow, w2.shape[0]), dtype=x.dtype)  # scratch, one per thread
        dcols = np.empty_like(cols) if need_dx else None
        dz = np.empty((step * oh * ow, cout), dtype=dout.dtype) if out2 is not None else None
        for index, start, stop in group:
            rows = slice(start * oh * ow, stop * oh * ow)
            count = (stop - start) * oh * ow
            d = dout2[rows]
            if out2 is not None:
                d = relu_backward_into(d, out2[rows], dz[:count])
            chunk_cols = im2col_into(x[start:stop], *geometry, cols[:count])
            np.matmul(chunk_cols.T, d, out=dw_parts[index])
            if has_bias:
                d.sum(axis=0, out=db_parts[index])
            if need_dx:
                np.matmul(d, w2.T, out=dcols[:count])  # each patch entry gets the weights it met
                col2im_into(dcols[:count], *geometry, dx[start:stop])

    run_chunks(work, chunks)
    dw = dw_parts.sum(axis=0).reshape(w.shape)
    db = db_parts.sum(axis=0) if has_bias else None
    return dx, dw, db
