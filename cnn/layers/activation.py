"""Activation layers with Keras's arguments: ReLU, LeakyReLU, ELU, Softmax."""
import numpy as np

from ..errors import InputError
from .base import Example, WithActivation, number


class ReLU(WithActivation):
    """``keras.layers.ReLU``: ``max_value`` where x >= max_value, x where
    threshold <= x, ``negative_slope * (x - threshold)`` below.

    Shapes: any, unchanged.
    """

    examples = (Example("", {}, (12,)),
                Example("max_value 2, slope 0.1", {"max_value": 2.0, "negative_slope": 0.1}, (12,)),
                Example("threshold 0.5", {"threshold": 0.5}, (3, 4)))

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = None if max_value is None else number(max_value, "max_value", 0)
        self.negative_slope = number(negative_slope, "negative_slope", 0)
        self.threshold = number(threshold, "threshold", 0)
        self._set_activation("relu")
        self._plain = self.max_value is None and self.negative_slope == 0 and self.threshold == 0

    def forward(self, x, training=False):
        self._check_input(x)
        if self._plain:
            return self._activate(x.copy())  # the relu kernel
        self._x = x
        out = np.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        if self.max_value is not None:
            out = np.minimum(out, self.max_value)
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        if self._plain:
            return self._deactivate(dout)
        x = self._x
        slope = np.where(x >= self.threshold, 1.0, self.negative_slope)
        if self.max_value is not None:
            slope = np.where(x >= self.max_value, 0.0, slope)
        return (dout * slope).astype(dout.dtype, copy=False)

    def backward_from_logits(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class _ElementwiseActivation(WithActivation):
    """An activation kernel with its parameters, as a layer (shapes unchanged)."""

    kernel = None  # the name in kernels.activations

    def _use(self, **params):
        from .. import activations

        self.activation_fn = activations.ActivationFunction(self.kernel, **params)
        self.activation = self.kernel

    def forward(self, x, training=False):
        self._check_input(x)
        return self._activate(x)

    def backward_from_logits(self, dz):
        return dz


class LeakyReLU(_ElementwiseActivation):
    """x for x > 0, ``negative_slope * x`` below (Keras's layer default 0.3)."""

    kernel = "leaky_relu"
    examples = (Example("", {}, (12,)), Example("slope 0.1", {"negative_slope": 0.1}, (12,)))

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = number(negative_slope, "negative_slope", 0)
        self._use(negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ElementwiseActivation):
    """x for x > 0, ``alpha * (exp(x) - 1)`` below."""

    kernel = "elu"
    examples = (Example("", {}, (12,)), Example("alpha 0.5", {"alpha": 0.5}, (12,)))

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = number(alpha, "alpha", 0)
        self._use(alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_ElementwiseActivation):
    """Softmax over the last axis (``axis=-1``, the only one supported)."""

    kernel = "softmax"
    examples = (Example("", {}, (12,)), Example("over channels", {}, (2, 3, 4)))

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise InputError(f"Softmax: axis={axis!r} is not supported (only -1, the last axis)")
        self.axis = -1
        self._use()

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
