"""RandomFlip: images mirrored at random in training (augmentation)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last

MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(Layer):
    """Mirror each image at random while training, as ``keras.layers.RandomFlip``;
    the identity at inference.

    For each image one number is drawn uniformly from [0, 1) (from the
    layer's generator, which ``cnn.set_seed`` or ``seed=`` fixes); at most
    0.5 flips it: left to right for 'horizontal', top to bottom for
    'vertical', both at once for 'horizontal_and_vertical' (Keras's default,
    one draw for both, as Keras). A flip is its own adjoint: the input
    gradient is the output's, flipped back the same way.

    Parameters
    ----------
    mode : 'horizontal', 'vertical' or 'horizontal_and_vertical'
    seed : None or an int (a generator of the layer's own)

    Shapes: x (n, h, w, c) -> out the same.
    """

    uses_rng = True
    random_in_training = True  # Keras draws its own flips: compared with Keras at inference only
    examples = (Example("horizontal (training)", {"mode": "horizontal", "seed": 3}, (3, 4, 2), training=True),
                Example("both (training)", {"seed": 5}, (3, 4, 2), training=True),
                Example("vertical (inference)", {"mode": "vertical"}, (3, 4, 2)))

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        if mode not in MODES:
            raise InputError(f"RandomFlip: mode={mode!r} must be one of {', '.join(map(repr, MODES))}")
        self.mode = mode
        self._own_seed(seed)
        self._flips = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return tuple(input_shape)

    def _flip(self, x):
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]
        return np.where(self._flips, np.flip(x, axis=axes), x)

    def forward(self, x, training=False):
        self._check_input(x)
        if not training:
            self._flips = None
            return x
        self._flips = (self.rng.random(x.shape[0]) <= 0.5).reshape(-1, 1, 1, 1)
        return self._flip(x)

    def backward(self, dout):
        return dout if self._flips is None else self._flip(dout)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}
