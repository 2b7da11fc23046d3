"""Keras's functional API: symbolic tensors, nodes, and a model that is a graph.

``cnn.Input(shape)`` is a symbolic tensor (:class:`KerasTensor`); calling a
layer on symbolic tensors records a :class:`Node` (the layer, the tensors it
took, the tensor it made) and returns the new tensor; ``cnn.Model(inputs,
outputs)`` sorts the nodes once, from the output back (each node after every
node it reads). Its forward pass runs the nodes in that order and keeps each
tensor's value; the backward pass runs them in reverse, and a tensor that
feeds several layers gets the sum of their gradients.

The model shares ``compile`` / ``fit`` / ``evaluate`` / ``predict``, the
weights API and the optimizers with :class:`cnn.Sequential` (it is the same
trainer); the softmax-with-cross-entropy fusion is taken when the output
layer ends in the softmax the loss can take the logits of.

A functional model saves to the engine's ``.npz`` (format version 2: each
layer with the indices of the layers it reads) and loads back whole. What
this first version refuses, by name, rather than half-does: more than one
input or output, a layer called twice (shared weights), a model used as a
layer, ``.keras`` files of graphs, and subclassed models.
"""
import collections
import itertools
import weakref

import numpy as np

from .errors import InputError, NotInEngineError
from .model import Sequential, _pool_over_conv, _snake
from .tensors import KerasTensor


class Node:
    """One call of a layer in a graph: the tensors it took and the one it made,
    numbered in the order the calls were made (Keras's default names follow it)."""

    _made = itertools.count()

    def __init__(self, layer, inputs, output):
        self.layer, self.inputs, self.output = layer, list(inputs), output
        self.index = next(Node._made)


def is_symbolic(x):
    return isinstance(x, KerasTensor) or (isinstance(x, (list, tuple)) and bool(x)
                                          and all(isinstance(t, KerasTensor) for t in x))


def call_layer(layer, x):
    """``layer(x)`` on symbolic tensors: build the layer for their shapes, record the node."""
    from .layers.merging import _Merge

    if getattr(layer, "_node", None) is not None:
        raise NotInEngineError(f"layer {layer.name!r} is called a second time: shared layers (one layer, two calls, "
                               "its weights shared) are not in this engine yet; make a second layer")
    owner = layer._owning_model()
    if owner is not None:
        raise InputError(f"layer {layer.name!r} is already in model {owner.name!r}; make a new one with the same "
                         "settings: type(layer).from_config(layer.get_config())")
    merging = isinstance(layer, _Merge)
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    if merging != isinstance(x, (list, tuple)):
        raise InputError(f"{type(layer).__name__} layer {layer.name!r} takes "
                         f"{'a list of tensors' if merging else 'one tensor'}, got "
                         f"{'a list' if isinstance(x, (list, tuple)) else 'one'}")
    shapes = [t.sample_shape for t in inputs]
    layer.build(shapes if merging else shapes[0])
    output = KerasTensor(layer.output_shape, inputs[0].dtype)
    node = Node(layer, inputs, output)
    output._node = node
    layer._node = node
    layer.input = inputs if merging else inputs[0]
    layer.output = output
    return output


def _one(tensors, what):
    if isinstance(tensors, dict):
        raise NotInEngineError(f"Model: {what} as a dict is not in this engine yet: give one tensor")
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise NotInEngineError(f"Model: {len(tensors)} {what} are not in this engine yet (one input, one output)")
        tensors = tensors[0]
    if not isinstance(tensors, KerasTensor):
        raise InputError(f"Model: {what} must be symbolic tensors (from cnn.Input and layer calls), got "
                         f"{type(tensors).__name__}")
    return tensors


def sort_nodes(inputs, output):
    """The nodes between ``inputs`` and ``output`` in Keras 3's order: by depth
    (the longest path to the output) from the deepest, and within a depth in
    the order a depth-first walk from the output first meets them (inputs in
    order). So every node comes after the nodes whose outputs it reads, the
    output's node last, and ``model.layers`` and ``get_weights()`` line up with
    Keras's for the same graph. Refused: a tensor the inputs do not lead to,
    and a cycle."""
    first_met, post, state = {}, [], {}
    stack = [(output, False)]
    while stack:
        tensor, finished = stack.pop()
        node = tensor._node
        if node is None:
            if not any(tensor is t for t in inputs):
                raise InputError(f"Model: the graph reads {tensor!r}, which is not the model's input")
            continue
        key = id(node)
        if finished:
            state[key] = "done"
            post.append(node)
            continue
        if state.get(key) == "done":
            continue
        if state.get(key) == "open":
            raise InputError("Model: the graph has a cycle")
        state[key] = "open"
        first_met.setdefault(key, len(first_met))
        stack.append((tensor, True))
        for t in reversed(node.inputs):
            if t._node is None or state.get(id(t._node)) != "done":
                stack.append((t, False))
    depth = {}
    for node in reversed(post):  # consumers before producers
        d = depth.setdefault(id(node), 0)
        for t in node.inputs:
            if t._node is not None:
                depth[id(t._node)] = max(depth.get(id(t._node), 0), d + 1)
    return sorted(post, key=lambda n: (-depth[id(n)], first_met[id(n)]))


class Model(Sequential):
    """A model that is a graph: ``cnn.Model(inputs, outputs)``, as ``keras.Model``.

    >>> inputs = cnn.Input((28, 28, 1))
    >>> x = cnn.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    >>> shortcut = x
    >>> x = cnn.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    >>> x = cnn.layers.add([x, shortcut])
    >>> outputs = cnn.layers.Dense(10, activation="softmax")(cnn.layers.Flatten()(x))
    >>> model = cnn.Model(inputs, outputs)

    ``model.layers`` lists the layers with each after every layer it reads
    (depth first from the output); compile, fit, evaluate, predict and the
    weights API are Sequential's.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if kwargs:
            raise InputError(f"Model: unknown or unsupported argument(s) {', '.join(sorted(kwargs))}")
        if inputs is None or outputs is None:
            if type(self) is not Model:
                raise NotInEngineError(
                    f"{type(self).__name__}: subclassed models (a call method over layers made in __init__) "
                    "are not in this engine yet; build the graph with cnn.Input and layer calls, then "
                    "cnn.Model(inputs, outputs)")
            raise InputError("Model needs inputs= and outputs=: symbolic tensors from cnn.Input and layer calls")
        inp, out = _one(inputs, "inputs"), _one(outputs, "outputs")
        if inp._node is not None:
            raise NotInEngineError("Model: an input that a layer made (a sub-graph from the middle) is not in "
                                   "this engine yet; start from the cnn.Input tensor")
        nodes = sort_nodes([inp], out)
        if not nodes:
            raise InputError("Model: the output is the input itself; put a layer between them")
        super().__init__(name=name or "functional")
        self._nodes = nodes
        for node in sorted(nodes, key=lambda n: n.index):  # Keras's default names, in the order of the calls
            layer = node.layer
            if getattr(layer, "_owner", None) is None and not layer._named_by_user:
                base = _snake(type(layer).__name__)
                count = self._name_counts.get(base, 0)
                layer.name = base if count == 0 else f"{base}_{count}"
                self._name_counts[base] = count + 1
        for node in nodes:
            layer = node.layer
            if layer.name in self._names:
                raise InputError(f"a layer named {layer.name!r} is already in the model")
            self._names.add(layer.name)
            layer.needs_input_gradient = not any(t is inp for t in node.inputs)
            if getattr(layer, "_owner", None) is None:  # a sub-model shares the layers of the model it came from
                layer._owner = weakref.ref(self)
        self.layers = [node.layer for node in nodes]
        # the fusion plan: a max-pool's backward runs inside the Conv2D's below it
        # (Conv2D.backward_through_maxpool) where the convolution's output feeds that pool alone
        readers = collections.Counter(id(t) for node in nodes for t in node.inputs)
        self._pool_over_conv = {}
        for node in nodes:
            below = node.inputs[0]._node
            if below is not None and _pool_over_conv(node.layer, below.layer) and readers[id(node.inputs[0])] == 1:
                self._pool_over_conv[id(node)] = below
        self.input, self.output, self.inputs, self.outputs = inp, out, [inp], [out]
        self.input_shape = inp.sample_shape
        self.built = True

    def add(self, layer):
        raise InputError("Model.add: a functional model's layers come from its graph; call the layer on a "
                         "tensor and make a new cnn.Model")

    def build(self, input_shape):
        if tuple(input_shape) != self.input_shape:
            raise InputError(f"model {self.name!r} takes samples of shape {self.input_shape}, "
                             f"not {tuple(input_shape)}")

    def _calls(self, x, training):
        """Run the nodes in order on ``x``: yields each layer, the arrays it read and the one it made."""
        from .layers.merging import _Merge

        values = {id(self.input): x}
        for node in self._nodes:
            ins = [values[id(t)] for t in node.inputs]
            out = node.layer.forward(ins if isinstance(node.layer, _Merge) else ins[0], training=training)
            values[id(node.output)] = out
            yield node.layer, ins, out

    def _forward(self, x, training):
        for _, _, out in self._calls(x, training):
            pass
        return out

    def _connections(self):
        return [", ".join(self.layers[j].name if j >= 0 else "input" for j in sources) for sources in self.producers()]

    def trace(self, x, training=False):
        """Every layer's call on one batch, in ``layers`` order: ``(layer, inputs, output)``."""
        return list(self._calls(self._check_x(np.asarray(x)), training))

    def producers(self):
        """For each layer, the indices in ``layers`` of the layers it reads (-1: the input)."""
        index = {id(node.output): i for i, node in enumerate(self._nodes)}
        return [[index.get(id(t), -1) for t in node.inputs] for node in self._nodes]

    def _backward(self):
        pending = {}
        nodes = self._nodes
        if self._fused:  # the output layer's softmax meets the cross-entropy: (p - y) / n from the logits
            last = nodes[-1]
            first = last.layer.backward_from_logits(self.loss.backward_from_logits())
            self._send(last, first, pending)
            nodes = nodes[:-1]
        else:
            pending[id(self.output)] = self.loss.backward()
        folded = set()
        for node in reversed(nodes):
            if id(node) in folded:
                continue
            grad = pending.pop(id(node.output))
            conv = self._pool_over_conv.get(id(node))
            if conv is not None:  # the pool and the convolution under it in one step
                self._send(conv, conv.layer.backward_through_maxpool(grad, node.layer), pending)
                folded.add(id(conv))
            else:
                self._send(node, node.layer.backward(grad), pending)

    def _send(self, node, grads, pending):
        from .layers.merging import _Merge

        grads = grads if isinstance(node.layer, _Merge) else [grads]
        for tensor, grad in zip(node.inputs, grads):
            if tensor is self.input:
                continue
            key = id(tensor)
            pending[key] = pending[key] + grad if key in pending else grad  # a tensor read twice: the sum

    def get_config(self):
        from .io import model_config

        return model_config(self)

    def save(self, path):
        """Save as the engine's ``.npz`` (format version 2: the layers and what each
        reads, the weights, the training state); a ``.keras`` file of a functional
        model is not written yet."""
        from pathlib import Path

        if Path(path).suffix in (".keras", ".h5"):
            raise NotInEngineError(f"{path}: a functional model is not written as a Keras file yet; save it as "
                                   ".npz (cnn.load_model reads it back whole)")
        from .io import save_model

        save_model(self, path)


