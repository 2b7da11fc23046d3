"""RandomCrop: a random window of each batch in training (augmentation)."""
import numpy as np

from kernels.resample import aspect_box, crop_resize_forward, resize_backward

from .base import Example, Layer, channels_last, positive_int


class RandomCrop(Layer):
    """Crop a random (height, width) window while training, as
    ``keras.layers.RandomCrop``: one window for the whole batch (Keras's
    choice), its top row drawn as ``int(uniform(0, h - height + 1))`` and its
    left column likewise, from the layer's generator (``cnn.set_seed`` or
    ``seed=``).

    That draw needs an image larger than the window in both directions. In
    training otherwise, as Keras 3 does: from the top-left corner of the
    largest centred region with the window's aspect ratio
    (:func:`kernels.resample.aspect_box`), a (height, width) window is cut,
    and resized bilinear to (height, width) when the image ends first.

    At inference, the largest centred region with the window's aspect ratio,
    resized bilinear to (height, width) (Keras's ``smart_resize``, what its
    documentation promises and its output shape says). Keras 3.15 returns
    the input unchanged there (keras-team/keras#21868), which no layer after
    it can take; the engine does not copy that.

    Shapes: x (n, h, w, c) -> out (n, height, width, c). The input gradient
    is the output's at the window's cells (zero elsewhere), or the resize's
    transpose.
    """

    uses_rng = True
    keras_inference_differs = "keras-team/keras#21868: Keras 3.15 returns the input unchanged at inference"
    examples = (Example("a random window (training)", {"height": 3, "width": 4, "seed": 2}, (5, 7, 2),
                        training=True, keras=False),  # Keras draws its own window: the tests check the draws
                Example("as high as the window: Keras's centred box (training)", {"height": 4, "width": 3, "seed": 1},
                        (4, 6, 2), training=True),
                Example("smaller than the window: resized (training)", {"height": 5, "width": 4, "seed": 1}, (3, 6, 2),
                        training=True, reduction=4),
                Example("inference: the centred box resized", {"height": 3, "width": 4}, (6, 5, 2), reduction=4,
                        keras=False))  # Keras 3.15 returns its input here: checked against Resizing instead

    # a Keras file without a seed gets one Keras draws (make_default_seed); the engine keeps it
    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.height, self.width = positive_int(height, "height"), positive_int(width, "width")
        self._own_seed(seed)
        self.last_window = None
        self._cache = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return (self.height, self.width, input_shape[2])

    def window(self, h, w, training):
        """(top, left, rows, cols): the region of an h x w image this call reads
        (drawn when training on a larger image)."""
        if training and h > self.height and w > self.width:
            top = min(int(self.rng.uniform(0, h - self.height + 1)), h - self.height)
            left = min(int(self.rng.uniform(0, w - self.width + 1)), w - self.width)
            return top, left, self.height, self.width
        top, left, rows, cols = aspect_box(h, w, self.height, self.width)
        if training:  # Keras 3 cuts (height, width) from the box's corner, as far as the image goes
            rows, cols = min(self.height, h - top), min(self.width, w - left)
        return top, left, rows, cols

    def forward(self, x, training=False):
        self._check_input(x)
        h, w = x.shape[1:3]
        self.last_window = top, left, rows, cols = self.window(h, w, training)
        if (rows, cols) == (self.height, self.width):
            self._cache = None
            return np.ascontiguousarray(x[:, top:top + rows, left:left + cols])
        out, self._cache = crop_resize_forward(x, self.last_window, self.height, self.width)
        return out

    def backward(self, dout):
        if self._cache is not None:
            return resize_backward(dout, self._cache)
        (top, left, rows, cols), (h, w) = self.last_window, self.input_shape[:2]
        return np.pad(dout, ((0, 0), (top, h - top - rows), (left, w - left - cols), (0, 0)))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "seed": self.seed}
