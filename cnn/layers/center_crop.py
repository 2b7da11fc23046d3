"""CenterCrop: the middle of each image, of a given size (preprocessing)."""
import numpy as np

from kernels.resample import aspect_box, crop_resize_forward, resize_backward

from .base import Example, Layer, channels_last, positive_int


class CenterCrop(Layer):
    """Cut the central (height, width) region of each image, as
    ``keras.layers.CenterCrop``, in training and at inference: it starts at
    row (h - height) // 2 and column (w - width) // 2 (an odd leftover row
    or column at the bottom/right). An image smaller than the crop in either
    direction is resized instead, as Keras's ``smart_resize``: the largest
    centred region with the crop's aspect ratio
    (:func:`kernels.resample.aspect_box`), bilinear to (height, width).

    Shapes: x (n, h, w, c) -> out (n, height, width, c); the gradient is the
    output's with zeros where the cut cells were (or the resize's transpose).
    """

    examples = (Example("even", {"height": 2, "width": 4}, (4, 6, 2)),
                Example("odd leftovers", {"height": 3, "width": 2}, (6, 5, 2)),
                Example("smaller image: resized", {"height": 5, "width": 3}, (4, 6, 2), reduction=4))

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.height, self.width = positive_int(height, "height"), positive_int(width, "width")
        self._cache = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return (self.height, self.width, input_shape[2])

    def _start(self):
        h, w = self.input_shape[:2]
        return (h - self.height) // 2, (w - self.width) // 2

    def forward(self, x, training=False):
        self._check_input(x)
        h, w = x.shape[1:3]
        if h < self.height or w < self.width:
            box = aspect_box(h, w, self.height, self.width)
            out, self._cache = crop_resize_forward(x, box, self.height, self.width)
            return out
        self._cache = None
        top, left = self._start()
        return np.ascontiguousarray(x[:, top:top + self.height, left:left + self.width])

    def backward(self, dout):
        if self._cache is not None:
            return resize_backward(dout, self._cache)
        (top, left), (h, w) = self._start(), self.input_shape[:2]
        return np.pad(dout, ((0, 0), (top, h - top - self.height), (left, w - left - self.width), (0, 0)))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
