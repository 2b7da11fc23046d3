"""Max pooling over NHWC images.

The forward pass records, for every output cell, which cell of its window
held the maximum (``argmax``, an index ``a * pw + b`` inside the window; the
first one in row-major order on ties, as TensorFlow does). The backward pass
sends each output gradient to that cell; overlapping windows add up.
With 'same' padding the padded cells never win: they count as -inf.

Shapes::

    x      : (n, h, w, c)
    out    : (n, oh, ow, c)
    argmax : (n, oh, ow, c) int8 (int32 for windows of more than 127 cells):
             a quarter of the memory of int32 for the usual small windows
"""
import numpy as np
from numba import njit

from .geometry import window_geometry
from . import parallel
from .parallel import image_chunks, run_chunks


def _geometry(x_shape, pool_size, strides, padding):
    _, h, w, _ = x_shape
    ph, pw = pool_size
    sh, sw = strides
    oh, pt, _ = window_geometry(h, ph, sh, padding)
    ow, pl, _ = window_geometry(w, pw, sw, padding)
    return ph, pw, sh, sw, pt, pl, oh, ow


def _index_dtype(ph, pw):
    """The smallest integer type for a window index (0 .. ph*pw - 1)."""
    return np.int8 if ph * pw <= 127 else np.int32


# ---------------------------------------------------------------- NumPy twins
def _maxpool_forward_numpy(x, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x.shape
    pb = max((oh - 1) * sh + ph - h - pt, 0)
    pr = max((ow - 1) * sw + pw - w - pl, 0)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (ph, pw), axis=(1, 2))
    win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # (n, oh, ow, c, ph, pw)
    flat = win.reshape(n, oh, ow, c, ph * pw)
    argmax = flat.argmax(axis=-1).astype(_index_dtype(ph, pw))  # first maximum on ties
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, argmax


def _maxpool_backward_numpy(dout, argmax, x_shape, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x_shape
    hp = max((oh - 1) * sh + ph, h + pt)
    wp = max((ow - 1) * sw + pw, w + pl)
    dxp = np.zeros((n, hp, wp, c), dtype=dout.dtype)
    for a in range(ph):
        for b in range(pw):
            routed = np.where(argmax == a * pw + b, dout, 0)
            dxp[:, a : a + (oh - 1) * sh + 1 : sh, b : b + (ow - 1) * sw + 1 : sw] += routed
    return dxp[:, pt : pt + h, pl : pl + w]


# ---------------------------------------------------------------- numba kernels
@njit(cache=True, nogil=True)
def _maxpool_forward_into(x, ph, pw, sh, sw, pt, pl, oh, ow, out, argmax):
    """Fill ``out`` and ``argmax`` (n, oh, ow, c) for the images of ``x``."""
    n, h, w, c = x.shape
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                best = out[img, i, j]
                where = argmax[img, i, j]
                best[:] = -np.inf
                where[:] = 0
                for a in range(ph):
                    y = i * sh - pt + a
                    if y < 0 or y >= h:
                        continue
                    for b in range(pw):
                        xx = j * sw - pl + b
                        if xx < 0 or xx >= w:
                            continue
                        row = x[img, y, xx]
                        for ch in range(c):  # channels innermost: contiguous in NHWC
                            if row[ch] > best[ch]:  # strict: the first maximum wins ties
                                best[ch] = row[ch]
                                where[ch] = a * pw + b


@njit(cache=True, nogil=True)
def _maxpool_backward_into(dout, argmax, ph, pw, sh, sw, pt, pl, oh, ow, dx):
    """Route each output gradient to its maximum in ``dx`` (n, h, w, c), zeros elsewhere."""
    if sh == ph and sw == pw:
        unpool_relu_into(dout, argmax, ph, pw, pt, pl, None, dx)
        return
    n, h, w, c = dx.shape
    dx[:] = 0
    for img in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    k = argmax[img, i, j, ch]
                    dx[img, i * sh - pt + k // pw, j * sw - pl + k % pw, ch] += dout[img, i, j, ch]


@njit(cache=True, nogil=True)
def unpool_relu_into(dpool, argmax, ph, pw, pt, pl, passes, dz):
    """Max-pool's backward for windows that tile the image (stride = pool
    size, the usual 2x2), with the ReLU's below it in the same pass: ``dz``
    (n, h, w, c) gets each pooled gradient at its window's maximum where
    ReLU passed (``passes`` > 0: its bool mask or its output; None: no ReLU,
    the pool's backward alone), and zero everywhere else. Every cell lies
    in one window at most, so each is written once, with no zeroing pass
    first and no division to find the winner's place. The twin is
    :func:`maxpool_backward`'s NumPy path, then
    :func:`kernels.activations.relu_backward_numpy`."""
    n, h, w, c = dz.shape
    oh, ow = dpool.shape[1], dpool.shape[2]
    zero = dz.dtype.type(0)
    for img in range(n):
        if oh * ph - pt < h or ow * pw - pl < w:  # some cells no window covers ('valid', odd sizes)
            dz[img] = 0
        for i in range(oh):
            for a in range(ph):
                y = i * ph - pt + a
                if y < 0 or y >= h:
                    continue
                for j in range(ow):
                    for b in range(pw):
                        xx = j * pw - pl + b
                        if xx < 0 or xx >= w:
                            continue
                        k = a * pw + b
                        if passes is None:  # (decided when compiled)
                            for ch in range(c):
                                won = argmax[img, i, j, ch] == k
                                dz[img, y, xx, ch] = dpool[img, i, j, ch] if won else zero
                        else:
                            for ch in range(c):
                                won = argmax[img, i, j, ch] == k and passes[img, y, xx, ch] > 0
                                dz[img, y, xx, ch] = dpool[img, i, j, ch] if won else zero
    return dz


def tiles_the_image(cache):
    """Whether a max-pool's windows tile its input (stride = pool size) on
    the compiled path: then :func:`unpool_relu_into` can stand for its
    backward and a ReLU's below it."""
    _, _, geometry, impl = cache
    ph, pw, sh, sw = geometry[:4]
    return impl == "numba" and (sh, sw) == (ph, pw)


def _image_chunks(n):
    # a few images a chunk: pooling streams through memory, any split works
    return image_chunks(n, max(1, -(-n // (4 * parallel.WORKERS))))


# ---------------------------------------------------------------- public API
def maxpool_forward(x, pool_size=(2, 2), strides=None, padding="valid", impl="numba"):
    """Max pooling.

    Parameters
    ----------
    x : ndarray, shape (n, h, w, c)
    pool_size : (int, int)
    strides : (int, int) or None
        None means the pool size, as in Keras.
    padding : {'valid', 'same'}
    impl : {'numba', 'numpy'}

    Returns
    -------
    out : ndarray, shape (n, oh, ow, c)
    cache : tuple
    """
    strides = tuple(pool_size) if strides is None else tuple(strides)
    geometry = _geometry(x.shape, tuple(pool_size), strides, padding)
    if impl == "numba":
        x = np.ascontiguousarray(x)
        n, _, _, c = x.shape
        oh, ow = geometry[-2:]
        out = np.empty((n, oh, ow, c), dtype=x.dtype)
        argmax = np.empty((n, oh, ow, c), dtype=_index_dtype(*geometry[:2]))

        def work(group):
            for _, start, stop in group:
                _maxpool_forward_into(x[start:stop], *geometry, out[start:stop], argmax[start:stop])

        run_chunks(work, _image_chunks(n))
    else:
        out, argmax = _maxpool_forward_numpy(x, *geometry)
    return out, (x.shape, argmax, geometry, impl)


def maxpool_backward(dout, cache):
    """Gradient of max pooling with respect to its input.

    Parameters
    ----------
    dout : ndarray, shape (n, oh, ow, c)

    Returns
    -------
    dx : ndarray, shape (n, h, w, c)
    """
    x_shape, argmax, geometry, impl = cache
    if impl == "numba":
        dout = np.ascontiguousarray(dout)
        dx = np.empty(x_shape, dtype=dout.dtype)

        def work(group):
            for _, start, stop in group:
                _maxpool_backward_into(dout[start:stop], argmax[start:stop], *geometry, dx[start:stop])

        run_chunks(work, _image_chunks(x_shape[0]))
        return dx
    return _maxpool_backward_numpy(dout, argmax, x_shape, *geometry)


# ================================================================ average pooling
# Each output is the mean of its window's cells inside the image: with 'same'
# padding the padded cells are left out of the count, as TensorFlow does (a
# corner window of a 2x2 pool over an odd edge averages 1 or 2 cells, not 4).
# The backward pass spreads each output gradient evenly over those cells.

def _avgpool_forward_numpy(x, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x.shape
    pb = max((oh - 1) * sh + ph - h - pt, 0)
    pr = max((ow - 1) * sw + pw - w - pl, 0)
    pads = ((0, 0), (pt, pb), (pl, pr), (0, 0))
    sums = np.lib.stride_tricks.sliding_window_view(np.pad(x, pads), (ph, pw), axis=(1, 2))
    counts = np.lib.stride_tricks.sliding_window_view(np.pad(np.ones((1, h, w, 1), x.dtype), pads), (ph, pw), axis=(1, 2))
    sums = sums[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw].sum(axis=(-2, -1))
    counts = counts[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw].sum(axis=(-2, -1))
    return (sums / counts).astype(x.dtype, copy=False)


def _avgpool_backward_numpy(dout, x_shape, ph, pw, sh, sw, pt, pl, oh, ow):
    n, h, w, c = x_shape
    hp = max((oh - 1) * sh + ph, h + pt)
    wp = max((ow - 1) * sw + pw, w + pl)
    inside = np.zeros((1, hp, wp, 1), dout.dtype)
    inside[:, pt:pt + h, pl:pl + w] = 1
    counts = np.lib.stride_tricks.sliding_window_view(inside, (ph, pw), axis=(1, 2))
    counts = counts[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw].sum(axis=(-2, -1))
    share = dout / counts
    dxp = np.zeros((n, hp, wp, c), dtype=dout.dtype)
    for a in range(ph):
        for b in range(pw):
            dxp[:, a : a + (oh - 1) * sh + 1 : sh, b : b + (ow - 1) * sw + 1 : sw] += share
    return dxp[:, pt : pt + h, pl : pl + w]


@njit(cache=True, nogil=True)
def _window_span(i, stride, pad, window, size):
    """The first and one-past-last input index of window ``i`` inside the image."""
    start = i * stride - pad
    return max(start, 0), min(start + window, size)


@njit(cache=True, nogil=True)
def _avgpool_forward_into(x, ph, pw, sh, sw, pt, pl, oh, ow, out):
    n, h, w, c = x.shape
    for img in range(n):
        for i in range(oh):
            y0, y1 = _window_span(i, sh, pt, ph, h)
            for j in range(ow):
                x0, x1 = _window_span(j, sw, pl, pw, w)
                mean = out[img, i, j]
                mean[:] = 0
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        row = x[img, y, xx]
                        for ch in range(c):  # channels innermost: contiguous in NHWC
                            mean[ch] += row[ch]
                inv = 1.0 / ((y1 - y0) * (x1 - x0))
                for ch in range(c):
                    mean[ch] *= inv


@njit(cache=True, nogil=True)
def _avgpool_backward_into(dout, ph, pw, sh, sw, pt, pl, oh, ow, dx):
    n, h, w, c = dx.shape
    dx[:] = 0
    for img in range(n):
        for i in range(oh):
            y0, y1 = _window_span(i, sh, pt, ph, h)
            for j in range(ow):
                x0, x1 = _window_span(j, sw, pl, pw, w)
                inv = 1.0 / ((y1 - y0) * (x1 - x0))
                g = dout[img, i, j]
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        target = dx[img, y, xx]
                        for ch in range(c):
                            target[ch] += g[ch] * inv


def avgpool_forward(x, pool_size=(2, 2), strides=None, padding="valid", impl="numba"):
    """Average pooling; shapes as :func:`maxpool_forward`.

    Returns
    -------
    out : ndarray, shape (n, oh, ow, c)
    cache : tuple (x's shape, geometry, impl)
    """
    strides = tuple(pool_size) if strides is None else tuple(strides)
    geometry = _geometry(x.shape, tuple(pool_size), strides, padding)
    if impl == "numba":
        x = np.ascontiguousarray(x)
        n, _, _, c = x.shape
        out = np.empty((n, *geometry[-2:], c), dtype=x.dtype)

        def work(group):
            for _, start, stop in group:
                _avgpool_forward_into(x[start:stop], *geometry, out[start:stop])

        run_chunks(work, _image_chunks(n))
    else:
        out = _avgpool_forward_numpy(x, *geometry)
    return out, (x.shape, geometry, impl)


def avgpool_backward(dout, cache):
    """Gradient of average pooling with respect to its input, (n, h, w, c)."""
    x_shape, geometry, impl = cache
    if impl == "numba":
        dout = np.ascontiguousarray(dout)
        dx = np.empty(x_shape, dtype=dout.dtype)

        def work(group):
            for _, start, stop in group:
                _avgpool_backward_into(dout[start:stop], *geometry, dx[start:stop])

        run_chunks(work, _image_chunks(x_shape[0]))
        return dx
    return _avgpool_backward_numpy(dout, x_shape, *geometry)


POOL_IMPLS = ("numba", "numpy")
