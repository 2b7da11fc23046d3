"""RandomTranslation: images shifted at random in training (augmentation)."""
import numpy as np

from .base import Example
from ._augmentation import AffineAugmentation, factor_range


class RandomTranslation(AffineAugmentation):
    """Shift each image by a random fraction of its size while training, as
    ``keras.layers.RandomTranslation``; the identity at inference.

    Per image, a vertical shift drawn uniformly from
    ``[lower, upper] * height`` pixels and a horizontal one from
    ``[lower, upper] * width`` (a factor f means (-f, f)); the output pixel
    (x, y) reads the input at (x - dx, y - dy), bilinearly, the cells that
    come from outside the image filled by ``fill_mode`` (Keras's default
    'reflect'; 'wrap', 'constant' with ``fill_value``, 'nearest').

    Parameters
    ----------
    height_factor, width_factor : number or (lower, upper), in [-1, 1]
    fill_mode, interpolation ('bilinear' or 'nearest'), seed, fill_value : as Keras

    Shapes: x (n, h, w, c) -> out the same.
    """

    examples = (Example("0.3 reflect (training)", {"height_factor": 0.3, "width_factor": 0.3, "seed": 1}, (5, 6, 2),
                        training=True),
                Example("(-0.2, 0.4) constant (training)", {"height_factor": (-0.2, 0.4), "width_factor": 0.25,
                                                            "fill_mode": "constant", "fill_value": 0.5, "seed": 2},
                        (5, 6, 2), training=True),
                Example("wrap, nearest (training)", {"height_factor": 0.4, "width_factor": 0.0, "fill_mode": "wrap",
                                                     "interpolation": "nearest", "seed": 3}, (6, 5, 1),
                        training=True),
                Example("(inference)", {"height_factor": 0.2, "width_factor": 0.2}, (4, 4, 2)))

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = list(height_factor) if isinstance(height_factor, (list, tuple)) else height_factor
        self.width_factor = list(width_factor) if isinstance(width_factor, (list, tuple)) else width_factor
        self.height_range = factor_range(height_factor, "RandomTranslation height_factor")
        self.width_range = factor_range(width_factor, "RandomTranslation width_factor")

    def _transforms(self, n, h, w):
        # Keras draws the heights, then the widths, one per image
        dy = self.rng.uniform(*self.height_range, size=n) * h
        dx = self.rng.uniform(*self.width_range, size=n) * w
        t = np.zeros((n, 8), dtype=np.float32)
        t[:, 0] = t[:, 4] = 1
        t[:, 2], t[:, 5] = -dx, -dy
        return t

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}
