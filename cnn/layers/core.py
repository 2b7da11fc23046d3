"""Core layers: Dense, Activation, Dropout, and the model's Input."""
import numpy as np

from kernels.dropout import dropout_backward_numba, dropout_numba
from kernels.parallel import matmul

from ..activations import NAMES as ACTIVATION_NAMES
from ..errors import InputError
from ..tensors import KerasTensor
from .base import Example, KernelBiasLayer, Layer, WithActivation, number, positive_int


class Dense(KernelBiasLayer):
    """Fully connected layer: ``activation(x @ kernel + bias)``.

    Parameters
    ----------
    units : int
        Output features.
    activation : str, None or a function of :mod:`cnn.activations`
    use_bias : bool
    kernel_initializer, bias_initializer : Keras initializer names or objects
        Defaults 'glorot_uniform' and 'zeros', as in Keras.
    kernel_regularizer, bias_regularizer : None, 'l2' or a :mod:`cnn.regularizers` object

    Shapes: x (n, in) -> out (n, units); kernel (in, units); bias (units,).
    """

    keras_defaults = {"quantization_config": None}
    examples = tuple(Example(f"activation {name}", {"units": 5, "activation": name}, (6,), reduction=6)
                     for name in ACTIVATION_NAMES) + (
        Example("relu, no bias", {"units": 4, "activation": "relu", "use_bias": False}, (7,), reduction=7),)

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self._set_activation(activation)
        self._set_kernel_and_bias(use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise InputError(
                f"Dense layer {self.name!r} needs flat samples (features,), got {tuple(input_shape)}; "
                "put a Flatten layer before it"
            )
        return (self.units,)

    def build(self, input_shape):
        out = super().build(input_shape)
        self._add_kernel_and_bias((self.input_shape[0], self.units))
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        self._x = x
        z = matmul(x, self.params["kernel"])  # x @ kernel, row blocks on every core
        if self.use_bias:
            z += self.params["bias"]
        return self._activate(z)

    def backward_from_logits(self, dz):
        self.grads["kernel"] = matmul(self._x.T, dz)
        if self.use_bias:
            self.grads["bias"] = dz.sum(axis=0)
        return matmul(dz, self.params["kernel"].T)

    def get_config(self):
        return {**super().get_config(), "units": self.units, **self._kernel_and_bias_config()}


class Activation(WithActivation):
    """An activation on its own, as Keras's ``Activation('tanh')``.

    Shapes: any, unchanged.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._set_activation(activation)

    examples = tuple(Example(name, {"activation": name}, (12,)) for name in ACTIVATION_NAMES)

    def forward(self, x, training=False):
        self._check_input(x)
        return self._activate(x.copy())

    def backward_from_logits(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate``
    and scale the survivors by 1 / (1 - rate); at inference, the identity.

    Shapes: any, unchanged.
    """

    uses_rng = True
    keras_defaults = {"noise_shape": None, "seed": None}
    random_in_training = True  # a mask Keras draws its own way: compared with Keras at inference only
    examples = (Example("0.5 (training)", {"rate": 0.5}, (20,), training=True),
                Example("0.5 (inference)", {"rate": 0.5}, (20,)))

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = number(rate, "rate", 0, 1)
        if self.rate >= 1:
            raise InputError(f"dropout rate must be in [0, 1), got {rate!r}")
        self._draws = None

    def forward(self, x, training=False):
        self._check_input(x)
        if not training or self.rate == 0:
            self._keep = None
            return x
        # the draws go into a buffer kept from the last batch of this shape: into a
        # fresh array NumPy took 2.3x as long (10 ms against 4.3 for the chapter's
        # 1.6 million draws); the draws never leave this method
        if self._draws is None or self._draws.shape != x.shape:
            self._draws = np.empty(x.shape, dtype=np.float32)
        draws = self.rng.random(x.shape, dtype=np.float32, out=self._draws)
        out, self._keep = dropout_numba(x, draws, self.rate)  # keep: the survivors, for backward
        return out

    def backward(self, dout):
        return dout if self._keep is None else dropout_backward_numba(dout, self._keep, self.rate)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class InputLayer(KerasTensor):
    """What ``cnn.Input(shape=...)`` returns: a symbolic tensor of samples of
    that shape (``.shape`` is ``(None, *shape)``, as Keras's), the start of a
    functional model (``cnn.Model(inputs, outputs)``) or the first place of a
    Sequential. It is not a layer of the model: ``model.layers`` starts after
    it, as in Keras."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None):
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise InputError("Input needs shape=(...) of one sample, e.g. shape=(28, 28, 1)")
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not shape or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
            raise InputError(f"Input shape must be positive ints (no batch axis; None is not supported), got {shape!r}")
        if sparse:
            raise InputError("Input: sparse=True is not supported")
        if dtype is not None and dtype not in ("float32", "float64"):
            raise InputError(f"Input dtype must be 'float32' or 'float64', got {dtype!r}")
        super().__init__(shape, dtype, node=None, name=name)


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None):
    """``cnn.Input(shape=(28, 28, 1))`` as the first entry of a Sequential."""
    return InputLayer(shape, batch_size, dtype, name, batch_shape, sparse)
