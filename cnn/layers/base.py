"""The base class every layer derives from, and the argument checks they share.

A layer declares its weights in ``build`` with :meth:`Layer.add_weight`, in
Keras's order (a convolution's kernel, then its bias; BatchNormalization's
gamma, beta, moving_mean, moving_variance). Everything that handles weights
walks that one declared list: the optimizers (trainable weights only), saving
and loading, Keras files, ``summary`` and ``get_weights``.
"""
import copy
from typing import NamedTuple

import numpy as np

from .. import initializers, regularizers
from ..backend import float_dtype
from ..errors import InputError
from ..random import new_generator
from kernels.geometry import window_geometry


# ------------------------------------------------------------ argument checks
def pair(value, what, minimum=1):
    """An int or a pair of ints as a tuple of two ints >= ``minimum``."""
    pair_ = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (list, tuple)) else None
    if pair_ is None or len(pair_) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in pair_):
        raise InputError(f"{what} must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair_)


def sides(value, what):
    """Rows and columns per side as ((top, bottom), (left, right)), from an
    int, (rows, cols) or ((top, bottom), (left, right)), as Keras takes
    ZeroPadding2D's padding and Cropping2D's cropping."""
    def amount(v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InputError(f"{what} must be ints >= 0, got {value!r}")
        return int(v)

    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        p = amount(value)
        return ((p, p), (p, p))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, (tuple, list)) for v in value):
            if any(len(v) != 2 for v in value):
                raise InputError(f"{what} must be ((top, bottom), (left, right)), got {value!r}")
            return tuple((amount(v[0]), amount(v[1])) for v in value)
        rows, cols = amount(value[0]), amount(value[1])
        return ((rows, rows), (cols, cols))
    raise InputError(f"{what} must be an int, (rows, cols) or ((top, bottom), (left, right)), got {value!r}")


def padding_mode(padding):
    if padding not in ("valid", "same"):
        raise InputError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def channels_last(data_format):
    if data_format not in (None, "channels_last"):
        raise InputError(f"data_format={data_format!r} is not supported: the engine is NHWC ('channels_last')")


def number(value, what, low=None, high=None, low_open=False):
    """A real number within [low, high] (or (low, high] with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise InputError(f"{what} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise InputError(f"{what} must be <= {high}, got {value!r}")
    return value


def positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def keras_defaults(cls):
    """The Keras arguments ``cls`` accepts only at their default value (what a
    Keras config holds), merged from the ``keras_defaults`` each class in its
    ancestry declares: any other value is refused by name, never ignored."""
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get("keras_defaults", {}))
    return merged


def refuse_unknown(cls, kwargs):
    """Keras arguments this engine does not implement are refused, never ignored."""
    defaults = keras_defaults(cls)
    for key, value in kwargs.items():
        if key in defaults:
            default = defaults[key]
            if value is None or value == default:
                continue
            raise InputError(f"{cls.__name__}: {key}={value!r} is not supported by this engine "
                             f"(only the default {default!r})")
        raise InputError(f"{cls.__name__}: unknown argument {key!r}")


# ------------------------------------------------------------ the registry
# Every layer class of the engine registers itself when it is defined (a class
# in a module of cnn.layers whose name does not start with '_'); a user's
# class is registered by cnn.layers.register. Saved models find classes here
# by name; the gradient checks, the Keras comparisons and the save/load tests
# walk it (tests/test_registry.py).
LAYERS = {}     # saved class name -> class
BUILT_IN = {}   # the engine's own: class name -> class


class Example(NamedTuple):
    """A case a layer class declares for the checks the registry drives:
    ``cls(**config)`` on a batch of samples of ``sample_shape`` (a list of
    shapes for a merge layer), in training mode or not. ``label`` names it in
    ``cnn gradcheck``'s table; ``reduction`` is how many products each output
    sums (the float32 tolerance against Keras). ``keras`` is False for a
    case Keras on TensorFlow's CPU cannot run (a dilated Conv2DTranspose):
    its tests say what checks it instead."""
    label: str
    config: dict
    sample_shape: tuple
    training: bool = False
    reduction: int = 1
    keras: bool = True


def sliding_output(layer, input_shape, window, dilation=(1, 1)):
    """(oh, ow) of a (dilated) window sliding over (h, w, c) samples with the
    layer's strides and padding."""
    if len(input_shape) != 3:
        raise InputError(
            f"{type(layer).__name__} layer {layer.name!r} needs samples of shape (height, width, channels), "
            f"got {tuple(input_shape)}"
        )
    out = []
    for size, k, s, d in zip(input_shape[:2], window, layer.strides, dilation):
        try:
            out.append(window_geometry(size, (k - 1) * d + 1, s, layer.padding)[0])
        except ValueError as err:
            raise InputError(f"layer {layer.name!r}: {err}") from None
    return tuple(out)


# ------------------------------------------------------------ the base class
def _build_once(build):
    """Wrap a layer's ``build``: a second call with the same input shape keeps
    the weights (as Keras builds once); with another shape they are made anew."""
    import functools

    @functools.wraps(build)
    def wrapper(self, input_shape):
        if input_shape and isinstance(input_shape[0], (tuple, list)):  # a merge layer's list of shapes
            shape = tuple(tuple(int(d) for d in one) for one in input_shape)
        else:
            shape = tuple(int(d) for d in input_shape)
        if self.built:
            if shape == self.input_shape:
                return self.output_shape
            self.params, self.grads, self._trainable_names, self._regularizers = {}, {}, [], {}
            self.built = False
        return build(self, shape)

    return wrapper


MAX_NAME = 256  # characters in a layer's or a model's name


def check_name(name, what):
    """A layer's or a model's name as Keras accepts it (a non-empty string with
    no '/', which Keras refuses), of printable characters and at most
    MAX_NAME of them: a name from a file is shown in pictures, summaries and
    the explorer's page, and one made of control characters or a megabyte
    long is a file crafted to do harm, not a name."""
    if not isinstance(name, str) or not name:
        raise InputError(f"a {what} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InputError(f"a {what} name may have at most {MAX_NAME} characters, got {len(name)}")
    if "/" in name:
        raise InputError(f"a {what} name cannot contain '/' (Keras refuses it too), got {name!r}")
    if not name.isprintable():
        raise InputError(f"a {what} name must be printable characters, got {name!r}")
    return name


class Layer:
    """Base class: a layer without weights that passes its input through.

    Subclasses override ``build`` (calling :meth:`add_weight`),
    ``compute_output_shape``, ``forward(x, training)``, ``backward(dout)`` and
    ``get_config``.

    Attributes
    ----------
    params : dict name -> ndarray, every weight in declared order
    grads : dict name -> ndarray, the gradient of each trainable weight after ``backward``
    trainable : bool, False freezes every weight of the layer (as in Keras)
    """

    uses_rng = False  # True for layers with initial weights or random masks
    # Keras's arguments every layer accepts, at their defaults only (a class
    # adds its own: a convolution's kernel_constraint, ...)
    keras_defaults = {"activity_regularizer": None, "autocast": True}
    # the cases the registry's checks run (tests/test_registry.py, cnn gradcheck)
    examples = ()

    def __init_subclass__(cls, register=None, **kwargs):
        """Register the class by its name (``register=False`` for a base
        class that is not a layer of its own); ``build`` is wrapped so that
        a second build on the same shape keeps the weights."""
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _build_once(cls.__dict__["build"])
        if register is None:
            register = cls.__module__.startswith(__package__ + ".") and not cls.__name__.startswith("_")
        if register:
            if cls.__name__ in BUILT_IN:
                raise TypeError(f"two built-in layers named {cls.__name__!r}")
            LAYERS[cls.__name__] = BUILT_IN[cls.__name__] = cls

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, **kwargs):
        refuse_unknown(type(self), {k: v for k, v in kwargs.items() if k != "input_dim"})
        if name is not None:
            check_name(name, "layer")
        self.name = name or type(self).__name__.lower()
        self._named_by_user = name is not None
        if "input_dim" in kwargs:  # Keras's Dense(…, input_dim=n)
            input_shape = (kwargs["input_dim"],)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.output_shape = None
        if dtype is not None and dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = dtype  # None: cnn.backend.floatx() when built
        self.params = {}
        self.grads = {}
        self._trainable_names = []
        self._regularizers = {}
        self.trainable = bool(trainable)
        self.built = False
        # a layer that draws random numbers (initial weights, dropout masks) takes
        # its own generator from the seed sequence when made, so a seed fixes them
        self.rng = new_generator() if self.uses_rng else None
        # a model's first layer receives data: its input gradient is never used,
        # and Conv2D then skips computing it (Sequential sets this)
        self.needs_input_gradient = True

    def _owning_model(self):
        """The live model this layer belongs to (Sequential.add and a graph's
        Model set ``_owner``, a weak reference), or None."""
        owner = self.__dict__.get("_owner")
        return owner() if owner is not None else None

    # ---------------------------------------------------------- weights
    def add_weight(self, name, shape, initializer="zeros", trainable=True, regularizer=None):
        """Declare a weight: create it from ``initializer`` and record it, in order.

        Parameters
        ----------
        name : str, unique within the layer ('kernel', 'bias', 'gamma', ...)
        shape : tuple of ints
        initializer : a Keras initializer name or an :mod:`cnn.initializers` object
        trainable : bool, False for state that the optimizer must not touch
            (BatchNormalization's moving statistics)
        regularizer : None, 'l2', or a :mod:`cnn.regularizers` object
        """
        if name in self.params or name in self.__dict__.get("_shapes_only", ()):
            raise InputError(f"layer {self.name!r} already has a weight named {name!r}")
        dtype = np.dtype(self.dtype) if self.dtype else float_dtype()
        shape = tuple(int(s) for s in shape)
        if "_shapes_only" in self.__dict__:  # param_shapes: record, allocate nothing
            self._shapes_only[name] = shape
            return np.broadcast_to(np.zeros((), dtype), shape)
        if self.rng is None:  # a user's layer that did not say it draws numbers
            self.rng = new_generator()
        value = initializers.get(initializer)(shape, self.rng, dtype=dtype)
        self.params[name] = np.ascontiguousarray(value, dtype=dtype)
        if trainable:
            self._trainable_names.append(name)
        if regularizer is not None:
            self._regularizers[name] = regularizers.get(regularizer)
        return self.params[name]

    @property
    def trainable_names(self):
        """Names of the weights an optimizer steps: none when ``trainable`` is False."""
        return list(self._trainable_names) if self.trainable else []

    @property
    def weights(self):
        """Every weight, in declared order (the arrays themselves, as Keras gives its variables)."""
        return list(self.params.values())

    @property
    def trainable_weights(self):
        return [self.params[n] for n in self.trainable_names]

    @property
    def non_trainable_weights(self):
        trainable = set(self.trainable_names)
        return [v for n, v in self.params.items() if n not in trainable]

    def get_weights(self):
        return [v.copy() for v in self.params.values()]

    def set_weights(self, weights):
        """Set every weight from a list in declared order; shapes must match."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise InputError(f"layer {self.name!r} has {len(self.params)} weights, got {len(weights)} arrays")
        checked = []
        for (name, old), value in zip(self.params.items(), weights):
            value = np.asarray(value)
            if value.shape != old.shape:
                raise InputError(f"layer {self.name!r} {name}: expected shape {old.shape}, got {value.shape}")
            if not np.issubdtype(value.dtype, np.number) or not np.isfinite(value).all():
                raise InputError(f"layer {self.name!r} {name}: weights must be finite numbers")
            checked.append((name, value))
        for name, value in checked:
            self.params[name] = np.array(value, dtype=self.params[name].dtype, order="C")  # a transposed view too

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def regularization(self):
        """(loss, {name: gradient}) of this layer's weight regularizers."""
        loss, grads = 0.0, {}
        for name, reg in self._regularizers.items():
            loss += reg(self.params[name])
            grads[name] = reg.gradient(self.params[name])
        return loss, grads

    # ---------------------------------------------------------- shapes
    def build(self, input_shape):
        """Create the weights for samples of ``input_shape`` (no batch axis).
        Returns the output shape."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def param_shapes(self, input_shape):
        """The shape of each weight for this input shape, without allocating
        (the loaders check a file's size against it before building): a
        shape-only build of a copy, in which ``add_weight`` records each
        declared shape and hands back a read-only view of one zero."""
        probe = copy.copy(self)
        probe.params, probe.grads, probe._trainable_names, probe._regularizers = {}, {}, [], {}
        probe.built, probe._shapes_only = False, {}
        probe.build(input_shape)
        return dict(probe._shapes_only)

    # ---------------------------------------------------------- passes
    def __call__(self, x, training=False):
        """``layer(x)``: build on first use, then the forward pass."""
        from ..functional import call_layer, is_symbolic

        if is_symbolic(x):  # a layer called on cnn.Input(...) or on another layer's symbolic output
            return call_layer(self, x)
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape[1:])
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        self._check_input(x)
        return x

    def backward(self, dout):
        return dout

    def _image_samples(self, input_shape):
        """Refuse samples that are not images (height, width, channels), naming the layer."""
        if len(input_shape) != 3:
            raise InputError(f"{type(self).__name__} layer {self.name!r} needs samples (height, width, channels), "
                             f"got {tuple(input_shape)}")

    def _own_seed(self, seed):
        """Keras's ``seed=`` of a random layer: None (the engine's seeded generators, ``cnn.set_seed``) or
        an int >= 0, which gives the layer a generator of its own."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise InputError(f"{type(self).__name__}: seed must be None or an int >= 0, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        if self.seed is not None:
            self.rng = np.random.default_rng(self.seed)

    def _check_input(self, x):
        if x.shape[1:] != self.input_shape:
            raise InputError(
                f"layer {self.name!r} expects samples of shape {self.input_shape}, "
                f"got a batch of shape {x.shape}"
            )

    # ---------------------------------------------------------- config
    def get_config(self):
        """The constructor's arguments: ``type(layer).from_config(config)``
        makes an equal, unbuilt layer."""
        config = {"name": self.name, "trainable": self.trainable}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class WithActivation(Layer, register=False):
    """Shared by layers that end with an activation (Dense, Conv2D, Activation).

    ``backward_from_logits(dz)`` skips the activation: the model uses it when a
    softmax (or sigmoid) output meets a cross-entropy whose fused gradient is
    already with respect to the logits.
    """

    def _set_activation(self, activation):
        from .. import activations

        self.activation_fn = activations.get(activation)
        self.activation = self.activation_fn.name

    def _activate(self, z):
        fn = self.activation_fn
        self.logits = z if self.activation in ("softmax", "sigmoid") else None
        self._z = z if fn.needs_input else None
        out = fn.forward(z)  # relu writes into z: callers pass a fresh array
        self._out = out
        return out

    def _deactivate(self, dout):
        return self.activation_fn.backward(dout, self._out, self._z)

    def backward(self, dout):
        return self.backward_from_logits(self._deactivate(dout))


class KernelBiasLayer(WithActivation, register=False):
    """Shared by Dense and Conv2D: a kernel and an optional bias, each with its
    initializer and regularizer (Keras's arguments), and their config."""

    uses_rng = True
    keras_defaults = {"kernel_constraint": None, "bias_constraint": None, "lora_rank": None, "lora_alpha": None}

    def _set_kernel_and_bias(self, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                             bias_regularizer):
        self.use_bias = bool(use_bias)
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # checked now, not at build
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def _add_kernel_and_bias(self, kernel_shape):
        self.add_weight("kernel", kernel_shape, self.kernel_initializer, regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", kernel_shape[-1:], self.bias_initializer, regularizer=self.bias_regularizer)

    def _kernel_and_bias_config(self):
        return {"activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}
