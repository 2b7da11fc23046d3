"""Resizing: images brought to one size inside the model (preprocessing)."""
import numpy as np

from kernels.resample import aspect_box, crop_resize_forward, resize_backward, resize_forward

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
    crop_to_aspect_ratio : resize the largest centred region with the
        aspect ratio height : width instead of the whole image (Keras's
        box: :func:`kernels.resample.aspect_box`), so nothing is stretched
    pad_to_aspect_ratio : False only (refused otherwise)

    Shapes: x (n, h, w, c) -> out (n, height, width, c).
    """

    keras_defaults = {"pad_to_aspect_ratio": False, "fill_mode": "constant",
                      "fill_value": 0.0, "antialias": False}
    examples = (Example("up, bilinear", {"height": 7, "width": 5}, (3, 4, 2), reduction=4),
                Example("down, bilinear", {"height": 3, "width": 2}, (7, 5, 2), reduction=4),
                Example("nearest", {"height": 5, "width": 3, "interpolation": "nearest"}, (3, 6, 2)),
                Example("cropped to the aspect ratio", {"height": 3, "width": 3, "crop_to_aspect_ratio": True},
                        (4, 7, 2), reduction=4))

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.height, self.width = positive_int(height, "height"), positive_int(width, "width")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"Resizing: interpolation={interpolation!r} is not supported "
                             f"(only {', '.join(map(repr, INTERPOLATIONS))})")
        self.interpolation = interpolation
        if not isinstance(crop_to_aspect_ratio, (bool, np.bool_)):
            raise InputError(f"Resizing: crop_to_aspect_ratio must be True or False, got {crop_to_aspect_ratio!r}")
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return (self.height, self.width, input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        if self.crop_to_aspect_ratio:
            box = aspect_box(x.shape[1], x.shape[2], self.height, self.width)
            out, self._cache = crop_resize_forward(x, box, self.height, self.width, self.interpolation)
        else:
            out, self._cache = resize_forward(x, self.height, self.width, self.interpolation)
        return out

    def backward(self, dout):
        return resize_backward(dout, self._cache)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio}
