"""Layers: thin classes over the pure kernels in :mod:`kernels`.

Every layer has

* ``params`` and ``grads``: dicts of arrays with the same keys (empty for
  layers without weights); ``backward`` fills ``grads``;
* ``build(input_shape)``: creates the weights for a per-sample input shape
  (no batch axis) and returns the per-sample output shape;
* ``forward(x, training=False)`` and ``backward(dout)``;
* ``get_config()``: the constructor arguments, for saving.

Data is NHWC float32; convolution kernels are (kh, kw, cin, cout) and dense
kernels (in, out), exactly as in Keras, so weights move across unchanged.
Parameter names follow Keras: ``kernel`` and ``bias``.
"""
import numpy as np

from kernels.activations import ACTIVATIONS
from kernels.conv import IMPLS as CONV_IMPLS
from kernels.conv import conv2d_backward, conv2d_forward, winograd_applies
from kernels.dropout import dropout_backward_numba, dropout_numba
from kernels.geometry import window_geometry
from kernels.parallel import matmul
from kernels.pool import maxpool_backward, maxpool_forward

from . import initializers
from .errors import InputError
from .random import new_generator


def _pair(value, what):
    """An int or a pair of ints as a tuple of two positive ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise InputError(f"{what} must be a positive int or a pair of positive ints, got {value!r}")
    return tuple(int(v) for v in pair)


def _activation(name):
    name = "linear" if name is None else name
    if name not in ACTIVATIONS:
        raise InputError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return name


def _padding(padding):
    if padding not in ("valid", "same"):
        raise InputError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _sliding_output(layer, input_shape, window):
    """(oh, ow) of a window sliding over (h, w, c) samples with the layer's
    strides and padding."""
    if len(input_shape) != 3:
        raise InputError(
            f"{type(layer).__name__} layer {layer.name!r} needs samples of shape (height, width, channels), "
            f"got {tuple(input_shape)}"
        )
    return tuple(window_geometry(size, k, s, layer.padding)[0]
                 for size, k, s in zip(input_shape[:2], window, layer.strides))


class Layer:
    """Base class: a layer without weights that passes its input through."""

    def __init__(self, name=None, input_shape=None):
        self.name = name or type(self).__name__.lower()
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.output_shape = None
        self.params = {}
        self.grads = {}
        self.built = False
        # a model's first layer receives data: its input gradient is never used,
        # and Conv2D then skips computing it (Sequential sets this)
        self.needs_input_gradient = True

    def build(self, input_shape):
        """Create the weights for samples of ``input_shape``: kernels from the
        kernel initializer, biases at zero. Returns the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        for name, shape in self.param_shapes(self.input_shape).items():
            if name == "kernel":
                self.params[name] = initializers.get(self.kernel_initializer)(shape, self.rng)
            else:
                self.params[name] = np.zeros(shape, dtype=np.float32)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def param_shapes(self, input_shape):
        """The shape of each parameter for this input shape, without allocating."""
        return {}

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def get_config(self):
        return {"name": self.name}

    def _check_input(self, x):
        if x.shape[1:] != self.input_shape:
            raise InputError(
                f"layer {self.name!r} expects samples of shape {self.input_shape}, "
                f"got a batch of shape {x.shape}"
            )


class _WithActivation(Layer):
    """Shared by layers that end with an activation (Dense, Conv2D, Activation).

    ``backward_from_logits(dz)`` skips the activation: the model uses it when a
    softmax output meets cross-entropy, whose fused gradient is already with
    respect to the logits.
    """

    def _activate(self, z):
        forward, _ = ACTIVATIONS[self.activation]
        self.logits = z if self.activation == "softmax" else None
        out = forward(z)
        self._out = out
        return out

    def _deactivate(self, dout):
        _, backward = ACTIVATIONS[self.activation]
        return backward(dout, self._out)

    def backward(self, dout):
        return self.backward_from_logits(self._deactivate(dout))


class Dense(_WithActivation):
    """Fully connected layer: ``activation(x @ kernel + bias)``.

    Parameters
    ----------
    units : int
        Output features.
    activation : {'linear', 'relu', 'softmax', None}
    kernel_initializer : str
        Default 'glorot_uniform', as in Keras. Biases start at zero.
    use_bias : bool

    Shapes: x (n, in) -> out (n, units); kernel (in, units); bias (units,).
    """

    def __init__(self, units, activation=None, kernel_initializer="glorot_uniform",
                 use_bias=True, name=None, input_shape=None):
        super().__init__(name, input_shape)
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise InputError(f"units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = _activation(activation)
        self.kernel_initializer = kernel_initializer
        initializers.get(kernel_initializer)
        self.use_bias = bool(use_bias)
        self.rng = new_generator()

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise InputError(
                f"Dense layer {self.name!r} needs flat samples (features,), got {tuple(input_shape)}; "
                "put a Flatten layer before it"
            )
        return (self.units,)

    def param_shapes(self, input_shape):
        shapes = {"kernel": (input_shape[0], self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

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
        return {"name": self.name, "units": self.units, "activation": self.activation,
                "kernel_initializer": self.kernel_initializer, "use_bias": self.use_bias}


class Conv2D(_WithActivation):
    """2-D convolution over NHWC images (cross-correlation, as in Keras).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int)
    padding : {'valid', 'same'}
        'valid' is no padding; 'same' gives ceil(size / stride) outputs, the
        odd extra row/column of zeros at the bottom/right.
    activation : {'linear', 'relu', 'softmax', None}
    kernel_initializer : str
    use_bias : bool
    impl : {'numba', 'numpy', 'winograd'}
        How the kernels compute (not saved with the model): 'numba' (the
        default) takes Winograd F(4x4, 3x3) for 3x3 stride-1 layers with 16 or
        more input channels on batches of 8 or more, and im2col otherwise; 'im2col' and 'winograd'
        force one; 'numpy' is the readable reference (kernels/conv.py).

    Shapes: x (n, h, w, cin) -> out (n, oh, ow, filters);
    kernel (kh, kw, cin, filters); bias (filters,).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 kernel_initializer="glorot_uniform", use_bias=True, name=None, input_shape=None,
                 impl="numba"):
        super().__init__(name, input_shape)
        if not isinstance(filters, (int, np.integer)) or filters < 1:
            raise InputError(f"filters must be a positive int, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.activation = _activation(activation)
        self.kernel_initializer = kernel_initializer
        initializers.get(kernel_initializer)
        self.use_bias = bool(use_bias)
        if impl not in CONV_IMPLS:
            raise InputError(f"impl must be one of {CONV_IMPLS}, got {impl!r}")
        if impl == "winograd" and not winograd_applies(self.kernel_size, self.strides):
            raise InputError("impl='winograd' needs a 3x3 kernel and stride 1, "
                             f"got kernel {self.kernel_size} and strides {self.strides}")
        self.impl = impl
        self.rng = new_generator()

    def compute_output_shape(self, input_shape):
        return (*_sliding_output(self, input_shape, self.kernel_size), self.filters)

    def param_shapes(self, input_shape):
        shapes = {"kernel": (*self.kernel_size, input_shape[2], self.filters)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def forward(self, x, training=False):
        self._check_input(x)
        # ReLU is fused into the convolution's kernel (applied chunk by chunk
        # while in cache); other activations run after it
        fused_relu = self.activation == "relu"
        z, self._cache = conv2d_forward(x, self.params["kernel"], self.params.get("bias"),
                                        self.strides, self.padding, self.impl, relu=fused_relu,
                                        relu_mask=training)  # a byte mask pays off only in training
        if fused_relu:
            self.logits, self._out = None, None  # the kernel's cache keeps ReLU's mask
            return z
        return self._activate(z)

    def backward(self, dout):
        """dout (n, oh, ow, filters) -> dx (n, h, w, cin), or None when
        ``needs_input_gradient`` is False."""
        if self.activation == "relu":
            return self._backward_conv(dout)  # the kernel applies ReLU's mask itself
        return self._backward_conv(self._deactivate(dout))

    def backward_from_logits(self, dz):
        """Takes the gradient with respect to the pre-activation (the softmax
        case of :class:`_WithActivation`)."""
        if self.activation == "relu":
            raise NotImplementedError("a ReLU convolution's backward takes the gradient of its output")
        return self._backward_conv(dz)

    def _backward_conv(self, dz):
        dx, self.grads["kernel"], db = conv2d_backward(dz, self._cache, self.needs_input_gradient)
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": self.activation, "kernel_initializer": self.kernel_initializer,
                "use_bias": self.use_bias}


class MaxPooling2D(Layer):
    """Max pooling over NHWC images.

    Parameters
    ----------
    pool_size : int or (int, int)
    strides : int, (int, int) or None
        None (the default) means the pool size, as in Keras.
    padding : {'valid', 'same'}

    Shapes: x (n, h, w, c) -> out (n, oh, ow, c).
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", name=None,
                 input_shape=None, impl="numba"):
        super().__init__(name, input_shape)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding(padding)
        self.impl = impl

    def compute_output_shape(self, input_shape):
        return (*_sliding_output(self, input_shape, self.pool_size), input_shape[2])

    def forward(self, x, training=False):
        self._check_input(x)
        out, self._cache = maxpool_forward(x, self.pool_size, self.strides, self.padding, self.impl)
        return out

    def backward(self, dout):
        return maxpool_backward(dout, self._cache)

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate``
    and scale the survivors by 1 / (1 - rate); at inference, the identity.

    Shapes: any, unchanged.
    """

    def __init__(self, rate, name=None, input_shape=None):
        super().__init__(name, input_shape)
        if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            raise InputError(f"dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.rng = new_generator()

    def forward(self, x, training=False):
        self._check_input(x)
        if not training or self.rate == 0:
            self._keep = None
            return x
        draws = self.rng.random(x.shape, dtype=np.float32)
        out, self._keep = dropout_numba(x, draws, self.rate)  # keep: the survivors, for backward
        return out

    def backward(self, dout):
        return dout if self._keep is None else dropout_backward_numba(dout, self._keep, self.rate)

    def get_config(self):
        return {"name": self.name, "rate": self.rate}


class Flatten(Layer):
    """Flatten each sample to one axis, in C order (as Keras does for NHWC).

    Shapes: x (n, d1, d2, ...) -> out (n, d1 * d2 * ...).
    """

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self._check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape((dout.shape[0], *self.input_shape))


class Activation(_WithActivation):
    """An activation on its own, as Keras's ``Activation('relu')``."""

    def __init__(self, activation, name=None, input_shape=None):
        super().__init__(name, input_shape)
        self.activation = _activation(activation)

    def forward(self, x, training=False):
        self._check_input(x)
        return self._activate(x.copy())

    def backward_from_logits(self, dz):
        return dz

    def get_config(self):
        return {"name": self.name, "activation": self.activation}


LAYERS = {cls.__name__: cls for cls in (Dense, Conv2D, MaxPooling2D, Dropout, Flatten, Activation)}
