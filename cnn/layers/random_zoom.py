"""RandomZoom: images zoomed in or out at random in training (augmentation)."""
import numpy as np

from .base import Example
from ._augmentation import AffineAugmentation, factor_range, rotation_zoom_matrices


class RandomZoom(AffineAugmentation):
    """Zoom each image about its centre by a random factor while training, as
    ``keras.layers.RandomZoom``; the identity at inference.

    Per image a height zoom is drawn uniformly from ``1 + [lower, upper]``
    and, when ``width_factor`` is given, a width zoom the same way (else the
    height's, keeping the aspect ratio). As in Keras, the factor scales the
    region read: 1.3 reads a region 30% larger (the picture zoomed out), 0.7
    one 30% smaller (zoomed in); a negative factor zooms in.

    Parameters
    ----------
    height_factor : number or (lower, upper), in (-1, 1]
    width_factor : None, or as ``height_factor``
    fill_mode, interpolation, seed, fill_value : as Keras

    Shapes: x (n, h, w, c) -> out the same.
    """

    examples = (Example("0.3 reflect (training)", {"height_factor": 0.3, "seed": 1}, (5, 6, 2), training=True),
                Example("(-0.4, -0.1) by (0.1, 0.5) wrap (training)",
                        {"height_factor": (-0.4, -0.1), "width_factor": (0.1, 0.5), "fill_mode": "wrap", "seed": 2},
                        (6, 5, 2), training=True),
                Example("(inference)", {"height_factor": 0.2}, (4, 4, 2)))

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = list(height_factor) if isinstance(height_factor, (list, tuple)) else height_factor
        self.width_factor = list(width_factor) if isinstance(width_factor, (list, tuple)) else width_factor
        self.height_range = factor_range(height_factor, "RandomZoom height_factor", low_open=True)
        self.width_range = None if width_factor is None else factor_range(width_factor, "RandomZoom width_factor",
                                                                          low_open=True)

    def _transforms(self, n, h, w):
        zoom_y = self.rng.uniform(1 + self.height_range[0], 1 + self.height_range[1], size=n)
        zoom_x = zoom_y if self.width_range is None else self.rng.uniform(1 + self.width_range[0],
                                                                          1 + self.width_range[1], size=n)
        return rotation_zoom_matrices(np.zeros(n), zoom_x, zoom_y, h, w)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}
