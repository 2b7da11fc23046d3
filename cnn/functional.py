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
trainer). Several inputs and outputs take Keras's forms (lists, dicts by
name; a loss, a weight and metrics per output) and log Keras's names. A layer
called twice shares its weights: each call keeps the values its backward pass
needs, and the gradients of its calls are summed. The fused paths
(softmax with cross-entropy, max-pool over a convolution) are a plan taken
where a tensor has one reader and the layers are not shared.

A functional model saves to the engine's ``.npz`` (format version 3: the
inputs, each layer's calls and the outputs, as Keras writes a graph; version
2 files still load) and to Keras's ``.keras`` (its ``Functional`` config),
both ways. A subclassed model (``class Net(cnn.Model)``, layers made in
``__init__``, a ``call``) is built on its first call by tracing ``call`` on
symbolic inputs; its layers are in attribute order, as Keras's. Refused by
name rather than half-done: a model used as a layer, a layer shared between
two models, a Python branch on ``training`` in ``call``, NumPy arithmetic on
symbolic tensors, and saving a subclassed model whole.
"""
import collections
import itertools
import weakref

import numpy as np

from .errors import InputError, NotInEngineError
from .limits import MAX_NODES
from .layers.base import Layer
from .model import Sequential, blas_held, _as_input, _checked_samples, _checked_targets, _pool_over_conv, _snake
from .tensors import KerasTensor


class Node:
    """One call of a layer in a graph: the tensors it took and the one it made,
    numbered in the order the calls were made (Keras's default names follow it)."""

    _made = itertools.count()

    def __init__(self, layer, inputs, output, chain=False):
        self.layer, self.inputs, self.output = layer, list(inputs), output
        self.index = next(Node._made)
        self.chain = chain  # made by a Sequential for its own layers, not by a call in a user's graph


def is_symbolic(x):
    return isinstance(x, KerasTensor) or (isinstance(x, (list, tuple)) and bool(x)
                                          and all(isinstance(t, KerasTensor) for t in x))


def call_layer(layer, x):
    """``layer(x)`` on symbolic tensors: build the layer for their shapes (on its
    first call), record the node. A layer called again is shared: the same
    weights, a node of its own; it must see inputs of the shapes it was built for."""
    from .layers.merging import _Merge

    owner = layer._owning_model()
    if owner is not None and not _graph_nodes(layer):
        raise InputError(f"layer {layer.name!r} is already in model {owner.name!r}; make a new one with the same "
                         "settings: type(layer).from_config(layer.get_config())")
    if owner is not None:
        raise NotInEngineError(f"layer {layer.name!r} is already in model {owner.name!r}: calling it again to "
                               "build a second model (weights shared between models) is not in this engine yet; "
                               "call it before making the first model, or make a new layer and copy the weights")
    merging = isinstance(layer, _Merge)
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    if merging != isinstance(x, (list, tuple)):
        raise InputError(f"{type(layer).__name__} layer {layer.name!r} takes "
                         f"{'a list of tensors' if merging else 'one tensor'}, got "
                         f"{'a list' if isinstance(x, (list, tuple)) else 'one'}")
    shapes = [t.sample_shape for t in inputs]
    shape = tuple(shapes) if merging else shapes[0]
    if not _graph_nodes(layer):
        layer.__dict__.pop("_nodes", None)  # an unowned layer's chain of a Sequential that is gone
    nodes = layer.__dict__.setdefault("_nodes", [])
    if nodes and shape != layer.input_shape:
        raise InputError(f"layer {layer.name!r} was built for inputs of shape {layer.input_shape} and is called "
                         f"again on {shape}: a shared layer takes the same shapes at every call")
    if not nodes:
        layer.build(list(shapes) if merging else shape)
    output = KerasTensor(layer.output_shape, inputs[0].dtype)
    node = Node(layer, inputs, output)
    output._node = node
    if not nodes:  # as Keras's layer.input / layer.output: those of its first call
        layer.input = inputs if merging else inputs[0]
        layer.output = output
    nodes.append(node)
    return output


def _graph_nodes(layer):
    """The calls of ``layer`` in users' graphs (a Sequential's own chain left out)."""
    return [node for node in layer.__dict__.get("_nodes", ()) if not node.chain]


def _tensors(tensors, what):
    """The model's inputs or outputs as a list of symbolic tensors."""
    if isinstance(tensors, dict):
        raise NotInEngineError(f"Model: {what} as a dict is not in this engine yet: give a tensor or a list")
    listed = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if not listed:
        raise InputError(f"Model: no {what}")
    for t in listed:
        if not isinstance(t, KerasTensor):
            raise InputError(f"Model: {what} must be symbolic tensors (from cnn.Input and layer calls), got "
                             f"{type(t).__name__}")
    if len({id(t) for t in listed}) != len(listed):
        raise InputError(f"Model: a tensor is given twice in the {what}")
    return listed


def sort_graph(inputs, outputs):
    """The nodes and the layers between ``inputs`` and ``outputs``, in Keras 3's
    orders (``keras.src.ops.function.map_graph``): a depth-first walk from each
    output in turn (inputs in order) numbers the layers as it first meets them;
    a node's depth is the longest path from it to an output, a layer's the
    largest depth of its nodes (a shared layer's nodes are raised to it); the
    layers are sorted by depth from the deepest, ties in walk order. So
    ``model.layers`` and ``get_weights()`` line up with Keras's for the same
    graph. The nodes come in an order that runs each after the nodes it reads.
    Refused: a tensor the inputs do not lead to, and a cycle."""
    met, post, state = {}, [], {}
    for output in outputs:
        stack = [(output, False)]
        while stack:
            tensor, finished = stack.pop()
            if any(tensor is t for t in inputs):  # the walk stops at an input, a layer's output or not (as Keras)
                continue
            node = tensor._node
            if node is None:
                if not any(tensor is t for t in inputs):
                    raise InputError(f"Model: the graph reads {tensor!r}, which is not one of the model's inputs")
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
            met.setdefault(id(node.layer), len(met))
            stack.append((tensor, True))
            for t in reversed(node.inputs):
                if t._node is None or state.get(id(t._node)) != "done" or any(t is i for i in inputs):
                    stack.append((t, False))
    node_depth, layer_depth = {}, {}
    for node in reversed(post):  # consumers before producers
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = layer_depth[id(node.layer)] = depth
        for t in node.inputs:
            if t._node is not None:
                node_depth[id(t._node)] = max(node_depth.get(id(t._node), 0), depth + 1)
    order = {id(node): i for i, node in enumerate(post)}
    nodes = sorted(post, key=lambda n: (-node_depth[id(n)], order[id(n)]))
    layers = list({id(n.layer): n.layer for n in post}.values())
    layers.sort(key=lambda layer: (-layer_depth[id(layer)], met[id(layer)]))
    return nodes, layers


def sort_nodes(inputs, output):
    """The nodes between ``inputs`` and one ``output``, each after the nodes it reads."""
    return sort_graph(inputs, [output])[0]


def _by_output(value, names, what, single_ok):
    """A compile argument given for the whole model, as a list (one entry per
    output, in order) or as a dict keyed by output names, as one entry per
    output (None where a dict leaves an output out)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise InputError(f"compile: {what} names {unknown[0]!r}, which is not an output; the outputs are "
                             f"{names}")
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise InputError(f"compile: {what} is a list of {len(value)} for a model with {len(names)} outputs "
                             f"{names}: give one per output, or a dict keyed by their names")
        return list(value)
    if not single_ok:
        raise InputError(f"compile: {what}={value!r} for a model with {len(names)} outputs {names}: give a list "
                         "with one per output, or a dict keyed by their names")
    return [value] * len(names)


_SNAPSHOT_SKIPS = ("grads",)  # a shared layer's weight gradients are summed over its calls, never restored


class Model(Sequential):
    """A model that is a graph: ``cnn.Model(inputs, outputs)``, as ``keras.Model``.

    >>> inputs = cnn.Input((28, 28, 1))
    >>> x = cnn.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    >>> shortcut = x
    >>> x = cnn.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    >>> x = cnn.layers.add([x, shortcut])
    >>> outputs = cnn.layers.Dense(10, activation="softmax")(cnn.layers.Flatten()(x))
    >>> model = cnn.Model(inputs, outputs)

    ``inputs`` and ``outputs`` are a tensor or lists of them; ``x`` and ``y``
    then are arrays, lists of arrays in that order, or dicts keyed by the
    input names and the output layers' names (``model.output_names``). A
    layer called several times shares its weights: each call keeps what its
    backward pass needs, and the gradients of its calls are summed.
    ``model.layers`` is in Keras's order; compile, fit, evaluate, predict and
    the weights API are Sequential's trainer, which this model shares.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if kwargs:
            raise InputError(f"Model: unknown or unsupported argument(s) {', '.join(sorted(kwargs))}")
        if inputs is None and outputs is None and type(self) is not Model:
            # a subclassed model: its layers come from __init__, its graph from tracing call() when built
            if type(self).call is Model.call:
                raise InputError(f"{type(self).__name__}: a subclassed model needs a call(self, inputs, "
                                 "training=False) method that applies its layers")
            super().__init__(name=name or _snake(type(self).__name__))
            self._nodes, self._subclassed = None, True
            return
        if inputs is None or outputs is None:
            raise InputError("Model needs inputs= and outputs=: symbolic tensors from cnn.Input and layer calls")
        super().__init__(name=name or "functional")
        self._set_graph(_tensors(inputs, "inputs"), _tensors(outputs, "outputs"))

    def _set_graph(self, ins, outs, order=None):
        """Take the graph from ``ins`` to ``outs``: its nodes sorted, its layers
        (in Keras's order, or in ``order``: a subclassed model's attribute order)."""
        nodes, layers = sort_graph(ins, outs)  # an input may be a layer's output: a sub-graph from the middle
        if not nodes:
            raise InputError("Model: the output is the input itself; put a layer between them")
        if order is not None:
            position = {id(layer): i for i, layer in enumerate(order)}
            stray = [layer.name for layer in layers if id(layer) not in position]
            if stray:
                raise InputError(f"{type(self).__name__}.call uses layer {stray[0]!r}, which is no attribute of the "
                                 "model: make the layers in __init__ (self.name = cnn.layers...), then use them in call")
            layers.sort(key=lambda layer: position[id(layer)])
        self._nodes = nodes
        # Keras's default names: in the order of the calls (a subclassed model's: of its attributes)
        for layer in (layers if order is not None else sorted(layers, key=lambda layer: layer._nodes[0].index)):
            if getattr(layer, "_owner", None) is None and not layer._named_by_user:
                base = _snake(type(layer).__name__)
                count = self._name_counts.get(base, 0)
                layer.name = base if count == 0 else f"{base}_{count}"
                self._name_counts[base] = count + 1
        for layer in layers:
            if layer.name in self._names:
                raise InputError(f"a layer named {layer.name!r} is already in the model")
            self._names.add(layer.name)
            if getattr(layer, "_owner", None) is None:  # a sub-model shares the layers of the model it came from
                layer._owner = weakref.ref(self)
        self.layers = layers
        # what the passes look up is keyed by layer names and node numbers, which stay
        # when a model is copied (copy.deepcopy, as gradient checks do), not by id()
        uses = collections.Counter(node.layer.name for node in nodes)
        self._shared = {name for name, count in uses.items() if count > 1}
        model_inputs = {id(t) for t in ins}
        # a layer that reads the data alone skips its input gradient (Conv2D then does not compute it)
        self._needs_dx = {node.index: not any(id(t) in model_inputs for t in node.inputs) for node in nodes}
        for node in nodes:
            if node.layer.name not in self._shared:
                node.layer.needs_input_gradient = self._needs_dx[node.index]
        self._states = {}  # a shared layer's values of each call, for that call's backward pass
        self._readers = collections.Counter(id(t) for node in nodes for t in node.inputs)
        # the fusion plan: a max-pool's backward runs inside the Conv2D's below it
        # (Conv2D.backward_through_maxpool) where the convolution's output feeds that pool alone
        self._pool_over_conv = {}
        for node in nodes:
            below = node.inputs[0]._node
            if (below is not None and _pool_over_conv(node.layer, below.layer)
                    and self._readers[id(node.inputs[0])] == 1 and not any(node.inputs[0] is t for t in outs)
                    and not {node.layer.name, below.layer.name} & self._shared):
                self._pool_over_conv[node.index] = below
        names = [t.name for t in ins]
        for i, t in enumerate(ins):
            if t.name is None:  # Keras's default names for inputs, numbered within the model here
                t.name = next(f"input_layer{'' if k == 0 else f'_{k}'}" for k in itertools.count()
                              if f"input_layer{'' if k == 0 else f'_{k}'}" not in names)
                names[i] = t.name
        if len(set(names)) != len(names):
            raise InputError(f"Model: two inputs share a name: {names}")
        self.inputs, self._outputs = ins, outs
        self.input_names = names
        self.output_names = [t._node.layer.name for t in outs]
        self.input_shape = ins[0].sample_shape if len(ins) == 1 else [t.sample_shape for t in ins]
        self._losses, self._loss_weights, self._metric_specs, self._fused_outputs = [], [], [], set()
        self.built = True

    # ------------------------------------------------------------ subclassed models
    def __setattr__(self, name, value):
        """A subclassed model tracks the layers its __init__ assigns, in order (Keras's order
        for ``model.layers`` and the weights); a list or tuple of layers counts as its layers."""
        if self.__dict__.get("_subclassed") is True:
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, Sequential) for v in values):
                raise NotInEngineError(f"{type(self).__name__}.{name}: a model inside a model (a model used as a "
                                       "layer) is not in this engine yet; assign its layers instead")
            if values and all(isinstance(v, Layer) for v in values):
                tracked = self.__dict__.setdefault("_tracked", [])
                tracked.extend(v for v in values if not any(v is t for t in tracked))
        super().__setattr__(name, value)

    def call(self, inputs, training=False):
        """The forward pass (Keras's ``Model.call``): a subclass writes its own, over
        the layers its ``__init__`` made; a functional model runs its graph."""
        if self.__dict__.get("_subclassed"):
            raise InputError(f"{type(self).__name__} has no call method of its own")
        return self._forward(self._check_x(_as_input(inputs)), training=training)

    def _trace(self, shapes):
        """Build a subclassed model: call ``call`` on symbolic inputs of ``shapes``
        (with training False, then True: both must take the same path), and take
        the graph it made. NumPy arithmetic between layer outputs is refused by
        the symbolic tensors themselves (use a merge layer)."""
        import inspect

        from .layers import Input

        takes_training = "training" in inspect.signature(self.call).parameters

        def run(training):
            ins = [Input(shape, name="input_layer" if k == 0 else f"input_layer_{k}") for k, shape in enumerate(shapes)]
            arg = ins[0] if len(ins) == 1 else ins
            out = self.call(arg, training=training) if takes_training else self.call(arg)
            if isinstance(out, dict):
                raise NotInEngineError(f"{type(self).__name__}.call returns a dict: outputs as a dict are not in "
                                       "this engine yet; return a tensor or a list")
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            for t in outs:
                if not isinstance(t, KerasTensor):
                    raise InputError(f"{type(self).__name__}.call returned {type(t).__name__}, not what a layer "
                                     "made: every value in call must come from a layer (cnn.layers.Add, "
                                     "Multiply, Concatenate... for arithmetic)")
            return ins, outs

        def shape_of(ins, outs):
            names = {id(t): f"in{k}" for k, t in enumerate(ins)}
            walk = sort_graph(ins, outs)[0]
            for k, node in enumerate(walk):
                names[id(node.output)] = f"n{k}"
            return [(node.layer.name, id(node.layer), [names[id(t)] for t in node.inputs]) for node in walk], \
                [names[id(t)] for t in outs]

        ins, outs = run(False)
        tracked = self.__dict__.get("_tracked", [])
        stray = [layer.name for layer in sort_graph(ins, outs)[1] if not any(layer is t for t in tracked)]
        if stray:
            raise InputError(f"{type(self).__name__}.call uses layer {stray[0]!r}, which is no attribute of the "
                             "model: make the layers in __init__ (self.name = cnn.layers...), then use them in call")
        first = shape_of(ins, outs)
        again = shape_of(*run(True))
        if again != first:
            raise NotInEngineError(f"{type(self).__name__}.call takes another path with training=True than with "
                                   "training=False (a Python branch on training): not in this engine yet; pass "
                                   "training on to the layers instead (Dropout and BatchNormalization use it)")
        self._subclassed = False  # from here on its graph is a functional model's
        self._set_graph(ins, outs, order=self.__dict__.get("_tracked", []))
        self._subclassed = "built"
        pending = self.__dict__.pop("_pending_losses", None)
        if pending is not None:
            self._set_losses(*pending)

    def _build_subclassed(self, x):
        if isinstance(x, dict):
            raise NotInEngineError(f"{type(self).__name__}: inputs as a dict for a subclassed model are not in "
                                   "this engine yet; give an array or a list")
        arrays = list(x) if isinstance(x, (list, tuple)) else [x]
        for a in arrays:
            if not isinstance(a, np.ndarray) or a.ndim < 2:
                raise InputError(f"{type(self).__name__}: x must be NumPy arrays of shape (n, ...), got "
                                 f"{type(a).__name__}{'' if not isinstance(a, np.ndarray) else f' of shape {a.shape}'}")
        self._trace([a.shape[1:] for a in arrays])

    def _check_x(self, x, what="x"):
        if self.__dict__.get("_subclassed") is True:
            self._build_subclassed(x)
        return self._check_graph_x(x, what)

    @property
    def _input_ids(self):
        return {id(t) for t in self.inputs}  # found anew: a copied model (copy.deepcopy) has other ids

    @property
    def input(self):
        """The input tensor, or the list of them (as Keras's ``model.input``)."""
        if not self.built:
            raise InputError(f"model {self.name!r} is not built yet, so it has no input: call it on data, fit "
                             "it, or call build(input_shape)")
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)

    @property
    def output(self):
        return self._outputs[0] if len(self._outputs) == 1 else list(self._outputs)

    @property
    def outputs(self):
        return list(self._outputs)

    # ------------------------------------------------------------ building
    def add(self, layer):
        raise InputError("Model.add: a functional model's layers come from its graph; call the layer on a "
                         "tensor and make a new cnn.Model")

    def build(self, input_shape):
        """Check the input shape (a sample's, or Keras's with None for the batch); a
        subclassed model is built here, its call traced on inputs of that shape."""
        several = isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple))
        shapes = [tuple(s) for s in input_shape] if several else [tuple(input_shape)]
        shapes = [s[1:] if s and s[0] is None else s for s in shapes]
        if self.__dict__.get("_subclassed") is True:
            self._trace(shapes)
            return
        input_shape = shapes if several else shapes[0]
        wanted = self.input_shape if len(self.inputs) == 1 else [tuple(s) for s in self.input_shape]
        given = tuple(input_shape) if len(self.inputs) == 1 else [tuple(s) for s in input_shape]
        if given != wanted:
            raise InputError(f"model {self.name!r} takes samples of shape {wanted}, not {given}")

    @property
    def output_shape(self):
        shapes = [t.sample_shape for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # ------------------------------------------------------------ compile
    def _set_losses(self, loss, metrics, loss_weights):
        """One loss, weight and metric list per output: Keras's forms (one loss for
        every output, a list in output order, or a dict keyed by output names)."""
        from . import losses as losses_module
        from . import metrics as metrics_module

        if not self.built:  # a subclassed model compiled before its first call: its outputs are not known yet
            self._pending_losses = (loss, metrics, loss_weights)
            first = loss[0] if isinstance(loss, (list, tuple)) and loss else loss
            self.loss = losses_module.get(next(iter(first.values())) if isinstance(first, dict) and first
                                          and "class_name" not in first else first)
            self.metrics = metrics if metrics is not None else []
            return
        names = self.output_names
        if len(set(names)) != len(names) and isinstance(loss, dict):
            raise InputError(f"compile: two outputs come from the same layer {names}: give the losses as a list")
        given = _by_output(loss, names, "loss", single_ok=True)
        missing = [name for name, one in zip(names, given) if one is None]
        if missing:  # Keras 3 refuses an output without a loss too
            raise InputError(f"compile: output {missing[0]!r} has no loss; give one for every output {names}")
        self._losses = [losses_module.get(one) for one in given]
        weights = [1.0] * len(names) if loss_weights is None else _by_output(loss_weights, names, "loss_weights",
                                                                            single_ok=len(names) == 1)
        self._loss_weights = []
        for name, w in zip(names, weights):
            w = 1.0 if w is None else w
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not np.isfinite(w):
                raise InputError(f"compile: loss_weights for output {name!r} must be a finite number, got {w!r}")
            self._loss_weights.append(float(w))
        if isinstance(metrics, str):
            raise InputError(f"metrics must be a list, e.g. metrics=[{metrics!r}]")
        if metrics is None:
            per_output = [[] for _ in names]
        elif len(names) == 1 and not isinstance(metrics, dict):
            per_output = [list(metrics)]
        else:
            if isinstance(metrics, (list, tuple)) and not all(m is None or isinstance(m, (list, tuple))
                                                              for m in metrics):
                raise InputError(f"compile: metrics={list(metrics)!r} for a model with {len(names)} outputs "
                                 f"{names}: give a list of lists (one per output) or a dict keyed by output names")
            per_output = [[] if m is None else [m] if isinstance(m, str) else list(m)
                          for m in _by_output(metrics, names, "metrics", single_ok=False)]
        specs = []
        for i, (name, ms) in enumerate(zip(names, per_output)):
            for m in ms:
                log = m if len(names) == 1 else f"{name}_{m}"
                specs.append((log, i, metrics_module.get(m, self._losses[i])))
        logs = [log for log, _, _ in specs]
        if len(set(logs)) != len(logs):
            raise InputError(f"compile: a metric is given twice for one output: {logs}")
        # evaluate's order, as Keras's: each output's loss, then the metrics (in order for one
        # output; sorted by name for several, as Keras's flattening of its logs gives them)
        self._metric_specs = specs if len(names) == 1 else sorted(specs, key=lambda spec: spec[0])
        self.loss = self._losses[0]
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else (dict(metrics) if metrics else [])
        self._metric_fns = [fn for _, _, fn in self._metric_specs]
        self._fused_outputs = {i for i, one in enumerate(self._losses) if self._fuses(i, one)}

    def _fuses(self, i, loss):
        """Whether output ``i``'s loss is computed from its layer's logits (softmax
        or sigmoid into the cross-entropy that takes them): only where that
        output is read by nothing else and its layer is not shared."""
        tensor = self._outputs[i]
        layer = tensor._node.layer
        fuses_with = getattr(loss, "fuses_with", None)
        return (fuses_with is not None and not loss.from_logits and getattr(layer, "activation", None) == fuses_with
                and hasattr(layer, "backward_from_logits") and layer.name not in self._shared
                and self._readers[id(tensor)] == 0)

    @property
    def _fused(self):
        return bool(self._fused_outputs)

    @property
    def _log_names(self):
        losses = [f"{name}_loss" for name in self.output_names]
        return (losses if len(self._outputs) > 1 else []) + [log for log, _, _ in self._metric_specs]

    # ------------------------------------------------------------ data
    def _arranged(self, data, names, what):
        """``data`` (an array, a list in order, or a dict keyed by ``names``) as a list, one per name."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(names))
            if unknown:
                raise InputError(f"{what} names {unknown[0]!r}, which is not one of {names}")
            missing = [n for n in names if n not in data]
            if missing:
                raise InputError(f"{what} has no entry for {missing[0]!r} (the model's are {names})")
            return [data[n] for n in names]
        if isinstance(data, (list, tuple)):
            if len(data) != len(names):
                raise InputError(f"{what} is a list of {len(data)} arrays; the model takes {len(names)} ({names})")
            return list(data)
        if len(names) != 1:
            raise InputError(f"{what} must be a list of {len(names)} arrays or a dict keyed by {names}, "
                             f"got {type(data).__name__}")
        return [data]

    def _check_graph_x(self, x, what="x"):
        arrays = self._arranged(x, self.input_names, what)
        checked = [_checked_samples(a, t.sample_shape, self.dtype,
                                    what if len(arrays) == 1 else f"{what} {t.name!r}")
                   for a, t in zip(arrays, self.inputs)]
        counts = {a.shape[0] for a in checked}
        if len(counts) != 1:
            raise InputError(f"{what}: the inputs hold different numbers of samples "
                             f"{[a.shape[0] for a in checked]}")
        return checked[0] if len(checked) == 1 else checked

    def _check_y(self, y, n, what="y"):
        arrays = self._arranged(y, self.output_names, what)
        checked = []
        for i, (a, t) in enumerate(zip(arrays, self._outputs)):
            label = what if len(arrays) == 1 else f"{what} {self.output_names[i]!r}"
            checked.append(_checked_targets(self._losses[i], a, n, t.sample_shape, self.dtype, label))
        return checked[0] if len(checked) == 1 else checked

    # ------------------------------------------------------------ passes
    def _calls(self, x, training):
        """Run the nodes in order on ``x``: yields each node, the arrays it read and the one it made."""
        from .layers.merging import _Merge

        values = dict(zip((id(t) for t in self.inputs), x if isinstance(x, list) else [x]))
        for node in self._nodes:
            layer = node.layer
            ins = [values[id(t)] for t in node.inputs]
            out = layer.forward(ins if isinstance(layer, _Merge) else ins[0], training=training)
            if layer.name in self._shared:  # what this call's backward pass needs, kept apart from the other calls'
                self._states[node.index] = {k: v for k, v in layer.__dict__.items() if k not in _SNAPSHOT_SKIPS}
            values[id(node.output)] = out
            yield node, ins, out

    def _forward(self, x, training):
        values = {}
        for node, _, out in self._calls(x, training):
            values[id(node.output)] = out
        outs = [values[id(t)] for t in self._outputs]
        return outs[0] if len(outs) == 1 else outs

    def _restore(self, node):
        layer = node.layer
        for key, value in self._states[node.index].items():
            if layer.__dict__.get(key) is not value:
                layer.__dict__[key] = value
        layer.needs_input_gradient = self._needs_dx[node.index]

    def _loss(self, probs, y):
        """The weighted sum of the outputs' losses; each output's loss and its
        gradient (the seed of the backward pass) are kept for the step."""
        probs = probs if len(self._outputs) > 1 else [probs]
        y = y if len(self._outputs) > 1 else [y]
        total, self._output_losses, self._seeds = 0.0, [], {}
        for i, (loss, weight) in enumerate(zip(self._losses, self._loss_weights)):
            if i in self._fused_outputs:
                value = loss.forward_from_logits(self._outputs[i]._node.layer.logits, y[i])
                seed = loss.backward_from_logits()
            else:
                value = loss.forward(probs[i], y[i])
                seed = loss.backward()
            if weight != 1.0:
                seed = seed * np.asarray(weight, dtype=seed.dtype)
                total += weight * value
            else:
                total += value
            self._seeds[i] = seed
            self._output_losses.append(value)
        return total

    def _metric_sums(self, probs, y):
        probs = probs if len(self._outputs) > 1 else [probs]
        y = y if len(self._outputs) > 1 else [y]
        n = probs[0].shape[0]
        sums = [value * n for value in self._output_losses] if len(self._outputs) > 1 else []
        return sums + [fn(probs[i], y[i]) for _, i, fn in self._metric_specs]

    def _backward(self):
        pending, fused, summed = {}, {}, {}
        for node in self._nodes:  # this model's flags: a layer may also serve a model it came from
            if node.layer.name not in self._shared:
                node.layer.needs_input_gradient = self._needs_dx[node.index]
        for i, seed in self._seeds.items():
            if i in self._fused_outputs:  # the output layer's softmax meets the cross-entropy: (p - y) / n
                fused[self._outputs[i]._node.index] = seed
            else:
                self._add(pending, self._outputs[i], seed)
        folded = set()
        for node in reversed(self._nodes):
            if node.index in folded:
                continue
            layer = node.layer
            shared = layer.name in self._shared
            if shared:
                self._restore(node)
            if node.index in fused:
                grads = layer.backward_from_logits(fused[node.index])
            else:
                grad = pending.pop(id(node.output), None)
                if grad is None:  # nothing below a loss reads this tensor: its gradient is zero
                    batch = next(iter(self._seeds.values())).shape[0]
                    grad = np.zeros((batch, *node.output.sample_shape), dtype=self.dtype)
                conv = self._pool_over_conv.get(node.index)
                if conv is not None:  # the pool and the convolution under it in one step
                    self._send(conv, conv.layer.backward_through_maxpool(grad, layer), pending)
                    folded.add(conv.index)
                    continue
                grads = layer.backward(grad)
            self._send(node, grads, pending)
            if shared:  # the weight gradients of every call of a shared layer are summed
                total = summed.setdefault(layer.name, (layer, {}))[1]
                for name, g in layer.grads.items():
                    total[name] = total[name] + g if name in total else g.copy()
        for layer, total in summed.values():
            layer.grads.update(total)

    @staticmethod
    def _add(pending, tensor, grad):
        key = id(tensor)
        pending[key] = pending[key] + grad if key in pending else grad  # a tensor read twice: the sum

    def _send(self, node, grads, pending):
        from .layers.merging import _Merge

        grads = grads if isinstance(node.layer, _Merge) else [grads]
        for tensor, grad in zip(node.inputs, grads):
            if id(tensor) in self._input_ids:  # a model input (the data, or a tensor a sub-graph starts from)
                continue
            self._add(pending, tensor, grad)

    # ------------------------------------------------------------ walking the graph
    def _one_node_per_layer(self, what):
        if self._shared or len(self.inputs) > 1 or len(self._outputs) > 1:
            raise NotInEngineError(f"{what} of a model with several inputs or outputs or a shared layer is not in "
                                   "this engine yet (it needs one node per layer, one input, one output)")

    def _connections(self):
        """Keras's "Connected to": each call's inputs as ``layer[call][0]``, over every call of the layer."""
        connected = collections.defaultdict(list)
        for node in sorted(self._nodes, key=lambda n: n.index):
            connected[id(node.layer)] += [f"{t.name}[0][0]" if id(t) in self._input_ids else
                                          f"{t._node.layer.name}[{t._node.layer._nodes.index(t._node)}][0]"
                                          for t in node.inputs]
        return [", ".join(connected[id(layer)]) for layer in self.layers]

    @blas_held
    def trace(self, x, training=False):
        """Every node's call on one batch, in the order they run: ``(layer, inputs, output)``
        (for a model without shared layers, ``layers`` order)."""
        return [(node.layer, ins, out) for node, ins, out in self._calls(self._check_x(_as_input(x)), training)]

    def producers(self):
        """For each layer, the indices in ``layers`` of the layers it reads (-1: the input)."""
        self._one_node_per_layer("a layer-by-layer walk (files, pictures, the explorer)")
        index = {id(node.output): i for i, node in enumerate(self._nodes)}
        return [[index.get(id(t), -1) for t in node.inputs] for node in self._nodes]

    @blas_held
    def __call__(self, x, training=False):
        if is_symbolic(x):
            from .nested import as_layer

            as_layer(self)  # refused by name: a functional model used as a layer (a Sequential can be)
        return self._forward(self._check_x(_as_input(x)), training=training)

    def get_config(self):
        if self.__dict__.get("_subclassed"):
            raise NotInEngineError(f"{type(self).__name__}: a subclassed model's config (its own get_config and "
                                   "from_config) is not in this engine yet; save its weights with save_weights")
        from .saving import config_of

        return config_of(self)

    def save(self, path):
        """Save as a Keras 3 ``.keras`` file (a functional model Keras loads) or the
        engine's ``.npz`` (format version 3: the inputs, each layer's calls and the
        outputs, the weights, the whole training state)."""
        if self.__dict__.get("_subclassed"):
            raise NotInEngineError(f"{path}: saving a subclassed model whole is not in this engine yet (loading "
                                   f"would need {type(self).__name__} itself); save its weights with "
                                   "model.save_weights('name.weights.h5') and load them into a new one")
        Sequential.save(self, path)



# ---------------------------------------------------------------- the graph as data
# Keras's way of writing a graph down, used by both of the engine's file formats
# (the .npz and Keras's .keras): each layer's calls, each call as the tensors it
# read, each tensor as [layer name, call index, 0] (the layer that made it, which
# of that layer's calls, its only output); an input tensor as [input name, 0, 0].

def graph_spec(model):
    """A functional model's graph as data: its inputs (names and sample shapes),
    each layer's calls in ``model.layers`` order, and its outputs."""
    calls = {}
    per_layer = collections.defaultdict(list)
    for node in sorted(model._nodes, key=lambda n: n.index):
        calls[node.index] = (node.layer.name, len(per_layer[node.layer.name]))
        per_layer[node.layer.name].append(node)

    inputs = {id(t) for t in model.inputs}

    def ref(tensor):
        return [tensor.name, 0, 0] if id(tensor) in inputs else [*calls[tensor._node.index], 0]

    return {"inputs": [{"name": t.name, "shape": list(t.sample_shape)} for t in model.inputs],
            "calls": [[[ref(t) for t in node.inputs] for node in per_layer[layer.name]] for layer in model.layers],
            "outputs": [ref(t) for t in model._outputs]}


def _walk_spec(layers, spec, call, start):
    """Run the calls ``spec`` describes in an order where each reads only what
    is made: ``start(input)`` makes an input's value, ``call(layer, values)``
    a call's. Returns {(name, call index): value} and the outputs' values.
    Every reference is checked first; a call that can never run (a cycle, or a
    tensor no call makes) and a call whose output nothing reads are refused."""
    from .layers.merging import _Merge

    if not isinstance(spec, dict):
        raise InputError("the graph description is not a dict")
    inputs, calls, outputs = spec.get("inputs"), spec.get("calls"), spec.get("outputs")
    if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_NODES:
        raise InputError("the graph's inputs are not a non-empty list")
    if not isinstance(calls, list) or len(calls) != len(layers):
        raise InputError(f"the graph lists the calls of {len(calls) if isinstance(calls, list) else 'no'} layers "
                         f"for {len(layers)} layers")
    if not isinstance(outputs, list) or not outputs or len(outputs) > MAX_NODES:
        raise InputError("the graph's outputs are not a non-empty list")
    counts = {}
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError("an input of the graph has no name")
        counts[item["name"]] = 1
    for layer, layer_calls in zip(layers, calls):
        if layer.name in counts:
            raise InputError(f"two layers or inputs of the graph are named {layer.name!r}")
        if not isinstance(layer_calls, list) or not layer_calls:
            raise InputError(f"layer {layer.name!r} has no calls in the graph (a layer the graph never uses)")
        counts[layer.name] = len(layer_calls)
    if sum(counts.values()) > MAX_NODES:
        raise InputError(f"the graph has {sum(counts.values())} calls; at most {MAX_NODES} are read")

    def checked(ref, where):
        if (not isinstance(ref, list) or len(ref) != 3 or not isinstance(ref[0], str)
                or any(isinstance(v, bool) or not isinstance(v, int) for v in ref[1:])):
            raise InputError(f"{where}: a tensor reference must be [layer name, call index, 0], got {ref!r}")
        name, index, tensor = ref
        if name not in counts:
            raise InputError(f"{where} reads {name!r}, which is no layer or input of the graph")
        if not 0 <= index < counts[name] or tensor != 0:
            raise InputError(f"{where} reads call {index} (output {tensor}) of {name!r}, which has "
                             f"{counts[name]} call(s) and one output")
        return name, index

    wanted = []
    for layer, layer_calls in zip(layers, calls):
        merging = isinstance(layer, _Merge)
        for k, refs in enumerate(layer_calls):
            where = f"call {k} of layer {layer.name!r}"
            if not isinstance(refs, list) or not refs or (not merging and len(refs) != 1):
                raise InputError(f"{where} must read {'a list of tensors' if merging else 'one tensor'}")
            wanted.append([checked(ref, where) for ref in refs])
    targets = [checked(ref, "an output of the graph") for ref in outputs]
    read = {key for refs in wanted for key in refs} | set(targets)
    values = {(item["name"], 0): start(item) for item in inputs}
    unread = [name for name, _ in values if (name, 0) not in read]
    if unread:
        raise InputError(f"input {unread[0]!r} of the graph is read by no layer (a dangling input)")
    done = {layer.name: 0 for layer in layers}
    progress = True
    while progress:  # at most one pass per call: each pass runs at least one
        progress = False
        position = 0
        for layer, layer_calls in zip(layers, calls):
            for k in range(len(layer_calls)):
                refs = wanted[position + k]
                if k == done[layer.name] and all(key in values for key in refs):
                    if (layer.name, k) not in read:
                        raise InputError(f"call {k} of layer {layer.name!r} is read by nothing (a dangling branch)")
                    values[(layer.name, k)] = call(layer, [values[key] for key in refs])
                    done[layer.name] += 1
                    progress = True
            position += len(layer_calls)
    stuck = [name for name, count in done.items() if count < counts[name]]
    if stuck:
        raise InputError(f"layer {stuck[0]!r} reads a tensor no call makes before it (a cycle in the graph)")
    return values, [values[key] for key in targets]


def graph_weight_bytes(layers, spec):
    """Bytes of weights (in floatx) the graph needs, from shapes alone: nothing is built."""
    from .backend import float_dtype
    from .layers.merging import _Merge

    itemsize, total, counted = float_dtype().itemsize, [0], set()

    def start(item):
        shape = item.get("shape")
        if (not isinstance(shape, list) or not shape or len(shape) > 8
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
            raise InputError(f"input {item['name']!r}: shape must be positive sizes, got {shape!r}")
        return tuple(shape)

    def call(layer, shapes):
        if isinstance(layer, _Merge):
            return tuple(layer.compute_output_shape(shapes))
        if layer.name not in counted:  # a shared layer's weights once
            counted.add(layer.name)
            total[0] += sum(itemsize * int(np.prod(s, dtype=object)) for s in layer.param_shapes(shapes[0]).values())
        return tuple(layer.compute_output_shape(shapes[0]))

    _walk_spec(layers, spec, call, start)
    return total[0]


def graph_from_spec(layers, spec, name):
    """The functional model ``spec`` describes over ``layers`` (unbuilt, in the
    saved ``model.layers`` order), each layer called as it was."""
    from .layers import Input
    from .layers.merging import _Merge

    made = []

    def start(item):
        tensor = Input(tuple(item["shape"]), name=item["name"])
        made.append(tensor)
        return tensor

    def call(layer, tensors):
        return layer(tensors if isinstance(layer, _Merge) else tensors[0])

    _, outputs = _walk_spec(layers, spec, call, start)
    one_in, one_out = len(made) == 1, len(outputs) == 1
    model = Model(made[0] if one_in else made, outputs[0] if one_out else outputs, name=name)
    if [l.name for l in model.layers] != [l.name for l in layers]:
        raise InputError("the graph's layers are not in the order it was saved in")
    return model
