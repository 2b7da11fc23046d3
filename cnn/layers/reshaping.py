"""Reshaping layers: Flatten, Reshape, ZeroPadding2D."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last, sides


class Flatten(Layer):
    """Flatten each sample to one axis, in C order (as Keras does for NHWC).

    Shapes: x (n, d1, d2, ...) -> out (n, d1 * d2 * ...).
    """

    examples = (Example("", {}, (3, 4, 2)),)

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self._check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape((dout.shape[0], *self.input_shape))


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1), in C order.

    Shapes: x (n, *input_shape) -> out (n, *target_shape); the sizes must agree.
    """

    examples = (Example("", {"target_shape": (6, 4)}, (3, 4, 2)),
                Example("with -1", {"target_shape": (-1, 2)}, (3, 4, 2)))

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(target_shape, (tuple, list)) or not target_shape or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d < 1 and d != -1)
                for d in target_shape) or list(target_shape).count(-1) > 1:
            raise InputError(f"Reshape target_shape must be positive ints with at most one -1, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape)) != size:
            raise InputError(f"Reshape layer {self.name!r}: cannot reshape samples of {tuple(input_shape)} "
                             f"({size} values) to {self.target_shape}")
        return shape

    def forward(self, x, training=False):
        self._check_input(x)
        return x.reshape((x.shape[0], *self.output_shape))

    def backward(self, dout):
        return dout.reshape((dout.shape[0], *self.input_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class ZeroPadding2D(Layer):
    """Add rows and columns of zeros around each image.

    Parameters
    ----------
    padding : int, (rows, cols) or ((top, bottom), (left, right))

    Shapes: x (n, h, w, c) -> out (n, h + top + bottom, w + left + right, c).
    """

    examples = (Example("((1, 0), (2, 1))", {"padding": ((1, 0), (2, 1))}, (3, 3, 2)),
                Example("1", {"padding": 1}, (3, 4, 2)))

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.padding = sides(padding, "ZeroPadding2D padding")

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        (t, b), (l, r) = self.padding
        return (input_shape[0] + t + b, input_shape[1] + l + r, input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        return np.pad(x, ((0, 0), *self.padding, (0, 0)))

    def backward(self, dout):
        (t, _), (l, _) = self.padding
        h, w = self.input_shape[:2]
        return np.ascontiguousarray(dout[:, t:t + h, l:l + w])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}
