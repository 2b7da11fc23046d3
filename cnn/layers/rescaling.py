"""Rescaling: ``x * scale + offset`` inside the model (the tutorials' ``1 / 255``)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, number


class Rescaling(Layer):
    """Multiply by ``scale`` and add ``offset``, as ``keras.layers.Rescaling``,
    in training and at inference alike.

    Parameters
    ----------
    scale, offset : numbers, or lists of one per channel (the last axis)

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

    def forward(self, x, training=False):
        self._check_input(x)
        out = x * np.asarray(self.scale, dtype=x.dtype) + np.asarray(self.offset, dtype=x.dtype)
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        return (dout * np.asarray(self.scale, dtype=dout.dtype)).astype(dout.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
