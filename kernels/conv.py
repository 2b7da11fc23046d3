"""2-D convolution (cross-correlation, as in Keras): im2col, and Winograd where it pays.

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
  convolution with 4x fewer multiplications, Winograd F(4x4, 3x3)
  (:mod:`kernels.winograd`), in chunks on all cores too.

``impl='numba'``, what the layers run, picks Winograd for 3x3 stride-1
layers with WINOGRAD_MIN_CHANNELS to WINOGRAD_MAX_CHANNELS input channels
when a call has at least WINOGRAD_MIN_PIXELS output pixels (images x height
x width; WINOGRAD_MIN_PIXELS_WIDE above 64 input channels), and im2col for
the rest (so a result's last bits can depend on the batch it came in).

The rule follows the measurements (forward + backward, im2col time over
Winograd time). On 2026-12-01 (``benchmarks/conv_layers.py``, 2-core Xeon
with AVX-512 and AMX), before the transforms were written out: with 32-64
channels Winograd won on many pixels (the chapter's 28x28 32->64 at batch
32: 1.83x, batch 128: 1.49x; ResNet's 56x56 64->64 at batch 32: 1.92x) and
lost on one image (0.67x); with 1 channel it lost (0.35-0.39x), and with 512
channels it lost badly at every size (VGG 28x28: 0.18x, 7x7 at batch 32:
0.47x; 256 channels at 56x56: 0.95x): its transformed kernel and tiles
outgrow the caches. On 2026-12-02 (2-core Xeon, AVX-512, no AMX), with the
written-out transforms: the chapter's layer on 1 image 0.82x, on 2 images
(1,568 pixels) 1.24x, on 8 1.39x; 128 channels at 6,272 pixels 1.15-1.24x
but on 1,568 (forward) 0.67x, at 25,088 1.70x; 256 channels at 6,272 1.05x.
``relu=True`` fuses the ReLU that follows most convolutions: it is applied to
each chunk's output while that is in cache, and its gradient mask is applied
chunk by chunk in the backward pass, instead of two more passes over the
whole activation.

No path keeps its patch matrix or input tiles for the backward pass: they are
rebuilt there from ``x``, which costs less than storing them.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from . import winograd
from .activations import relu_backward_mask_into
from .geometry import window_geometry
from .im2col import col2im_into, col2im_numpy, im2col_into, im2col_numpy
from .parallel import image_chunks, run_chunks
from .pool import maxpool_backward, tiles_the_image, unpool_relu_into

CHUNK_BYTES = 4 * 2**20  # scratch per chunk: a few MB fit the caches of this machine
CHUNK_IMAGES = 8  # at most, so that even a small layer has chunks for every core
IMPLS = ("numba", "im2col", "winograd", "numpy")
WINOGRAD_TILE = 4  # F(4x4, 3x3); 2 gives F(2x2, 3x3)
# Below this many input channels, or output pixels in a call, the tile
# transforms and set-up cost more than the products they save; above the
# maximum, the transformed kernel and tiles outgrow the caches (the figures
# are in the module's docstring).
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MAX_CHANNELS = 128
WINOGRAD_MIN_PIXELS = 1500  # output pixels in a call: 2 of the chapter's 28x28 images
WINOGRAD_MIN_PIXELS_WIDE = 6000  # above 64 input channels: 8 of them
PARTIAL_SUMS = 8  # parts of a weight gradient summed separately (and by up to 8 cores)


class ConvGeometry(NamedTuple):
    """Where a convolution's windows sit: kernel size, strides, the padding
    before (top, left), the output size and the dilation. Its fields, in this
    order, are the geometry arguments of :mod:`kernels.im2col`."""
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    oh: int
    ow: int
    dh: int = 1
    dw: int = 1


class ConvCache(NamedTuple):
    """What :func:`conv2d_forward` keeps for :func:`conv2d_backward`."""
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    geometry: ConvGeometry
    algorithm: str
    relu_passes: object  # None, or nonzero where a fused ReLU passed (a bool mask, or the output)


def _geometry(x_shape, w_shape, strides, padding, dilation=(1, 1)):
    _, h, wd, cin = x_shape
    kh, kw, kcin, _ = w_shape
    if kcin != cin:
        raise ValueError(f"input has {cin} channels but the kernel expects {kcin}")
    sh, sw = strides
    dh, dw = dilation
    oh, pt, _ = window_geometry(h, (kh - 1) * dh + 1, sh, padding)  # a dilated kernel spans more
    ow, pl, _ = window_geometry(wd, (kw - 1) * dw + 1, sw, padding)
    return ConvGeometry(kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)


def winograd_applies(w_shape, strides, dilation=(1, 1)):
    """Whether :mod:`kernels.winograd` can compute this convolution."""
    return tuple(w_shape[:2]) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1)


def _algorithm(impl, w_shape, strides, pixels, dilation=(1, 1)):
    """The algorithm ``impl`` means for this kernel and a call of ``pixels`` output pixels."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "numba":
        cin = w_shape[2]
        least = WINOGRAD_MIN_PIXELS if cin <= 64 else WINOGRAD_MIN_PIXELS_WIDE
        pays = WINOGRAD_MIN_CHANNELS <= cin <= WINOGRAD_MAX_CHANNELS and pixels >= least
        return "winograd" if pays and winograd_applies(w_shape, strides, dilation) else "im2col"
    if impl == "winograd" and not winograd_applies(w_shape, strides, dilation):
        raise ValueError("impl='winograd' needs a 3x3 kernel, stride 1 and no dilation")
    return impl


def _chunks(n, bytes_per_image):
    """(index, start, stop) image ranges of about CHUNK_BYTES of scratch, and the
    most images in one. Depends on shapes only, never on the number of cores."""
    step = max(1, min(CHUNK_IMAGES, CHUNK_BYTES // max(bytes_per_image, 1)))
    return image_chunks(n, step), step


def conv2d_forward(x, w, b, strides=(1, 1), padding="valid", impl="numba", relu=False, relu_mask=True,
                   dilation=(1, 1)):
    """Convolve ``x`` with ``w`` (dilated by ``dilation``), add ``b`` and, if ``relu``, apply ReLU.

    ``relu_mask`` (training) keeps ReLU's mask for the backward pass, one byte
    a value; without it (inference) the cache refers to the output itself,
    which costs nothing more while the caller holds the output anyway, and
    a backward pass still works from it.

    Returns
    -------
    out : ndarray, shape (n, oh, ow, cout)
    cache : tuple
        What :func:`conv2d_backward` needs (the input, the kernel, geometry,
        the algorithm, and, when ReLU is fused in, its mask ``out > 0``:
        one byte a value, so the output itself can be freed once the next
        layer has read it).
    """
    geometry = _geometry(x.shape, w.shape, strides, padding, dilation)
    algorithm = _algorithm(impl, w.shape, strides, x.shape[0] * geometry.oh * geometry.ow, dilation)
    oh, ow = geometry.oh, geometry.ow
    n, cout = x.shape[0], w.shape[3]
    if algorithm == "numpy":
        out = (im2col_numpy(x, *geometry) @ w.reshape(-1, cout)).reshape(n, oh, ow, cout)
        if b is not None:
            out += b
        if relu:
            np.maximum(out, 0, out=out)
        mask = out > 0 if relu and relu_mask else None
    else:
        x = np.ascontiguousarray(x)
        out = np.empty((n, oh, ow, cout), dtype=np.result_type(x, w))
        mask = np.empty(out.shape, dtype=np.bool_) if relu and relu_mask else None
        bias = np.zeros(cout, out.dtype) if b is None else b.astype(out.dtype, copy=False)
        forward = _winograd_forward if algorithm == "winograd" else _im2col_forward
        forward(x, w, bias, relu, mask, geometry, out)
    # what ReLU's gradient reads: nonzero where it passes (the mask, or the output)
    passes = (mask if mask is not None else out) if relu else None
    cache = ConvCache(x, w, b is not None, geometry, algorithm, passes)
    return out, cache


def _pointwise(geometry):
    """Whether the windows are single pixels, one per pixel (a 1x1 kernel,
    stride 1, no padding): then im2col's patch matrix is the input itself,
    (n * h * w, cin), and col2im the identity."""
    g = geometry
    return (g.kh, g.kw, g.sh, g.sw, g.pt, g.pl) == (1, 1, 1, 1, 0, 0)


def _im2col_forward(x, w, bias, relu, mask, geometry, out):
    """out = conv(x, w) + bias, then ReLU if asked, with its mask written into
    ``mask`` when one is given."""
    oh, ow = geometry.oh, geometry.ow
    cout = w.shape[3]
    w2 = w.reshape(-1, cout)  # (kh*kw*cin, cout): rows in the patches' order, no transpose
    out2 = out.reshape(-1, cout)
    mask2 = None if mask is None else mask.reshape(-1, cout)
    chunks, step = _chunks(x.shape[0], oh * ow * w2.shape[0] * x.itemsize)
    pointwise = _pointwise(geometry)

    def work(group):
        # one per thread; a 1x1 convolution's patches are its input itself
        cols = None if pointwise else np.empty((step * oh * ow, w2.shape[0]), dtype=x.dtype)
        for _, start, stop in group:
            chunk_out = out2[start * oh * ow: stop * oh * ow]
            if pointwise:
                chunk_cols = x[start:stop].reshape(-1, w2.shape[0])
            else:
                chunk_cols = im2col_into(x[start:stop], *geometry, cols[: (stop - start) * oh * ow])
            np.matmul(chunk_cols, w2, out=chunk_out)
            add_bias_relu(chunk_out, bias, relu)  # while the chunk's output is still in cache
            if mask is not None:
                np.greater(chunk_out, 0, out=mask2[start * oh * ow: stop * oh * ow])

    run_chunks(work, chunks)


def _winograd_pass(x, u, bias, relu, mask, pad_top, pad_left, out):
    """out = conv(x, kernel) + bias by Winograd, then ReLU if asked, with its
    mask written into ``mask`` when one is given; ``u`` is the transformed
    kernel (a*a, cin, cout)."""
    f = winograd.TRANSFORMS[WINOGRAD_TILE]
    bt, at = f.BT.astype(x.dtype), f.AT.astype(out.dtype)
    n, _, _, cin = x.shape
    _, oh, ow, cout = out.shape
    th, tw = winograd.tiles(oh, ow, f.m)
    a2 = (f.m + 2) ** 2
    chunks, step = _chunks(n, a2 * th * tw * (cin + cout) * x.itemsize)

    def work(group):
        # scratch, one per thread: the zero-bordered input, its tiles, their products
        xp = np.zeros(winograd.padded_shape(step, th, tw, f.m, cin), dtype=x.dtype)
        v_buf = np.empty(a2 * step * th * tw * cin, dtype=x.dtype)
        m_buf = np.empty(a2 * step * th * tw * cout, dtype=out.dtype)
        flags = np.empty((step, oh, ow), dtype=np.bool_)
        for _, start, stop in group:
            t = (stop - start) * th * tw
            padded = winograd.pad_into(x[start:stop], pad_top, pad_left, xp)
            v = winograd.input_transform(padded, th, tw, bt, v_buf[: a2 * t * cin].reshape(a2, t, cin))
            m = np.matmul(v, u, out=m_buf[: a2 * t * cout].reshape(a2, t, cout))
            zero_window = winograd.zero_windows(x[start:stop], pad_top, pad_left, oh, ow, flags[: stop - start])
            winograd.output_transform(m, at, bias, relu, th, tw, out[start:stop], zero_window)
            if mask is not None:
                np.greater(out[start:stop], 0, out=mask[start:stop])

    run_chunks(work, chunks)


def _winograd_forward(x, w, bias, relu, mask, geometry, out):
    pt, pl = geometry.pt, geometry.pl
    f = winograd.TRANSFORMS[WINOGRAD_TILE]
    _winograd_pass(x, winograd.kernel_transform(w, f), bias, relu, mask, pt, pl, out)


def conv2d_backward(dout, cache, need_dx=True, pool_cache=None):
    """Gradients of a convolution (through its ReLU, when that was fused in).

    Parameters
    ----------
    dout : ndarray, shape (n, oh, ow, cout)
        Gradient of the loss with respect to the output; with ``pool_cache``,
        with respect to the output of the max-pool over it.
    need_dx : bool
        False skips the input gradient (a first layer's input is data).
    pool_cache : tuple or None
        The cache of a max-pool whose windows tile this convolution's ReLU
        output (:func:`kernels.pool.tiles_the_image`): its backward and the
        ReLU's then run as one pass chunk by chunk, while the chunk is in
        cache, instead of writing and reading back the whole unpooled
        gradient (the chapter's: 26 MB).

    Returns
    -------
    dx : ndarray, shape (n, h, w, cin), or None when not needed
    dw : ndarray, shape (kh, kw, cin, cout)
    db : ndarray, shape (cout,), or None when the layer has no bias
    """
    x, w, has_bias, geometry, algorithm, relu_mask = cache  # relu_mask: nonzero where ReLU passed
    cout = w.shape[-1]
    if pool_cache is not None and (algorithm == "numpy" or relu_mask is None or not tiles_the_image(pool_cache)):
        dout, pool_cache = maxpool_backward(dout, pool_cache), None  # nothing to fuse: one after the other
    if algorithm == "numpy":
        dz = dout if relu_mask is None else np.where(relu_mask, dout, 0).astype(dout.dtype, copy=False)
        dz2 = dz.reshape(-1, cout)
        cols = im2col_numpy(x, *geometry)
        dw = (cols.T @ dz2).reshape(w.shape)  # each weight collects the inputs it multiplied
        db = dz2.sum(axis=0) if has_bias else None
        dx = col2im_numpy(dz2 @ w.reshape(-1, cout).T, x.shape, *geometry) if need_dx else None
        return dx, dw, db
    if pool_cache is not None and tuple(pool_cache[0]) != (x.shape[0], geometry.oh, geometry.ow, cout):
        raise ValueError(f"pool_cache is of a max-pool over {tuple(pool_cache[0])}, not over this "
                         f"convolution's output {(x.shape[0], geometry.oh, geometry.ow, cout)}")
    n, oh, ow = x.shape[0], geometry.oh, geometry.ow
    dout = np.ascontiguousarray(dout)
    dx = np.empty(x.shape, dtype=dout.dtype) if need_dx else None
    chunk_grads = (_WinogradGradients if algorithm == "winograd" else _Im2colGradients)(x, w, geometry, need_dx)
    chunks, step = _chunks(n, chunk_grads.bytes_per_image)
    # The sums over images (dW, db) are split into at most PARTIAL_SUMS runs of
    # consecutive chunks, fixed by the shapes; each run adds its chunks in
    # order into its own part and the parts are added in order below, so the
    # result does not depend on how many threads ran them.
    runs = [(index, list(run)) for index, run in enumerate(_split(chunks, PARTIAL_SUMS))]
    dw_parts = np.empty((len(runs), *chunk_grads.part_shape), dtype=dout.dtype)
    db_parts = np.zeros((len(runs), cout), dtype=dout.dtype)

    def work(group):
        scratch = chunk_grads.scratch(step)  # one per thread
        dw_chunk = np.empty(chunk_grads.part_shape, dtype=dout.dtype)
        dz = np.empty((step, oh, ow, cout), dtype=dout.dtype) if relu_mask is not None else None
        for index, run in group:
            for k, (_, start, stop) in enumerate(run):
                d = dout[start:stop]
                if pool_cache is not None:  # max-pool's gradient and ReLU's at once, chunk by chunk
                    _, argmax, (ph, pw, _, _, pt, pl, _, _), _ = pool_cache
                    d = unpool_relu_into(d, argmax[start:stop], ph, pw, pt, pl, relu_mask[start:stop],
                                         dz[: stop - start])
                elif relu_mask is not None:  # ReLU's gradient, chunk by chunk while in cache
                    d = relu_backward_mask_into(d, relu_mask[start:stop], dz[: stop - start])
                if has_bias:
                    add_channel_sums(d, db_parts[index])
                target = dw_parts[index] if k == 0 else dw_chunk
                chunk_grads(x[start:stop], d, target, None if dx is None else dx[start:stop], scratch)
                if k > 0:
                    dw_parts[index] += dw_chunk

    run_chunks(work, runs)
    dw = chunk_grads.kernel_gradient(dw_parts.sum(axis=0))
    db = db_parts.sum(axis=0) if has_bias else None
    return dx, dw, db


@njit(cache=True, nogil=True)
def add_bias_relu(out, bias, relu):
    """out (rows, c) += bias (c,), then ReLU if asked, in one pass (NumPy's
    ``out += bias; np.maximum(out, 0, out=out)`` is the twin, in two)."""
    rows, c = out.shape
    zero = out.dtype.type(0)
    for r in range(rows):
        for ch in range(c):
            value = out[r, ch] + bias[ch]
            out[r, ch] = max(value, zero) if relu else value
    return out


@njit(cache=True, nogil=True)
def add_channel_sums(d, total):
    """total (c,) += the sum of ``d`` (n, h, w, c) over its first three axes: a
    bias's gradient. One pass, channels innermost (NumPy's ``d.sum(axis=(0, 1,
    2))`` is the twin; it runs ~5x slower on these shapes)."""
    n, h, w, c = d.shape
    for img in range(n):
        for y in range(h):
            for x in range(w):
                for ch in range(c):
                    total[ch] += d[img, y, x, ch]
    return total


def _split(items, parts):
    """``items`` in at most ``parts`` runs of consecutive items, sizes within one."""
    count = min(parts, len(items))
    bounds = [len(items) * i // count for i in range(count + 1)]
    return [items[bounds[i]:bounds[i + 1]] for i in range(count)]


class _Im2colGradients:
    """One chunk's gradients through im2col: dW share = cols^T @ dout,
    dx = col2im(dout @ W^T)."""

    def __init__(self, x, w, geometry, need_dx):
        self.oh, self.ow = geometry.oh, geometry.ow
        self.geometry, self.need_dx = geometry, need_dx
        self.pointwise = _pointwise(geometry)  # the patches are the input, their gradient the input's
        self.w2 = w.reshape(-1, w.shape[3])
        self.part_shape = self.w2.shape
        self.bytes_per_image = self.oh * self.ow * self.w2.shape[0] * x.itemsize * (2 if need_dx else 1)
        self.dtype, self.w_shape = x.dtype, w.shape

    def scratch(self, step):
        if self.pointwise:
            return None, None
        cols = np.empty((step * self.oh * self.ow, self.w2.shape[0]), dtype=self.dtype)
        return cols, (np.empty_like(cols) if self.need_dx else None)

    def __call__(self, x, d, dw_part, dx, scratch):
        cols, dcols = scratch
        count = x.shape[0] * self.oh * self.ow
        d2 = d.reshape(count, -1)
        chunk_cols = x.reshape(count, -1) if self.pointwise else im2col_into(x, *self.geometry, cols[:count])
        np.matmul(chunk_cols.T, d2, out=dw_part)  # each weight collects the inputs it multiplied
        if dx is not None:
            if self.pointwise:
                np.matmul(d2, self.w2.T, out=dx.reshape(count, -1))
            else:
                np.matmul(d2, self.w2.T, out=dcols[:count])  # each patch entry gets the weights it met
                col2im_into(dcols[:count], *self.geometry, dx)

    def kernel_gradient(self, dw2):
        return dw2.reshape(self.w_shape)


class _WinogradGradients:
    """One chunk's gradients by Winograd, both from the tiles of ``dout``
    transformed by ``A`` (e): the dW share as summed tile products V^T e
    (a*a, cin, cout); dx by the adjoint of the input transform applied to
    e U^T, U the transformed kernel."""

    def __init__(self, x, w, geometry, need_dx):
        _, self.h, self.w, cin = x.shape
        pt, pl, oh, ow = geometry.pt, geometry.pl, geometry.oh, geometry.ow
        cout = w.shape[3]
        self.f = f = winograd.TRANSFORMS[WINOGRAD_TILE]
        self.bt, self.at = f.BT.astype(x.dtype), f.AT.astype(x.dtype)
        self.a2 = a2 = (f.m + 2) ** 2
        self.pad, self.need_dx = (pt, pl), need_dx
        self.tiles = winograd.tiles(oh, ow, f.m)
        # U^T (a*a, cout, cin): what carries a tile product's gradient back to the input tile
        self.u_t = winograd.kernel_transform(w, f).transpose(0, 2, 1) if need_dx else None
        self.cin, self.cout, self.dtype = cin, cout, x.dtype
        self.part_shape = (a2, cin, cout)
        th, tw = self.tiles
        self.bytes_per_image = a2 * th * tw * (2 * cin + cout) * x.itemsize

    def scratch(self, step):
        th, tw = self.tiles
        size = self.a2 * step * th * tw
        # the zero-bordered copy of x (and its gradient), tiles with cin and with cout channels
        xp = np.zeros(winograd.padded_shape(step, th, tw, self.f.m, self.cin), self.dtype)
        dxp = np.empty_like(xp) if self.need_dx else None
        return xp, dxp, np.empty(size * self.cin, self.dtype), np.empty(size * self.cout, self.dtype)

    def __call__(self, x, d, dw_part, dx, scratch):
        xp, dxp, in_buf, out_buf = scratch
        (th, tw), cin, cout, a2 = self.tiles, self.cin, self.cout, self.a2
        n = x.shape[0]
        t = n * th * tw
        padded = winograd.pad_into(x, *self.pad, xp)
        v = winograd.input_transform(padded, th, tw, self.bt, in_buf[: a2 * t * cin].reshape(a2, t, cin))
        e = winograd.gradient_transform(d, self.at, th, tw, out_buf[: a2 * t * cout].reshape(a2, t, cout))
        np.matmul(v.transpose(0, 2, 1), e, out=dw_part)
        if dx is not None:
            dv = np.matmul(e, self.u_t, out=in_buf[: a2 * t * cin].reshape(a2, t, cin))  # v is done with
            grad = winograd.input_transform_adjoint(dv, th, tw, self.bt, dxp[:n])
            pt, pl = self.pad
            rows, cols = min(self.h, grad.shape[1] - pt), min(self.w, grad.shape[2] - pl)
            dx[:, :rows, :cols] = grad[:, pt:pt + rows, pl:pl + cols]
            dx[:, rows:] = 0  # input rows and columns no tile reads get no gradient
            dx[:, :, cols:] = 0

    def kernel_gradient(self, m):
        return winograd.kernel_gradient_from_products(m, self.f, self.dtype)
