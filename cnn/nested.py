"""A Sequential model used as a layer of a functional model, as Keras allows:

    augment = cnn.Sequential([cnn.layers.RandomFlip("horizontal"), cnn.layers.RandomRotation(0.1)])
    block = cnn.Sequential([cnn.Input((32, 32, 3)), cnn.layers.Conv2D(16, 3), cnn.layers.BatchNormalization()])
    inputs = cnn.Input((32, 32, 3))
    x = block(augment(inputs))

Calling a Sequential on a symbolic tensor makes a :class:`ModelLayer` over it
(one per model): a layer whose weights are the model's own arrays (the same
objects, in the model's order, as Keras's weights of a nested model), whose
forward pass is the model's and whose backward pass runs the model's layers
from the output's gradient down, fusions included. ``model.layers`` of the
outer model lists it as one layer named after the Sequential, of type
``Sequential``, as Keras's does; training the outer model trains the inner
layers, and ``block.trainable = False`` freezes them (BatchNormalization then
runs in inference mode, as Keras 3's). ``block(x, training=False)`` is
refused: Keras 3.15 records it but lets ``fit``'s ``training=True`` replace
it (``operation_fn`` in keras/src/models/functional.py), so it would not do
what it says. Not in the engine yet, refused by name: a functional model
used as a layer, one Sequential called twice, and saving the outer model
whole (``get_weights`` / ``set_weights`` work).
"""
from .errors import InputError, NotInEngineError
from .layers.base import Layer


class ModelLayer(Layer, register=False):
    """The layer a Sequential becomes when it is called on a symbolic tensor."""

    def __init__(self, model):
        super().__init__(name=model.name)
        self.model = model
        self._named_by_user = True  # its name is the model's, as Keras's nested model keeps its own

    @property
    def trainable(self):
        return self.__dict__.get("_trainable", True) and self.model.__dict__.get("trainable", True)

    @trainable.setter
    def trainable(self, value):
        self.__dict__["_trainable"] = bool(value)

    def _view(self):
        """The inner layers' weights as this layer's: 'inner layer/weight' -> the same array."""
        self.params = {f"{layer.name}/{name}": value for layer in self.model.layers
                       for name, value in layer.params.items()}
        self._trainable_names = [f"{layer.name}/{name}" for layer in self.model.layers
                                 for name in layer.trainable_names]

    def build(self, input_shape):
        wanted = tuple(self.model.input_shape) if self.model.built else None
        if wanted is not None and tuple(input_shape) != wanted:
            raise InputError(f"model {self.model.name!r} takes samples of shape {wanted}, got {tuple(input_shape)}")
        if not self.model.built:
            self.model.build(tuple(input_shape))
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.model.layers[-1].output_shape)
        self.built = True
        self._view()
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return tuple(self.model.layers[-1].output_shape)

    def forward(self, x, training=False):
        self._view()  # set_weights on an inner layer puts new arrays in it
        return self.model._forward(x, training=training)

    def backward(self, dout):
        dx = self.model._backward_from(dout, self.needs_input_gradient)
        self.grads = {f"{layer.name}/{name}": layer.grads[name] for layer in self.model.layers
                      for name in layer.trainable_names}
        return dx

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self.params):
            raise InputError(f"model {self.name!r} has {len(self.params)} weights, got {len(weights)} arrays")
        start = 0
        for layer in self.model.layers:
            count = len(layer.params)
            layer.set_weights(weights[start:start + count])
            start += count
        self._view()

    def regularization(self):
        loss, grads = 0.0, {}
        for layer in self.model.layers:
            if layer._regularizers:
                part, parts = layer.regularization()
                loss += part
                grads.update({f"{layer.name}/{name}": g for name, g in parts.items()})
        return loss, grads

    @property
    def _regularizers(self):
        return {name: None for layer in self.model.layers for name in layer._regularizers}

    @_regularizers.setter
    def _regularizers(self, value):
        pass  # the inner layers keep their own

    def get_config(self):
        raise NotInEngineError(f"saving a model that holds the Sequential {self.name!r} as a layer is not in this "
                               "engine yet: get_weights / set_weights work, or build the outer model from the "
                               "inner model's layers")


class Sequential(ModelLayer, register=False):
    """A Sequential as a layer: the class name Keras's ``model.layers`` and summaries show for it."""


def as_layer(model, training=None):
    """The layer ``model`` is when called on symbolic tensors (one per model: a second call is refused)."""
    from .functional import Model

    if isinstance(model, Model):
        raise NotInEngineError(f"a functional model ({model.name!r}) used as a layer is not in this engine yet: a "
                               "Sequential is, or call the model's layers on the tensors")
    if training is not None:
        raise NotInEngineError(f"{model.name}(x, training={training!r}) on a symbolic tensor: Keras 3 records it, "
                               "then fit's training=True replaces it, so the engine refuses it rather than follow "
                               "either way; freeze the model with model.trainable = False (BatchNormalization in "
                               "inference mode, as Keras)")
    layer = model.__dict__.get("_as_layer")
    if layer is not None:
        raise NotInEngineError(f"the Sequential {model.name!r} is already a layer of a model: calling it on a second "
                               "tensor (shared between two calls or two models) is not in this engine yet")
    layer = Sequential(model)
    model.__dict__["_as_layer"] = layer
    return layer
