"""GroupNormalization: each sample's channels normalized in groups (kernels in
:mod:`kernels.normalize`)."""
from kernels.normalize import normalize_backward, normalize_forward

from .. import initializers, regularizers
from ..errors import InputError
from .base import Example, Layer, number, positive_int


class GroupNormalization(Layer):
    """Normalize each sample's channels in ``groups`` contiguous groups, as
    ``keras.layers.GroupNormalization``: every group's values (all its
    pixels and its channels) get their own mean and biased variance; then a
    per-channel ``gamma`` and ``beta``. ``groups=1`` is layer normalization
    over the whole sample; ``groups`` = channels is instance normalization.

    Parameters
    ----------
    groups : int dividing the channels (Keras's default 32)
    axis : -1 only (the channels)
    epsilon : float, default 1e-3
    center, scale, *_initializer, *_regularizer : as Keras

    Weights, in Keras's order: gamma, beta, each (channels,).
    """

    keras_defaults = {"beta_constraint": None, "gamma_constraint": None}
    examples = (Example("2 groups", {"groups": 2}, (3, 2, 6), reduction=18),
                Example("instance norm (groups = channels)", {"groups": 4}, (3, 3, 4), reduction=9),
                Example("one group, features, no scale", {"groups": 1, "scale": False}, (6,), reduction=6))

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = positive_int(groups, "groups")
        if axis not in (-1, [-1]):
            raise InputError(f"GroupNormalization: axis={axis!r} is not supported (only -1, the channels)")
        self.axis = -1
        self.epsilon = number(epsilon, "epsilon", 0, low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        initializers.get(beta_initializer), initializers.get(gamma_initializer)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def compute_output_shape(self, input_shape):
        if input_shape[-1] % self.groups:
            raise InputError(f"GroupNormalization layer {self.name!r}: {self.groups} groups do not divide "
                             f"{input_shape[-1]} channels")
        return tuple(input_shape)

    def build(self, input_shape):
        out = super().build(input_shape)
        c = (self.input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", c, self.gamma_initializer, regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", c, self.beta_initializer, regularizer=self.beta_regularizer)
        return out

    def _grouped(self, x):
        """(n, ..., c) -> (n, ..., groups, c / groups), and the axes each group spans."""
        c = x.shape[-1]
        grouped = x.reshape(*x.shape[:-1], self.groups, c // self.groups)
        return grouped, tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)

    def forward(self, x, training=False):
        self._check_input(x)
        grouped, axes = self._grouped(x)
        xhat, self._cache = normalize_forward(grouped, axes, self.epsilon)
        out = xhat.reshape(x.shape)
        self._xhat = out
        if self.scale:
            out = out * self.params["gamma"]
        if self.center:
            out = out + self.params["beta"]
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        others = tuple(range(dout.ndim - 1))
        if self.scale:
            self.grads["gamma"] = (dout * self._xhat).sum(axis=others)
            dxhat = dout * self.params["gamma"]
        else:
            dxhat = dout
        if self.center:
            self.grads["beta"] = dout.sum(axis=others)
        grouped, _ = self._grouped(dxhat)
        return normalize_backward(grouped, self._cache).reshape(dout.shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}
