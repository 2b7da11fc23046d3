"""The Sequential model: a stack of layers with Keras's training API.

Two models may train, predict or evaluate in two threads at once and give
what each gives alone, bit for bit: each model's layers, generators and
optimizer state are its own, the kernels' thread pool and BLAS's thread count
are shared safely (:mod:`kernels.parallel`), a loss object keeps what its
backward pass needs per thread. What cannot be shared is refused: a layer
already in another model, an optimizer that holds another model's state.
"""
import functools
import re
import sys
import weakref

import numpy as np

from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .backend import float_dtype
from .callbacks import History, ProgressBar
from .errors import InputError, TrainingDivergedError
from .layers import Conv2D, InputLayer, Layer, MaxPooling2D
from .layers.base import check_name
from .random import new_generator
from .tensors import KerasTensor
from kernels.parallel import one_blas_thread


def _snake(name):
    """Keras's default layer names: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{what} must be an int >= 1, got {value!r}")
    return int(value)


def blas_held(method):
    """Run a model's method with BLAS held to one thread throughout (see
    :func:`kernels.parallel.one_blas_thread`): the kernels inside then only
    count themselves in. A user's callback inside ``fit`` sees BLAS on one thread."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with one_blas_thread():
            return method(self, *args, **kwargs)

    return wrapper


def _as_input(x):
    """What a model call takes, as arrays: an array, or a list or dict of them."""
    if isinstance(x, dict):
        return {k: np.asarray(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [np.asarray(v) for v in x]
    return np.asarray(x)


def _count(data):
    """The number of samples in an array, or in a list of arrays (one per input or output)."""
    return (data[0] if isinstance(data, list) else data).shape[0]


def _take(data, index):
    """The samples at ``index`` (a slice or indices) of an array or of each array of a list."""
    return [d[index] for d in data] if isinstance(data, list) else data[index]


def _logs(loss, names, values):
    """A log dict as Keras 3 on TensorFlow hands it to callbacks and History: keys sorted."""
    return dict(sorted({"loss": loss, **dict(zip(names, values))}.items()))


def _check_float_array(x, what):
    if not isinstance(x, np.ndarray):
        raise InputError(f"{what} must be a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        hint = " (scale raw pixels first: x.astype('float32') / 255)" if x.dtype == np.uint8 else ""
        raise InputError(f"{what} must be {float_dtype()}, got dtype {x.dtype}{hint}")
    if x.ndim == 0 or x.size == 0:
        raise InputError(f"{what} is empty (shape {x.shape})")


def _checked_samples(x, shape, dtype, what):
    """``x`` as a batch of samples of ``shape`` in ``dtype``, or an InputError naming the problem."""
    _check_float_array(x, what)
    if x.shape[1:] != tuple(shape):
        raise InputError(f"{what} must have shape (n, {', '.join(map(str, shape))}) (rank {len(shape) + 1}), "
                         f"got {x.shape}")
    x = x.astype(dtype, copy=False)
    if not np.isfinite(x).all():
        raise InputError(f"{what} contains NaN or Inf")
    return x


def _checked_targets(loss, y, n, output_shape, dtype, what):
    """``y`` as ``loss`` reads it for ``n`` outputs of ``output_shape``."""
    if not isinstance(y, np.ndarray):
        raise InputError(f"{what} must be a NumPy array, got {type(y).__name__}")
    y = loss.check_targets(y, n, output_shape, what) if hasattr(loss, "check_targets") else y
    return y if y.dtype.kind in "iu" else y.astype(dtype, copy=False)


def _pool_over_conv(layer, below):
    """Whether ``layer`` is a max-pool straight over ``below``, a Conv2D that
    can take the pool's gradient itself (layers of exactly these classes: a
    user's subclass may have changed either backward pass)."""
    return type(layer) is MaxPooling2D and type(below) is Conv2D


def _backward_steps(layers):
    """(label, step) for each backward step over ``layers`` (top layer first),
    ``step(grad) -> grad``: one a layer, but a max-pool over a Conv2D and that
    Conv2D in one step (:meth:`Conv2D.backward_through_maxpool`).
    ``benchmarks/profile_step.py`` times these same steps."""
    steps, index = [], 0
    while index < len(layers):
        layer = layers[index]
        below = layers[index + 1] if index + 1 < len(layers) else None
        if _pool_over_conv(layer, below):
            steps.append((f"{layer.name} + {below.name}",
                          lambda grad, pool=layer, conv=below: conv.backward_through_maxpool(grad, pool)))
            index += 2
        else:
            steps.append((layer.name, layer.backward))
            index += 1
    return steps


class Sequential:
    """A linear stack of layers.

    >>> model = Sequential([Conv2D(8, 3, activation='relu', input_shape=(28, 28, 1)),
    ...                     Flatten(), Dense(10, activation='softmax')])
    >>> model.compile(loss='categorical_crossentropy', optimizer='adadelta', metrics=['acc'])
    >>> history = model.fit(x, y, batch_size=128, epochs=5)

    x is float32 NHWC (n, h, w, c); y one-hot (n, classes).
    """

    def __init__(self, layers=None, name="sequential"):
        self.name = check_name(name, "model")
        self.layers = []
        self.built = False
        self.input_shape = None
        self.loss = None
        self.optimizer = None
        self.metrics = []
        self.stop_training = False
        self.completed_epochs = 0  # how many epochs fit has finished; resume from here
        self.rng = new_generator()  # shuffles the batches of each epoch
        self._name_counts, self._names = {}, set()  # linear-time default names
        self._input_from_input_layer = None
        self.inputs = []  # the symbolic input, once built
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------ building
    def add(self, layer):
        """Append a layer (or, first, ``cnn.Input(shape=...)``, which only sets the input shape)."""
        if isinstance(layer, InputLayer):
            if self.layers:
                raise InputError("Input(...) can only come first in a Sequential")
            self._input_from_input_layer = layer.sample_shape
            return
        if not isinstance(layer, Layer):
            raise InputError(f"Sequential.add takes a layer, got {type(layer).__name__}")
        if any(not node.chain for node in getattr(layer, "_nodes", ())):
            raise InputError(f"layer {layer.name!r} was called on a symbolic tensor (it is part of a graph): "
                             "a Sequential takes layers of its own")
        owner = layer._owning_model()
        if owner is not None and owner is not self:
            raise InputError(
                f"layer {layer.name!r} is already in model {owner.name!r}: a layer keeps the values of its last "
                "call for its backward pass, so it cannot serve two models here; make a new one with the same "
                "settings: type(layer).from_config(layer.get_config())")
        if owner is self:
            raise InputError(f"layer {layer.name!r} is already in this model")
        if not layer._named_by_user:  # Keras's default names: conv2d, conv2d_1, ...
            base = _snake(type(layer).__name__)
            count = self._name_counts.get(base, 0)
            layer.name = base if count == 0 else f"{base}_{count}"
            self._name_counts[base] = count + 1
        if layer.name in self._names:
            raise InputError(f"a layer named {layer.name!r} is already in the model")
        self._names.add(layer.name)
        self.layers.append(layer)
        layer._owner = weakref.ref(self)
        first_shape = layer.input_shape if len(self.layers) == 1 else None
        if len(self.layers) == 1 and self._input_from_input_layer is not None:
            first_shape = self._input_from_input_layer
        if first_shape is not None:
            self.build(first_shape)
        elif self.built:
            layer.build(self.layers[-2].output_shape)
            self._link(layer, self.layers[-2].output)
        if len(self.layers) == 1:
            layer.needs_input_gradient = False

    def build(self, input_shape):
        """Create every layer's weights for samples of ``input_shape`` (no batch axis)."""
        shape = tuple(int(d) for d in input_shape)
        self.input_shape = shape
        for layer in self.layers:
            shape = layer.build(shape)
        self.layers[0].needs_input_gradient = False  # its input is the data
        self.built = True
        # the symbolic tensors Keras gives a built Sequential: model.input, model.output and each
        # layer's .input / .output, so that cnn.Model(model.input, model.get_layer(name).output)
        # makes a feature extractor over the same layers
        tensor = KerasTensor(self.input_shape, name="input_layer")
        self.inputs = [tensor]
        for layer in self.layers:
            layer.__dict__.pop("_nodes", None)
            tensor = self._link(layer, tensor)

    def _link(self, layer, tensor):
        """Record ``layer`` as called on ``tensor`` in the model's chain; its output tensor."""
        from .functional import Node

        output = KerasTensor(layer.output_shape)
        output._node = Node(layer, [tensor], output, chain=True)
        layer._nodes = [output._node]
        layer.input, layer.output = tensor, output
        return output

    @property
    def input(self):
        """The symbolic tensor the model starts from (a built model's), as Keras's ``model.input``."""
        if not self.built:
            raise InputError(f"model {self.name!r} is not built yet, so it has no input: give the first layer "
                             "an input shape, start with cnn.Input(shape), or call build()")
        return self.inputs[0]

    @property
    def output(self):
        if not self.built:
            raise InputError(f"model {self.name!r} is not built yet, so it has no output")
        return self.layers[-1].output

    @property
    def outputs(self):
        return [self.output]

    def weight_bytes(self, input_shape):
        """Bytes of weights (in floatx) the layers need for ``input_shape``, computed
        without building anything (loaders check it against the file first)."""
        shape, total = tuple(int(d) for d in input_shape), 0
        if not shape or min(shape) < 1:
            raise InputError(f"input shape must be positive sizes, got {tuple(input_shape)}")
        itemsize = float_dtype().itemsize
        for layer in self.layers:
            total += sum(itemsize * int(np.prod(s, dtype=object)) for s in layer.param_shapes(shape).values())
            shape = layer.compute_output_shape(shape)
        return total

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.built else None

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Choose the optimizer, the loss and the metrics (Keras's names:
        'accuracy' / 'acc' pick the accuracy that fits the loss, or
        'categorical_accuracy', 'sparse_categorical_accuracy', 'binary_accuracy').

        Keras's other arguments are accepted at their defaults only, as the
        engine does nothing they could change: ``run_eagerly`` (every step runs
        as Python calls the kernels; there is no graph to compile),
        ``jit_compile`` (no XLA), ``auto_scale_loss`` (no float16, so no loss
        scaling), ``steps_per_execution``, ``loss_weights`` and
        ``weighted_metrics``. Another value is refused by name.
        """
        for arg, value, default, why in (
                ("weighted_metrics", weighted_metrics, None, "no sample weights"),
                ("steps_per_execution", steps_per_execution, 1, "each batch is one Python step"),
                ("run_eagerly", run_eagerly, False, "every step already runs as Python calls the kernels"),
                ("jit_compile", jit_compile, "auto", "the engine has no XLA; its kernels are compiled by numba"),
                ("auto_scale_loss", auto_scale_loss, True, "no float16 here, so no loss to scale")):
            if (type(value), value) != (type(default), default):
                raise InputError(f"compile: {arg}={value!r} is not supported by this engine ({why}); "
                                 f"leave it at {default!r}")
        if loss is None:
            raise InputError("compile needs a loss, e.g. loss='categorical_crossentropy'")
        self._set_losses(loss, metrics, loss_weights)
        self.optimizer = optimizers_module.get(optimizer)
        self.optimizer._bind(self)

    def _set_losses(self, loss, metrics, loss_weights):
        """The loss, its weight and the metrics of the one output (a graph with
        several outputs sets one of each per output)."""
        if loss_weights is not None and not (isinstance(loss_weights, (int, float)) and loss_weights == 1
                                             and not isinstance(loss_weights, bool)):
            raise InputError(f"compile: loss_weights={loss_weights!r} is not supported for a model with one "
                             "output (it only scales the loss); leave it at None")
        self.loss = losses_module.get(loss)
        if isinstance(metrics, str):
            raise InputError(f"metrics must be a list, e.g. metrics=[{metrics!r}]")
        if isinstance(metrics, dict):
            raise InputError("compile: metrics as a dict is for a model with several outputs; give a list")
        self.metrics = list(metrics or [])
        self._metric_fns = [metrics_module.get(m, self.loss) for m in self.metrics]

    @property
    def _log_names(self):
        """The names of what fit logs besides the loss, in the order evaluate
        returns them (Keras's: the compiled metrics in order)."""
        return list(self.metrics)

    @property
    def _fused(self):
        """True when the output activation meets the cross-entropy that takes
        its logits (softmax with the categorical ones, sigmoid with the
        binary one): then the loss is computed from the logits and the
        gradient is (p - y) / n, as Keras's TensorFlow backend does."""
        last = self.layers[-1]
        fuses_with = getattr(self.loss, "fuses_with", None)
        return (fuses_with is not None and not self.loss.from_logits
                and getattr(last, "activation", None) == fuses_with and hasattr(last, "backward_from_logits"))

    _fused_softmax = _fused  # the first name of the property

    # ------------------------------------------------------------ checks
    def _check_x(self, x, what="x"):
        _check_float_array(x, what)
        if not self.built:
            if not self.layers:
                raise InputError("the model has no layers")
            self.build(x.shape[1:])
        return _checked_samples(x, self.input_shape, self.dtype, what)

    @property
    def dtype(self):
        """The float type the model computes in: its first weight's (floatx when built)."""
        for layer in self.layers:
            for value in layer.params.values():
                return value.dtype
        return float_dtype()

    def _check_y(self, y, n, what="y"):
        return _checked_targets(self.loss, y, n, self.output_shape, self.dtype, what)

    def _check_ready(self):
        if self.loss is None:
            raise InputError("compile the model first: model.compile(loss=..., optimizer=...)")

    # ------------------------------------------------------------ passes
    def _forward(self, x, training):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _loss(self, probs, y):
        if self._fused:
            return self.loss.forward_from_logits(self.layers[-1].logits, y)
        return self.loss.forward(probs, y)

    def _regularization(self, with_gradients):
        """The weight penalties' total, added to the loss (and their gradients to ``grads``)."""
        total = 0.0
        for layer in self.layers:
            if layer._regularizers:
                loss, grads = layer.regularization()
                total += loss
                if with_gradients:
                    for name, g in grads.items():
                        if name in layer.grads:
                            layer.grads[name] = layer.grads[name] + g
        return total

    def _backward(self):
        for i, layer in enumerate(self.layers):  # the first layer's input is the data; a graph made from this
            layer.needs_input_gradient = i > 0   # model's layers may have set other flags for its own pass
        if self._fused:
            grad = self.layers[-1].backward_from_logits(self.loss.backward_from_logits())
            layers = self.layers[-2::-1]
        else:
            grad = self.loss.backward()
            layers = self.layers[::-1]
        for _, step in _backward_steps(layers):
            grad = step(grad)
        return grad

    def _metric_sums(self, probs, y):
        """Each metric summed over the batch's samples (averaged over the epoch later)."""
        return [fn(probs, y) for fn in self._metric_fns]

    def _train_step(self, x, y):
        """One optimizer step on one checked batch: (loss, [metric sums over the batch])."""
        probs = self._forward(x, training=True)
        loss = self._loss(probs, y)
        self._backward()
        loss += self._regularization(with_gradients=True)
        self.optimizer.step(self.layers)
        return loss, self._metric_sums(probs, y)

    def _batch_result(self, loss, sums, n, return_dict):
        """What Keras 3's train_on_batch / test_on_batch return: the loss alone when
        there are no metrics, else [loss, each metric], or a dict with return_dict."""
        names = self._log_names
        means = [float(v) / n for v in sums]
        if return_dict:
            return _logs(float(loss), names, means)
        return float(loss) if not names else [float(loss), *means]

    @blas_held
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch, as Keras 3's: the batch's loss (a float)
        when the model has no metrics, else ``[loss, metric, ...]`` (the metrics of
        this batch alone), or a dict of them with ``return_dict``."""
        for arg, value in (("sample_weight", sample_weight), ("class_weight", class_weight)):
            if value is not None:
                raise InputError(f"train_on_batch: {arg}= is not supported by this engine")
        self._check_ready()
        x = self._check_x(x)
        y = self._check_y(y, _count(x))
        loss, sums = self._train_step(x, y)
        return self._batch_result(loss, sums, _count(x), return_dict)

    @blas_held
    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss and metrics of one batch at inference (weights unchanged), as
        Keras 3's ``test_on_batch`` returns them."""
        if sample_weight is not None:
            raise InputError("test_on_batch: sample_weight= is not supported by this engine")
        self._check_ready()
        x = self._check_x(x)
        y = self._check_y(y, _count(x))
        probs = self._forward(x, training=False)
        loss = self._loss(probs, y) + self._regularization(with_gradients=False)
        return self._batch_result(loss, self._metric_sums(probs, y), _count(x), return_dict)

    @blas_held
    def compute_gradients(self, x, y, training=True):
        """The loss of one batch and its gradient with respect to every
        trainable weight, without changing the weights (for learners and for
        gradient tests).

        Returns
        -------
        loss : float
        grads : dict ``(layer name, weight name) -> ndarray``, in the order of
            :attr:`trainable_weights`
        """
        self._check_ready()
        x = self._check_x(x)
        y = self._check_y(y, _count(x))
        saved = [layer.needs_input_gradient for layer in self.layers]
        probs = self._forward(x, training=training)
        loss = self._loss(probs, y)
        self._backward()
        loss += self._regularization(with_gradients=True)
        for layer, need in zip(self.layers, saved):
            layer.needs_input_gradient = need
        grads = {(layer.name, name): layer.grads[name].copy() for layer in self.layers for name in layer.trainable_names}
        return loss, grads

    @blas_held
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss (the compiled losses, weighted, plus the weight penalties) of
        ``y_pred`` against ``y``, as Keras 3's ``compute_loss``. ``y_pred`` must be
        what the model's last call gave (a softmax output's cross-entropy is taken from
        that call's logits); without it the model is called on ``x`` here."""
        if sample_weight is not None:
            raise InputError("compute_loss: sample_weight= is not supported by this engine")
        self._check_ready()
        if y_pred is None:
            if x is None:
                raise InputError("compute_loss needs x (to call the model on) or y_pred")
            y_pred = self._forward(self._check_x(_as_input(x)), training=training)
        y = self._check_y(y, _count(y_pred))
        return float(self._loss(y_pred, y) + self._regularization(with_gradients=False))

    def __call__(self, x, training=None):
        """``model(x)``: the outputs for one batch, as Keras's ``model(x)``; on a symbolic tensor, the
        model used as a layer of a functional model (:mod:`cnn.nested`)."""
        from .functional import call_layer, is_symbolic

        if is_symbolic(x):
            from .nested import as_layer

            return call_layer(as_layer(self, training), x)
        return self._call_on_data(x, bool(training))

    @blas_held
    def _call_on_data(self, x, training):
        x = self._check_x(np.asarray(x))
        return self._forward(x, training=training)

    @property
    def trainable(self):
        """False freezes every layer (and runs BatchNormalization in inference mode), as Keras's model.trainable."""
        return self.__dict__.get("_trainable", True)

    @trainable.setter
    def trainable(self, value):
        self.__dict__["_trainable"] = bool(value)
        for layer in self.layers:
            layer.trainable = bool(value)

    def _backward_from(self, grad, need_dx):
        """The backward pass from the gradient of the model's output (the model used as a layer):
        every layer's weight gradients, and the input's gradient when ``need_dx``."""
        for i, layer in enumerate(self.layers):
            layer.needs_input_gradient = i > 0 or need_dx
        for _, step in _backward_steps(self.layers[::-1]):
            grad = step(grad)
        return grad if need_dx else None

    # ------------------------------------------------------------ Keras API
    @blas_held
    def fit(self, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs.

        Parameters
        ----------
        x : float (n, *input_shape)
        y : targets as the loss takes them (one-hot rows, or integer labels for
            the sparse loss)
        batch_size : int >= 1, default 32 (as Keras)
        epochs : int, the index of the last epoch + 1 (as Keras)
        verbose : 'auto' or 1 a progress bar (on a terminal; into a pipe or a file, none) and a line
            per epoch, 2 a line per epoch, 0 silent
        callbacks : list of Callback
        validation_split : float in [0, 1): the last fraction of (x, y), taken
            before any shuffling, is held out and evaluated after each epoch
            (Keras's rule: the first floor(n * (1 - split)) samples train)
        validation_data : (x_val, y_val), evaluated after each epoch; wins over
            ``validation_split``
        shuffle : bool, reshuffle the training samples each epoch
        initial_epoch : int, the epoch to start from; to resume a checkpoint
            loaded with :func:`cnn.load_model`, pass ``model.completed_epochs``

        Returns
        -------
        History, with ``history['loss']``, ``history['accuracy']``, ``history['val_loss']``...
        """
        for arg, value in (("class_weight", class_weight), ("sample_weight", sample_weight),
                           ("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):
            if value is not None:
                raise InputError(f"fit: {arg}= is not supported by this engine")
        validation_batch_size = None if validation_batch_size is None else \
            _positive_int(validation_batch_size, "validation_batch_size")
        if validation_freq != 1:
            raise InputError(f"fit: validation_freq={validation_freq!r} is not supported (only 1)")
        self._check_ready()
        x = self._check_x(x)
        y = self._check_y(y, _count(x))
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise InputError(f"epochs must be an int >= 0, got {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise InputError(f"initial_epoch must be an int >= 0, got {initial_epoch!r}")
        if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
            raise InputError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                or not 0 <= validation_split < 1:
            raise InputError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise InputError("validation_data must be a pair (x_val, y_val)")
            x_val = self._check_x(validation_data[0], "validation x")
            y_val = self._check_y(validation_data[1], _count(x_val), "validation y")
        elif validation_split:
            split_at = int(np.floor(_count(x) * (1.0 - validation_split)))
            if split_at == 0 or split_at == _count(x):
                raise InputError(f"validation_split={validation_split} leaves no samples for "
                                 f"{'training' if split_at == 0 else 'validation'} out of {_count(x)}")
            train, held_out = slice(None, split_at), slice(split_at, None)
            x, x_val, y, y_val = _take(x, train), _take(x, held_out), _take(y, train), _take(y, held_out)
        validating = validation_data is not None or bool(validation_split)
        verbose = 1 if verbose == "auto" else verbose
        # Keras's order: the progress bar first, the user's callbacks, History last (so it
        # records what callbacks add to the logs, such as the learning rate)
        history = History()
        # as Keras: a bar only where one can be drawn (tqdm draws on standard error, so a terminal
        # there); into a pipe or a log file, one line per epoch
        bar = verbose == 1 and _is_terminal(sys.stderr)
        progress = [ProgressBar(bar=bar, epochs=epochs, steps=-(-_count(x) // batch_size))] if verbose else []
        callbacks = [*progress, *(callbacks or []), history]
        for cb in callbacks:
            cb.set_model(self)
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin()
        n, names = _count(x), self._log_names
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            order = self.rng.permutation(n) if shuffle else np.arange(n)
            loss_sum, metric_sums = 0.0, [0.0] * len(names)
            for batch, start in enumerate(range(0, n, batch_size)):
                for cb in callbacks:
                    cb.on_batch_begin(batch)
                idx = order[start:start + batch_size]
                loss, sums = self._train_step(_take(x, idx), _take(y, idx))
                self._check_finite(loss, epoch, batch)
                loss_sum += loss * len(idx)
                metric_sums = [a + b for a, b in zip(metric_sums, sums)]
                batch_logs = _logs(loss, names, [v / len(idx) for v in sums])
                for cb in callbacks:
                    cb.on_batch_end(batch, batch_logs)
            logs = {"loss": loss_sum / n, **{m: v / n for m, v in zip(names, metric_sums)}}
            if validating:
                values = self._evaluate_checked(x_val, y_val, validation_batch_size or batch_size)
                logs.update({"val_" + name: v for name, v in zip(["loss", *names], values)})
            logs = dict(sorted(logs.items()))  # as Keras 3 on TensorFlow hands them over
            self.completed_epochs = epoch + 1
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        return history

    def _check_finite(self, loss, epoch, batch):
        """Stop at the first NaN or Inf in the loss or the weights. Checkpoints
        are written only at the end of a good epoch, so the last one is intact."""
        bad = None if np.isfinite(loss) else f"the loss became {loss}"
        for layer in self.layers:
            for name, value in layer.params.items():
                if bad is None and not np.isfinite(value).all():
                    bad = f"layer {layer.name!r} {name} holds NaN or Inf"
        if bad:
            raise TrainingDivergedError(
                f"{bad} at epoch {epoch}, batch {batch}: training diverged (try a smaller learning rate); "
                "the last checkpoint written before this, if any, is intact"
            )

    @blas_held
    def evaluate(self, x, y, batch_size=None, verbose=0, return_dict=False):
        """Loss and metrics on (x, y) at inference: ``[loss, accuracy]``, or
        the loss alone as a float when there is nothing else (Keras 3 returns
        a list only of two or more values); a dict with ``return_dict``."""
        self._check_ready()
        x = self._check_x(x)
        y = self._check_y(y, _count(x))
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        values = self._evaluate_checked(x, y, batch_size)
        names = ["loss", *self._log_names]
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in zip(names, values)))
        if return_dict:
            return dict(sorted(zip(names, values)))
        return values[0] if len(values) == 1 else values

    def _evaluate_checked(self, x, y, batch_size):
        loss_sum, metric_sums = 0.0, [0.0] * len(self._log_names)
        n = _count(x)
        for start in range(0, n, batch_size):
            batch = slice(start, start + batch_size)
            xb, yb = _take(x, batch), _take(y, batch)
            probs = self._forward(xb, training=False)
            loss_sum += self._loss(probs, yb) * _count(xb)
            metric_sums = [a + b for a, b in zip(metric_sums, self._metric_sums(probs, yb))]
        return [loss_sum / n + self._regularization(with_gradients=False), *(v / n for v in metric_sums)]

    @blas_held
    def predict(self, x, batch_size=None, verbose=0):
        """The model's outputs for ``x`` at inference, shape (n, *output_shape)."""
        x = self._check_x(x)
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        batches = [self._forward(_take(x, slice(s, s + batch_size)), training=False)
                   for s in range(0, _count(x), batch_size)]
        if isinstance(batches[0], list):  # one array per output
            return [np.concatenate(parts, axis=0) for parts in zip(*batches)]
        return np.concatenate(batches, axis=0)

    # ------------------------------------------------------------ weights
    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    @property
    def weights(self):
        """Every weight of every layer, in declared order."""
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def get_weights(self):
        """Copies of every weight, layer by layer in declared order (Keras's order)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Set every weight from a list in :meth:`get_weights` order; shapes must match."""
        weights = list(weights)
        counts = [len(layer.params) for layer in self.layers]
        if len(weights) != sum(counts):
            raise InputError(f"expected {sum(counts)} weight arrays, got {len(weights)}")
        for layer in self.layers:  # check every layer before changing any
            chunk, weights = weights[:len(layer.params)], weights[len(layer.params):]
            for (name, old), value in zip(layer.params.items(), chunk):
                if np.shape(value) != old.shape:
                    raise InputError(f"layer {layer.name!r} {name}: expected shape {old.shape}, got {np.shape(value)}")
            layer._pending = chunk
        for layer in self.layers:
            layer.set_weights(layer.__dict__.pop("_pending"))

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise InputError(f"no layer named {name!r}; the model has {[l.name for l in self.layers]}")

    def _connections(self):
        """Each layer's inbound layers, for summary's "Connected to" (None: a chain, no column)."""
        return None

    def summary(self, print_fn=print):
        """Print the layers, their output shapes and parameter counts, as Keras does
        (a functional model adds the "Connected to" column)."""
        if not self.built:
            raise InputError("the model is not built yet: give input_shape to the first layer or call build()")
        connections = self._connections()
        heads = ("Layer (type)", "Output Shape", "Param #") + (() if connections is None else ("Connected to",))
        rows = [(f"{layer.name} ({type(layer).__name__})", str((None, *layer.output_shape)),
                 f"{layer.count_params():,}") + (() if connections is None else (connections[i],))
                for i, layer in enumerate(self.layers)]
        widths = [max(len(r[i]) for r in rows + [heads]) + 2 for i in range(len(heads))]
        line = "".join(h.ljust(w) for h, w in zip(heads, widths))
        trainable = sum(w.size for w in self.trainable_weights)
        print_fn(f'Model: "{self.name}"')
        print_fn("-" * len(line))
        print_fn(line)
        print_fn("=" * len(line))
        for r in rows:
            print_fn("".join(c.ljust(w) for c, w in zip(r, widths)))
        print_fn("=" * len(line))
        print_fn(f"Total params: {self.count_params():,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {self.count_params() - trainable:,}")

    def producers(self):
        """For each layer, the indices in ``layers`` of the layers it reads (-1: the input)."""
        return [[i - 1] for i in range(len(self.layers))]

    @blas_held
    def trace(self, x, training=False):
        """Every layer's call on one batch, in ``layers`` order: a list of
        ``(layer, inputs, output)`` with ``inputs`` the list of arrays it read
        (the pictures and the explorer draw these; a public step, not a copy of
        the forward pass)."""
        x = self._check_x(np.asarray(x))
        calls = []
        for layer in self.layers:
            out = layer.forward(x, training=training)
            calls.append((layer, [x], out))
            x = out
        return calls

    def get_config(self):
        from .layers import layer_spec

        return {"name": self.name, "layers": [layer_spec(layer) for layer in self.layers]}

    def save_weights(self, path):
        """Write the weights alone as Keras 3 does (``path`` ends in ``.weights.h5``), for
        ``load_weights`` here or a Keras model of the same architecture."""
        from .saving import save_weights

        save_weights(self, path)

    def load_weights(self, path):
        """Read weights written by ``save_weights`` (or by Keras) into this built model."""
        from .saving import load_weights

        load_weights(self, path)

    def save(self, path):
        """Save the model, in the format its name asks for: ``.keras`` a Keras 3
        file (Keras and :func:`cnn.load_model` both load it), anything else the
        engine's own ``.npz`` with the whole training state (see :mod:`cnn.io`)."""
        from .saving import save_model  # the formats stand above the models (cnn.saving)

        save_model(self, path)
