"""LayerNormalization: each sample normalized over its own values (kernels in
:mod:`kernels.normalize`)."""
import numpy as np

from kernels.normalize import normalize_backward, normalize_forward

from .. import initializers, regularizers
from ..errors import InputError
from .base import Example, Layer, number


class LayerNormalization(Layer):
    """Normalize each sample over ``axis``, as ``keras.layers.LayerNormalization``:
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta``, the mean and the
    biased variance over the given axes of that sample alone (no batch
    statistics: training and inference are the same).

    Parameters
    ----------
    axis : int or list of ints, the axes normalized (default -1, the
        channels); counted with the batch axis as 0, as in Keras
    epsilon : float, default 1e-3
    center, scale : learn beta / gamma
    beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer : Keras's

    Weights, in Keras's order: gamma, beta, each of the normalized axes' shape.
    """

    keras_defaults = {"rms_scaling": False, "beta_constraint": None, "gamma_constraint": None}
    examples = (Example("channels", {}, (3, 2, 5), reduction=5),
                Example("features, epsilon 1e-2", {"epsilon": 1e-2}, (7,), reduction=7),
                Example("all three axes", {"axis": [1, 2, 3]}, (3, 2, 4), reduction=24),
                Example("height and width, no center", {"axis": [1, 2], "center": False}, (3, 4, 2), reduction=12))

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        axes = [axis] if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
        if (not isinstance(axes, (list, tuple)) or not axes
                or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes)):
            raise InputError(f"LayerNormalization: axis must be an int or a list of ints, got {axis!r}")
        # one axis is kept as an int (Keras writes [-1] for -1 once built: the same layer)
        self.axis = int(axes[0]) if len(axes) == 1 else [int(a) for a in axes]
        self.epsilon = number(epsilon, "epsilon", 0, low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        initializers.get(beta_initializer), initializers.get(gamma_initializer)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _axes(self, input_shape):
        """The normalized axes of a batch (n, *input_shape), sorted, each checked."""
        rank = len(input_shape) + 1
        axes = []
        for a in ([self.axis] if isinstance(self.axis, int) else self.axis):
            if not -rank <= a < rank or a % rank == 0:
                raise InputError(f"LayerNormalization layer {self.name!r}: axis {a} is not an axis of the samples "
                                 f"{tuple(input_shape)} (the batch axis 0 cannot be normalized over)")
            axes.append(a % rank)
        if len(set(axes)) != len(axes):
            raise InputError(f"LayerNormalization layer {self.name!r}: axis {self.axis} names an axis twice")
        return tuple(sorted(axes))

    def compute_output_shape(self, input_shape):
        self._axes(input_shape)
        return tuple(input_shape)

    def build(self, input_shape):
        out = super().build(input_shape)
        shape = tuple(self.input_shape[a - 1] for a in self._axes(self.input_shape))
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer)
        return out

    def _broadcast(self, weight, rank):
        axes = self._axes(self.input_shape)
        return weight.reshape([self.input_shape[a - 1] if a in axes else 1 for a in range(rank)])

    def forward(self, x, training=False):
        self._check_input(x)
        xhat, self._cache = normalize_forward(x, self._axes(self.input_shape), self.epsilon)
        out = xhat
        if self.scale:
            out = out * self._broadcast(self.params["gamma"], x.ndim)
        if self.center:
            out = out + self._broadcast(self.params["beta"], x.ndim)
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        axes = self._axes(self.input_shape)
        others = tuple(a for a in range(dout.ndim) if a not in axes)
        xhat = self._cache.xhat
        if self.scale:
            self.grads["gamma"] = (dout * xhat).sum(axis=others).reshape(self.params["gamma"].shape)
            dxhat = dout * self._broadcast(self.params["gamma"], dout.ndim)
        else:
            dxhat = dout
        if self.center:
            self.grads["beta"] = dout.sum(axis=others).reshape(self.params["beta"].shape)
        return normalize_backward(dxhat, self._cache)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}
