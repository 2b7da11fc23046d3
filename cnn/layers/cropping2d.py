"""Cropping2D: rows and columns cut from the edges of each image (a U-Net's
skip connection cropped to the upsampled size)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last, sides


class Cropping2D(Layer):
    """Cut rows and columns from the edges of each image, as ``keras.layers.Cropping2D``.

    Parameters
    ----------
    cropping : int, (rows, cols) or ((top, bottom), (left, right)); default none

    Shapes: x (n, h, w, c) -> out (n, h - top - bottom, w - left - right, c).
    Its gradient is the output's, with zeros where the cut cells were.
    """

    examples = (Example("((1, 0), (2, 1))", {"cropping": ((1, 0), (2, 1))}, (4, 5, 2)),
                Example("1", {"cropping": 1}, (4, 3, 2)))

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.cropping = sides(cropping, "Cropping2D cropping")

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        (t, b), (l, r) = self.cropping
        h, w = input_shape[0] - t - b, input_shape[1] - l - r
        if h < 1 or w < 1:
            raise InputError(f"Cropping2D layer {self.name!r}: cropping {self.cropping} leaves nothing of "
                             f"{tuple(input_shape[:2])} images")
        return (h, w, input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        (t, _), (l, _) = self.cropping
        h, w = self.output_shape[:2]
        return np.ascontiguousarray(x[:, t:t + h, l:l + w])

    def backward(self, dout):
        (t, b), (l, r) = self.cropping
        return np.pad(dout, ((0, 0), (t, b), (l, r), (0, 0)))

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}
