"""RandomContrast: each image's contrast changed at random in training (augmentation)."""
import numpy as np

from ..errors import InputError
from .base import Example, Layer, channels_last, number


class RandomContrast(Layer):
    """Scale each image's deviations from its mean by a random factor while
    training, as ``keras.layers.RandomContrast``; the identity at inference::

        out = clip((x - mean) * factor + mean, *value_range)

    the mean per image and channel over height and width, one factor per image.

    The factor is drawn uniformly from ``[1 - lower, 1 + upper]``. As Keras 3
    reads it (3.15, measured), a number f gives (lower, upper) = (0, f), so
    ``RandomContrast(0.5)`` only strengthens contrast, by 1 to 1.5 (Keras's
    docstring says [1 - f, 1 + f]); a pair (lower, upper) gives
    [1 - lower, 1 + upper], so ``(0.5, 0.5)`` is that docstring's range.

    Parameters
    ----------
    factor : number in [0, 1] or (lower, upper)
    value_range : (low, high), what the output is clipped to (default (0, 255))
    seed : None or an int (a generator of the layer's own)

    The input gradient: ``factor * g + (1 - factor) * mean(g)`` over each
    image and channel, g the output's gradient where the output was not clipped.
    """

    uses_rng = True
    random_in_training = True  # Keras draws its own factors: compared with Keras at inference only
    examples = (Example("(0.5, 0.5) (training)", {"factor": (0.5, 0.5), "value_range": (-10, 10), "seed": 1},
                        (4, 5, 2), training=True),
                Example("0.8 clipped at 0 (training)", {"factor": 0.8, "seed": 2}, (4, 5, 2), training=True),
                Example("(inference)", {"factor": 0.3}, (3, 3, 2)))

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        if isinstance(factor, (list, tuple)):
            if len(factor) != 2:
                raise InputError(f"RandomContrast: factor must be a number or a pair (lower, upper), got {factor!r}")
            self.factor = [number(f, "RandomContrast factor", 0, 1) for f in factor]
        else:
            self.factor = [0.0, abs(number(factor, "RandomContrast factor", -1, 1))]  # Keras 3's reading
        if (not isinstance(value_range, (list, tuple)) or len(value_range) != 2
                or number(value_range[0], "value_range") >= number(value_range[1], "value_range")):
            raise InputError(f"RandomContrast: value_range must be (low, high) with low < high, got {value_range!r}")
        self.value_range = [float(v) for v in value_range]
        self._own_seed(seed)
        self._factors = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        if not training:
            self._factors = None
            return x
        lower, upper = self.factor
        f = self.rng.uniform(1 - lower, 1 + upper, size=(x.shape[0], 1, 1, 1)).astype(x.dtype)
        mean = x.mean(axis=(1, 2), keepdims=True)
        raw = (x - mean) * f + mean
        low, high = self.value_range
        self._factors, self._inside = f, (raw >= low) & (raw <= high)
        return np.clip(raw, low, high).astype(x.dtype, copy=False)

    def backward(self, dout):
        if self._factors is None:
            return dout
        f = self._factors
        g = dout * self._inside
        return (f * g + (1 - f) * g.mean(axis=(1, 2), keepdims=True)).astype(dout.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range),
                "seed": self.seed}
