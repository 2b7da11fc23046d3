"""SpatialDropout2D: whole feature maps dropped at once."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last, number


class SpatialDropout2D(Layer):
    """Inverted dropout of whole channels, as ``keras.layers.SpatialDropout2D``:
    in training each (image, channel) map is zeroed with probability ``rate``
    and the kept ones scaled by 1 / (1 - rate); at inference, the identity.
    (Neighbouring pixels of a map are correlated, so dropping single values,
    as :class:`Dropout` does, hardly regularizes a convolution's output.)

    Shapes: x (n, h, w, c) -> out the same; the mask is (n, 1, 1, c).
    """

    uses_rng = True
    keras_defaults = {"seed": None}
    keras_omits = ("trainable",)  # Keras's SpatialDropout2D takes no trainable= (its config has none)
    random_in_training = True  # a mask Keras draws its own way: compared with Keras at inference only
    examples = (Example("0.5 (training)", {"rate": 0.5}, (3, 3, 6), training=True),
                Example("0.3 (inference)", {"rate": 0.3}, (3, 3, 4)))

    def __init__(self, rate, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.rate = number(rate, "rate", 0, 1)
        if self.rate >= 1:
            raise InputError(f"SpatialDropout2D rate must be in [0, 1), got {rate!r}")
        self._keep = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        if not training or self.rate == 0:
            self._keep = None
            return x
        n, c = x.shape[0], x.shape[3]
        kept = self.rng.random((n, 1, 1, c), dtype=np.float32) >= self.rate
        self._keep = kept.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self._keep

    def backward(self, dout):
        return dout if self._keep is None else dout * self._keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
