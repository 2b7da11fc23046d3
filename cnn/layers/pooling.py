"""Pooling: max and average over windows (one class, two modes, as in Keras's
``base_pooling``), and their global forms over the whole image."""
import numpy as np

from kernels.pool import POOL_IMPLS, avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward

from ..errors import InputError
from .base import Example, Layer, channels_last, pair, padding_mode, sliding_output

_KERNELS = {"max": (maxpool_forward, maxpool_backward), "average": (avgpool_forward, avgpool_backward)}


class Pooling2D(Layer, register=False):
    """Pooling over NHWC images; ``pool_mode`` 'max' or 'average'.

    Parameters
    ----------
    pool_size : int or (int, int)
    strides : int, (int, int) or None
        None (the default) means the pool size, as in Keras.
    padding : {'valid', 'same'}
        With 'same', padded cells never win a max and are left out of an
        average's count (TensorFlow's rule).
    impl : {'numba', 'numpy'}

    Shapes: x (n, h, w, c) -> out (n, oh, ow, c).
    """

    pool_mode = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, impl="numba", **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = padding_mode(padding)
        if impl not in POOL_IMPLS:
            raise InputError(f"impl must be one of {POOL_IMPLS}, got {impl!r}")
        self.impl = impl

    def compute_output_shape(self, input_shape):
        return (*sliding_output(self, input_shape, self.pool_size), input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        forward, _ = _KERNELS[self.pool_mode]
        out, self._cache = forward(x, self.pool_size, self.strides, self.padding, self.impl)
        return out

    def backward(self, dout):
        _, backward = _KERNELS[self.pool_mode]
        return backward(dout, self._cache)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(Pooling2D):
    """The largest value of each window (the first one on ties, as TensorFlow)."""

    pool_mode = "max"
    examples = (Example("2x2", {"pool_size": 2}, (6, 6, 3)),
                Example("3x3 stride 2 'same'", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 2)),
                Example("2x2 [numpy]", {"pool_size": 2, "impl": "numpy"}, (5, 6, 2)))


class AveragePooling2D(Pooling2D):
    """The mean of each window's cells inside the image."""

    pool_mode = "average"
    examples = (Example("2x2", {"pool_size": 2}, (6, 6, 3), reduction=4),
                Example("3x3 stride 2 'same'", {"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 2),
                        reduction=9),
                Example("2x3 stride 1 [numpy]", {"pool_size": (2, 3), "strides": 1, "impl": "numpy"}, (5, 6, 2),
                        reduction=6))


class GlobalPooling2D(Layer, register=False):
    """One value per channel from the whole image.

    Parameters
    ----------
    keepdims : bool, keep the (1, 1) spatial axes (Keras's default False)

    Shapes: x (n, h, w, c) -> out (n, c), or (n, 1, 1, c) with ``keepdims``.
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InputError(f"{type(self).__name__} layer {self.name!r} needs samples (height, width, "
                             f"channels), got {tuple(input_shape)}")
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def forward(self, x, training=False):
        self._check_input(x)
        out = self._reduce(x)  # (n, 1, 1, c)
        return out if self.keepdims else out.reshape(x.shape[0], -1)

    def backward(self, dout):
        return self._spread(dout.reshape(dout.shape[0], 1, 1, -1))

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(GlobalPooling2D):
    """The mean of each channel over the image."""

    examples = (Example("", {}, (4, 5, 3), reduction=20),
                Example("keepdims", {"keepdims": True}, (4, 5, 3), reduction=20))

    def _reduce(self, x):
        self._hw = x.shape[1:3]
        return x.mean(axis=(1, 2), keepdims=True, dtype=x.dtype)

    def _spread(self, dout):
        h, w = self._hw
        return np.broadcast_to(dout / (h * w), (dout.shape[0], h, w, dout.shape[3])).copy()


class GlobalMaxPooling2D(GlobalPooling2D):
    """The largest value of each channel. Its gradient is shared equally by
    tied maxima, as TensorFlow's ``reduce_max`` shares it."""

    examples = (Example("", {}, (4, 5, 3)), Example("keepdims", {"keepdims": True}, (4, 5, 3)))

    def _reduce(self, x):
        out = x.max(axis=(1, 2), keepdims=True)
        self._winners = x == out
        return out

    def _spread(self, dout):
        winners = self._winners
        return (winners * (dout / winners.sum(axis=(1, 2), keepdims=True))).astype(dout.dtype, copy=False)
