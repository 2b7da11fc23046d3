"""BatchNormalization (kernels in :mod:`kernels.batchnorm`)."""
import numpy as np

from kernels.batchnorm import IMPLS, batchnorm_backward, batchnorm_forward

from .. import initializers, regularizers
from ..errors import InputError
from .base import Example, Layer, number


class BatchNormalization(Layer):
    """Normalize each channel (the last axis), as ``keras.layers.BatchNormalization``.

    In training (``fit``) each batch is normalized with its own mean and
    biased variance, and the moving averages move toward them::

        moving_mean = moving_mean * momentum + mean * (1 - momentum)

    (the same for the variance); at inference the moving averages are used.
    A layer with ``trainable = False`` runs in inference mode even in
    training, as in Keras 3.

    Parameters
    ----------
    axis : -1 only (the channels of NHWC data, or the features of Dense outputs)
    momentum : float, default 0.99
    epsilon : float, default 1e-3
    center, scale : bool, learn beta / gamma (else they are 0 / 1)
    *_initializer, *_regularizer : as Keras

    Weights, in Keras's order: gamma, beta (trainable), moving_mean,
    moving_variance (non-trainable). Shapes: x (n, ..., c) -> out the same.
    """

    keras_defaults = {"beta_constraint": None, "gamma_constraint": None, "synchronized": False, "renorm": False,
                      "renorm_clipping": None, "renorm_momentum": 0.99}
    examples = (Example("(training)", {}, (3, 3, 4), training=True, reduction=72),
                Example("(inference)", {}, (3, 3, 4)),
                Example("dense features, no scale (training)", {"scale": False, "momentum": 0.9}, (5,),
                        training=True, reduction=8))

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 impl="numba", **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, [-1]):
            raise InputError(f"BatchNormalization: axis={axis!r} is not supported (only -1, the channels)")
        self.axis = -1
        self.momentum = number(momentum, "momentum", 0, 1)
        self.epsilon = number(epsilon, "epsilon", 0, low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        for init in (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer):
            initializers.get(init)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        if impl not in IMPLS:
            raise InputError(f"impl must be one of {tuple(IMPLS)}, got {impl!r}")
        self.impl = impl

    def build(self, input_shape):
        out = super().build(input_shape)
        if not self.input_shape:
            raise InputError(f"BatchNormalization layer {self.name!r} needs samples with a channel axis")
        c = (self.input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", c, self.gamma_initializer, regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", c, self.beta_initializer, regularizer=self.beta_regularizer)
        self.add_weight("moving_mean", c, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", c, self.moving_variance_initializer, trainable=False)
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        c = x.shape[-1]
        gamma = self.params.get("gamma", np.ones(c, x.dtype))
        beta = self.params.get("beta", np.zeros(c, x.dtype))
        batch_mode = bool(training and self.trainable)
        out, stats, self._cache = batchnorm_forward(
            x, gamma, beta, self.params["moving_mean"], self.params["moving_variance"],
            self.epsilon, batch_mode, self.impl)
        if stats is not None:  # state, updated in place: not a gradient step
            for name, value in zip(("moving_mean", "moving_variance"), stats):
                moving = self.params[name]
                moving[...] = moving * self.momentum + value.astype(moving.dtype) * (1 - self.momentum)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = batchnorm_backward(dout, self._cache)
        if self.scale:
            self.grads["gamma"] = dgamma.astype(self.params["gamma"].dtype, copy=False)
        if self.center:
            self.grads["beta"] = dbeta.astype(self.params["beta"].dtype, copy=False)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}
