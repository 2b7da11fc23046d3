"""What the geometric augmentation layers share (RandomTranslation, ...): one
random affine transform per image in training, through
:mod:`kernels.affine`, and its adjoint as the input gradient."""
import numpy as np

from kernels.affine import FILL_MODES, INTERPOLATIONS, affine_backward, affine_forward

from ..errors import InputError
from .base import Layer, channels_last, number


def factor_range(factor, what, low=-1.0, high=1.0, low_open=False):
    """Keras's factor argument: a number f gives (-|f|, |f|), a pair (lower, upper) sorted."""
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2:
            raise InputError(f"{what} must be a number or a pair (lower, upper), got {factor!r}")
        values = sorted(number(f, what, low, high, low_open) for f in factor)
        return tuple(values)
    f = abs(number(factor, what, low, high, low_open))
    return (-f, f)


def rotation_zoom_matrices(angle, zoom_x, zoom_y, h, w):
    """(n, 8) transforms about the image centre ((w - 1) / 2, (h - 1) / 2),
    each output pixel reading the input at centre + Z R (pixel - centre): R
    rotates by ``angle`` radians, Z scales columns by ``zoom_x`` and rows by
    ``zoom_y`` (Keras's matrices for RandomRotation and RandomZoom)."""
    n = angle.shape[0]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    cos, sin = np.cos(angle), np.sin(angle)
    t = np.zeros((n, 8))
    t[:, 0], t[:, 1] = zoom_x * cos, -zoom_x * sin
    t[:, 3], t[:, 4] = zoom_y * sin, zoom_y * cos
    t[:, 2] = cx - cx * t[:, 0] - cy * t[:, 1]
    t[:, 5] = cy - cx * t[:, 3] - cy * t[:, 4]
    return t.astype(np.float32)


class AffineAugmentation(Layer, register=False):
    """A random affine transform of each image while training; the identity at inference.

    Subclasses draw the transforms: ``_transforms(n, h, w) -> (n, 8)``, in
    TensorFlow's convention (see :mod:`kernels.affine`).
    """

    uses_rng = True
    random_in_training = True  # Keras draws its own: compared with Keras at inference only

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        name = type(self).__name__
        if fill_mode not in FILL_MODES:
            raise InputError(f"{name}: fill_mode={fill_mode!r} must be one of {', '.join(map(repr, FILL_MODES))}")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"{name}: interpolation={interpolation!r} must be one of "
                             f"{', '.join(map(repr, INTERPOLATIONS))}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = number(fill_value, "fill_value")
        self._own_seed(seed)
        self._cache = None

    def compute_output_shape(self, input_shape):
        self._image_samples(input_shape)
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._check_input(x)
        if not training:
            self._cache = None
            return x
        n, h, w, _ = x.shape
        self.last_transforms = self._transforms(n, h, w)
        out, self._cache = affine_forward(x, self.last_transforms, self.fill_mode, self.fill_value,
                                          self.interpolation)
        return out

    def backward(self, dout):
        return dout if self._cache is None else affine_backward(dout, self._cache)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "seed": self.seed, "fill_value": self.fill_value}
