"""Layers: thin classes over the pure kernels in :mod:`kernels`, split by kind
as Keras splits them.

Every layer has

* ``params`` and ``grads``: dicts of arrays (``grads`` for the trainable
  weights, filled by ``backward``); weights are declared in ``build`` with
  ``add_weight(name, shape, initializer, trainable)`` in Keras's order;
* ``build(input_shape)``: creates the weights for a per-sample input shape
  (no batch axis) and returns the per-sample output shape;
* ``forward(x, training=False)`` and ``backward(dout)``;
* ``get_config()`` / ``from_config(config)``: the constructor arguments.

Data is NHWC; convolution kernels are (kh, kw, cin, cout) and dense kernels
(in, out), exactly as in Keras, so weights move across unchanged.

A user's own layer subclasses :class:`Layer`; ``@register`` (or
``custom_objects=`` when loading) lets saved models find it by name.
"""
import importlib
import json
import pkgutil

from ..errors import InputError
from .base import BUILT_IN, LAYERS, Example, Layer

# every module of this package, imported: each layer class registers itself
# when defined (Layer.__init_subclass__), so a new layer is its file alone
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from .core import Input, InputLayer
from .merging import add, average, concatenate, maximum, minimum, multiply, subtract

globals().update(BUILT_IN)  # cnn.layers.Conv2D, ... : every registered class, by its name

# Keras's other names for the same layers
ALIASES = {"Convolution2D": "Conv2D", "MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D",
           "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalMaxPool2D": "GlobalMaxPooling2D"}
globals().update({alias: BUILT_IN[name] for alias, name in ALIASES.items()})
FUNCTIONS = {f.__name__: f for f in (add, subtract, multiply, average, maximum, minimum, concatenate)}


def register(cls=None, *, name=None):
    """Register a user's layer class so that saved models can be loaded by name.

    >>> @cnn.layers.register
    ... class Scale(cnn.layers.Layer): ...
    """
    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise InputError(f"register takes a subclass of cnn.layers.Layer, got {cls!r}")
        key = name or cls.__name__
        if key in BUILT_IN and BUILT_IN[key] is not cls:
            raise InputError(f"{key!r} is a built-in layer; register yours under another name")
        LAYERS[key] = cls
        return cls

    return add(cls) if cls is not None else add


def layer_spec(layer):
    """How a layer is saved: its class name and its constructor's arguments."""
    config = layer.get_config()
    try:
        json.dumps(config)
    except TypeError as err:
        raise InputError(f"layer {layer.name!r} ({type(layer).__name__}): get_config() must return JSON values "
                         f"(numbers, strings, lists, dicts) so the model can be saved ({err})") from None
    return {"class_name": type(layer).__name__, "config": config}


def get_class(class_name, custom_objects=None):
    """The layer class saved as ``class_name`` (custom objects first, then the
    registry); Keras's 'package>Name' registered names are accepted too."""
    custom_objects = custom_objects or {}
    for key in (class_name, str(class_name).split(">")[-1]):
        if key in custom_objects:
            return custom_objects[key]
        if key in LAYERS:
            return LAYERS[key]
    return None


__all__ = [*BUILT_IN, *ALIASES, *FUNCTIONS, "Layer", "Example", "Input", "InputLayer", "register", "get_class"]


def __getattr__(name):
    """A Keras layer the engine lacks: the engine's error, saying what to use instead (cnn.missing)."""
    from ..missing import LAYERS as MISSING, refuse

    raise refuse("cnn.layers", name, MISSING)
