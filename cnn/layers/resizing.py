"""Resizing: images brought to one size inside the model (preprocessing)."""
from kernels.resample import resize_backward, resize_forward

from ..errors import InputError
from .base import Example, Layer, channels_last, positive_int

INTERPOLATIONS = ("bilinear", "nearest")


class Resizing(Layer):
    """Resize each image to (height, width), as ``keras.layers.Resizing``, in
    training and at inference alike: TensorFlow's ``tf.image.resize`` without
    antialiasing (half-pixel centres), bilinear or nearest. Linear in the
    image, so the input gradient is the transposed resize.

    Parameters
    ----------
    height, width : ints
    interpolation : 'bilinear' (Keras's default) or 'nearest'; the others refused
    crop_to_aspect_ratio, pad_to_aspect_ratio : False only (refused otherwise)

    Shapes: x (n, h, w, c) -> out (n, height, width, c).
    """

    keras_defaults = {"crop_to_aspect_ratio": False, "pad_to_aspect_ratio": False, "fill_mode": "constant",
                      "fill_value": 0.0, "antialias": False}
    examples = (Example("up, bilinear", {"height": 7, "width": 5}, (3, 4, 2), reduction=4),
                Example("down, bilinear", {"height": 3, "width": 2}, (7, 5, 2), reduction=4),
                Example("nearest", {"height": 5, "width": 3, "interpolation": "nearest"}, (3, 6, 2)))

    def __init__(self, height, width, interpolation="bilinear", data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.height, self.width = positive_int(height, "height"), positive_int(width, "width")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"Resizing: interpolation={interpolation!r} is not supported "
                             f"(only {', '.join(map(repr, INTERPOLATIONS))})")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InputError(f"Resizing layer {self.name!r} needs samples (height, width, channels), "
                             f"got {tuple(input_shape)}")
        return (self.height, self.width, input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        out, self._cache = resize_forward(x, self.height, self.width, self.interpolation)
        return out

    def backward(self, dout):
        return resize_backward(dout, self._cache)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}
