"""Activations by Keras's names, and as functions (``cnn.activations.tanh(x)``).

A layer's ``activation=`` takes a name ('relu', 'tanh', 'sigmoid', 'elu',
'leaky_relu', 'softplus', 'gelu', 'swish' / 'silu', 'softmax', 'relu6',
'hard_sigmoid', 'hard_swish' / 'hard_silu', 'linear' or None) or one of the functions of this module, as Keras takes
``keras.activations.tanh``. Any other callable is refused: the engine needs
each activation's derivative, which it has only for its own.

The kernels (forward and vector-Jacobian product) are in
:mod:`kernels.activations`.
"""
import functools

import numpy as np

from kernels import activations as kernels

from .errors import InputError

ALIASES = {None: "linear", "swish": "silu", "hard_swish": "hard_silu"}
NAMES = tuple(kernels.KERNELS)  # every activation the engine has, by the name its configs store


class ActivationFunction:
    """One activation: ``forward(z) -> out`` and ``backward(dout, out, z) -> dz``.

    ``needs_input`` says whether ``backward`` reads ``z`` (else it is given None).
    """

    def __init__(self, name, **params):
        forward, backward = kernels.KERNELS[name]
        self.name = name
        self.params = params
        self.forward = functools.partial(forward, **params) if params else forward
        self.backward = functools.partial(backward, **params) if params else backward
        self.needs_input = name in kernels.NEEDS_INPUT

    def __call__(self, x):
        z = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
        return self.forward(z)  # relu writes into its argument: z is our own copy

    def __repr__(self):
        return f"<activation {self.name}>"


def _public(name, doc):
    act = ActivationFunction(name)

    def function(x):
        return act(x)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    function.activation_name = name
    return function


relu = _public("relu", "max(x, 0).")
tanh = _public("tanh", "Hyperbolic tangent.")
sigmoid = _public("sigmoid", "1 / (1 + exp(-x)).")
elu = _public("elu", "x for x > 0, exp(x) - 1 below (alpha 1).")
leaky_relu = _public("leaky_relu", "x for x > 0, 0.2 x below (Keras's default slope for the function).")
softplus = _public("softplus", "log(1 + exp(x)).")
silu = _public("silu", "x * sigmoid(x), also called swish.")
swish = silu
gelu = _public("gelu", "0.5 x (1 + erf(x / sqrt 2)), the exact GELU.")
softmax = _public("softmax", "exp(x) / sum(exp(x)) along the last axis.")
linear = _public("linear", "The identity.")
relu6 = _public("relu6", "min(max(x, 0), 6).")
hard_sigmoid = _public("hard_sigmoid", "relu6(x + 3) / 6: 0 below -3, 1 above 3 (Keras 3's definition).")
hard_silu = _public("hard_silu", "x * relu6(x + 3) / 6, also called hard swish.")
hard_swish = hard_silu


def get(identifier):
    """The :class:`ActivationFunction` for a name, None, or a function of this module."""
    if isinstance(identifier, ActivationFunction):
        return identifier
    if callable(identifier):
        name = getattr(identifier, "activation_name", None)
        if name is None:
            raise InputError(
                f"activation={identifier!r}: a callable must be one of cnn.activations "
                "(the engine needs its derivative); write a layer with its own backward instead"
            )
        return ActivationFunction(name)
    name = ALIASES.get(identifier, identifier)
    if not isinstance(name, str) or name not in kernels.KERNELS:
        known = sorted(set(kernels.KERNELS) | {"swish", "hard_swish"})
        raise InputError(f"unknown activation {identifier!r}; known: {known}")
    return ActivationFunction(name)


def serialize(activation):
    """The Keras name of an activation (what configs store)."""
    return activation.name
