"""UpSampling2D: images made larger by whole factors (kernels in :mod:`kernels.resample`)."""
from kernels.resample import bilinear_backward, bilinear_forward, nearest_backward, nearest_forward

from ..errors import InputError
from .base import Example, Layer, channels_last, pair

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Repeat (or interpolate) each image to ``size`` times its height and
    width, as ``keras.layers.UpSampling2D``.

    Parameters
    ----------
    size : int or (int, int)
    interpolation : 'nearest' (each pixel repeated in a block; its gradient
        sums the block) or 'bilinear' (TensorFlow's half-pixel weights, as
        Keras 3); Keras's 'bicubic', 'lanczos3', 'lanczos5' and 'area' are refused

    Shapes: x (n, h, w, c) -> out (n, h * size_h, w * size_w, c).
    """

    examples = (Example("2x2 nearest", {}, (3, 4, 2)),
                Example("(3, 2) nearest", {"size": (3, 2)}, (2, 3, 2)),
                Example("2x2 bilinear", {"interpolation": "bilinear"}, (3, 4, 2), reduction=4),
                Example("(3, 2) bilinear", {"size": (3, 2), "interpolation": "bilinear"}, (3, 3, 2), reduction=4))

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.size = pair(size, "size")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"UpSampling2D: interpolation={interpolation!r} is not supported "
                             f"(only {', '.join(map(repr, INTERPOLATIONS))})")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        if self.interpolation == "nearest":
            out, self._cache = nearest_forward(x, self.size)
        else:
            out, self._cache = bilinear_forward(x, *self.output_shape[:2])
        return out

    def backward(self, dout):
        if self.interpolation == "nearest":
            return nearest_backward(dout, self._cache)
        return bilinear_backward(dout, self._cache)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "interpolation": self.interpolation}
