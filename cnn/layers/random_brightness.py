"""RandomBrightness: each image made brighter or darker at random in training (augmentation)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last, number


class RandomBrightness(Layer):
    """Add a random amount to every value of an image while training, as
    ``keras.layers.RandomBrightness``; the identity at inference::

        out = clip(x + delta * (high - low), low, high),   (low, high) = value_range

    one delta per image, drawn uniformly from ``[lower, upper]``: a number f
    gives (-|f|, |f|), a pair its two values in order, each within [-1, 1]
    (-1 turns an image black, 1 white), as Keras 3 reads the factor.

    Parameters
    ----------
    factor : number in [-1, 1] or (lower, upper)
    value_range : (low, high) of the input's values (default (0, 255)); the output is clipped to it
    seed : None or an int (a generator of the layer's own)

    The input gradient is the output's where the output was not clipped, 0 where it was.
    """

    uses_rng = True
    random_in_training = True  # Keras draws its own deltas: compared with Keras at inference only
    examples = (Example("0.2 (training)", {"factor": 0.2, "value_range": (-3, 3), "seed": 1}, (4, 5, 2),
                        training=True),
                Example("(-0.6, 0.9) clipped (training)", {"factor": (-0.6, 0.9), "value_range": (0, 1), "seed": 2},
                        (3, 4, 2), training=True),
                Example("(inference)", {"factor": 0.5}, (3, 3, 1)))

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        if isinstance(factor, (list, tuple)):
            if len(factor) != 2:
                raise InputError(f"RandomBrightness: factor must be a number or a pair (lower, upper), got {factor!r}")
            self.factor = sorted(number(f, "RandomBrightness factor", -1, 1) for f in factor)
        else:
            f = abs(number(factor, "RandomBrightness factor", -1, 1))
            self.factor = [-f, f]
        if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
            raise InputError(f"RandomBrightness: value_range must be (low, high), got {value_range!r}")
        low, high = sorted(number(v, "RandomBrightness value_range") for v in value_range)
        if low == high:
            raise InputError(f"RandomBrightness: value_range must be (low, high) with low < high, got {value_range!r}")
        self.value_range = [low, high]
        self._own_seed(seed)
        self._inside = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        if not training:
            self._inside = None
            return x
        low, high = self.value_range
        delta = self.rng.uniform(*self.factor, size=(x.shape[0], 1, 1, 1)) * (high - low)
        raw = x + delta.astype(x.dtype)
        self.last_delta = delta[:, 0, 0, 0]
        self._inside = (raw >= low) & (raw <= high)
        return np.clip(raw, low, high).astype(x.dtype, copy=False)

    def backward(self, dout):
        if self._inside is None:
            return dout
        return (dout * self._inside).astype(dout.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range),
                "seed": self.seed}
