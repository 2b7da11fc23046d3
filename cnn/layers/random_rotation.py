"""RandomRotation: images turned at random in training (augmentation)."""
import numpy as np

from .base import Example
from ._augmentation import AffineAugmentation, factor_range, rotation_zoom_matrices


class RandomRotation(AffineAugmentation):
    """Rotate each image about its centre by a random angle while training,
    as ``keras.layers.RandomRotation``; the identity at inference.

    Per image an angle is drawn uniformly from ``[lower, upper] * 360``
    degrees (a factor f means (-f, f), a fraction of a full turn); the output
    pixel reads the input at the point the rotation takes it to, bilinearly,
    with the cells from outside the image filled by ``fill_mode``.

    Parameters
    ----------
    factor : number or (lower, upper), in [-1, 1]
    fill_mode, interpolation, seed, fill_value : as Keras

    Shapes: x (n, h, w, c) -> out the same.
    """

    examples = (Example("0.1 reflect (training)", {"factor": 0.1, "seed": 1}, (5, 6, 2), training=True),
                Example("(-0.3, 0.2) constant, nearest (training)",
                        {"factor": (-0.3, 0.2), "fill_mode": "constant", "interpolation": "nearest", "seed": 2},
                        (6, 5, 2), training=True),
                Example("(inference)", {"factor": 0.2}, (4, 4, 2)))

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.range = factor_range(factor, "RandomRotation factor")
        self.factor = list(self.range)  # saved as (lower, upper), as Keras writes it

    def _transforms(self, n, h, w):
        degrees = self.rng.uniform(self.range[0] * 360, self.range[1] * 360, size=n)
        return rotation_zoom_matrices(np.deg2rad(degrees), np.ones(n), np.ones(n), h, w)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
