"""Rescaling: ``x * scale + offset`` inside the model (the tutorials' ``1 / 255``)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, number


class Rescaling(Layer):
    """Multiply by ``scale`` and add ``offset``, as ``keras.layers.Rescaling``,
    in training and at inference alike.

    Parameters
    ----------
    scale, offset : numbers, or lists of one per channel (the last axis);
        as Keras 3 (which turns the Python numbers into float32 tensors
        before casting them to the layer's dtype), they are rounded to
        float32 first, so a float64 model computes what Keras's does

    Shapes: any, unchanged.
    """

    examples = (Example("1 / 255", {"scale": 1 / 255}, (4, 4, 2)),
                Example("to [-1, 1]", {"scale": 1 / 127.5, "offset": -1.0}, (4, 4, 2)),
                Example("per channel", {"scale": [0.5, 2.0, -1.0], "offset": [0.1, 0.0, 0.3]}, (3, 2, 3)))

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = self._factor(scale, "scale"), self._factor(offset, "offset")

    @staticmethod
    def _factor(value, what):
        if isinstance(value, (list, tuple)):
            if not value:
                raise InputError(f"Rescaling {what} must be a number or a non-empty list of numbers")
            return [number(v, f"Rescaling {what}") for v in value]
        return number(value, f"Rescaling {what}")

    def compute_output_shape(self, input_shape):
        for what, value in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(value, list) and len(value) not in (1, input_shape[-1]):
                raise InputError(f"Rescaling layer {self.name!r}: {len(value)} {what} values for samples of "
                                 f"{tuple(input_shape)} ({input_shape[-1]} channels)")
        return tuple(input_shape)

    @staticmethod
    def _as(value, dtype):
        return np.asarray(value, dtype=np.float32).astype(dtype)  # Keras's float32 rounding, see above

    def forward(self, x, training=False):
        self._check_input(x)
        out = x * self._as(self.scale, x.dtype) + self._as(self.offset, x.dtype)
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        return (dout * self._as(self.scale, dout.dtype)).astype(dout.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
