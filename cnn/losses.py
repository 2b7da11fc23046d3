"""Losses, with Keras's names and arguments, reduced as Keras does: the mean
over the batch of a per-sample loss.

Each loss has ``forward(y_pred, y_true) -> float`` and ``backward() ->
dloss/dy_pred``. The cross-entropies also have ``forward_from_logits`` /
``backward_from_logits``: the model uses them when its output layer ends in
the matching activation (softmax for the categorical ones, sigmoid for the
binary one), as Keras's TensorFlow backend does: the loss is computed from the
logits with no clipping, and the fused gradient is (p - y) / batch. With
``from_logits=True`` the model's output *is* the logits, and ``forward`` and
``backward`` are the fused pair.

Shapes: y_pred (n, classes); y_true (n, classes), or integer labels (n,) or
(n, 1) for the sparse loss; gradients as y_pred.

What ``forward`` keeps for ``backward`` is kept per thread: one loss object
given to two models that train in two threads serves both, each thread's
pair of calls seeing its own values.
"""
import threading

import numpy as np

from kernels.activations import log_softmax, sigmoid_forward, softmax_forward

from .backend import EPSILON
from .errors import InputError


class _PerThread:
    """An attribute whose value is the calling thread's own."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, loss, owner=None):
        if loss is None:
            return self
        try:
            return getattr(loss.__dict__["_per_thread"], self.name)
        except (KeyError, AttributeError):
            raise AttributeError(f"{type(loss).__name__}.{self.name}: no forward pass in this thread yet") from None

    def __set__(self, loss, value):
        setattr(loss.__dict__.setdefault("_per_thread", threading.local()), self.name, value)


class Loss:
    name = None
    # the output activation whose logits this loss can take directly (fused)
    fuses_with = None
    # what forward keeps for backward, per thread
    _cache = _PerThread()
    _logits_cache = _PerThread()

    def __getstate__(self):  # copies (copy.deepcopy of a model) start with nothing kept
        return {k: v for k, v in self.__dict__.items() if k != "_per_thread"}

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None):
        if reduction not in ("sum_over_batch_size", "auto"):
            raise InputError(f"{type(self).__name__}: reduction={reduction!r} is not supported "
                             "(only 'sum_over_batch_size', the mean over the batch)")
        self.from_logits = bool(from_logits)
        if name is not None:
            self.name = name

    def _refuse(self, **given):
        """Keras arguments supported only at their default: ``name=(value, default)``."""
        for name, (value, default) in given.items():
            if value != default:
                raise InputError(f"{type(self).__name__}: {name}={value!r} is not supported (only {default!r})")

    def check_targets(self, y, n, output_shape, what="y"):
        """``y`` as the float array this loss reads, or an InputError naming the problem."""
        if y.shape != (n, *output_shape):
            raise InputError(f"{what} must have shape ({n}, {', '.join(map(str, output_shape))}) to match x and "
                             f"the model's output, got {y.shape}")
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
            raise InputError(f"{what} must be numeric, got dtype {y.dtype}")
        if not np.isfinite(y).all():
            raise InputError(f"{what} contains NaN or Inf")
        return y

    def forward(self, y_pred, y_true):
        if self.from_logits:
            return self.forward_from_logits(y_pred, y_true)
        return self.forward_probabilities(y_pred, y_true)

    def backward(self):
        return self.backward_from_logits() if self.from_logits else self.backward_probabilities()

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy, ``-sum(y * log(p))`` per sample, mean over the batch.

    On probabilities it follows Keras exactly: each row of ``y_pred`` is first
    divided by its sum, then clipped to [1e-7, 1 - 1e-7] (so a probability of
    0 costs -log(1e-7) ~ 16.1, not infinity). Where the clip is active the
    gradient is zero, as for ``tf.clip_by_value``.
    """

    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits, reduction, name)
        self._refuse(label_smoothing=(label_smoothing, 0), axis=(axis, -1))

    def check_targets(self, y, n, output_shape, what="y"):
        if y.ndim == 1:
            raise InputError(
                f"{what} has shape {y.shape}: {self.name} takes one-hot rows (n, {output_shape[-1]}); "
                "use cnn.data.one_hot(labels), or loss='sparse_categorical_crossentropy' for integer labels"
            )
        y = super().check_targets(y, n, output_shape, what)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise InputError(f"{what} values must lie in [0, 1] for cross-entropy, got {y.min()}..{y.max()}")
        return y

    def forward_probabilities(self, y_pred, y_true):
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        clipped = np.clip(q, EPSILON, 1 - EPSILON)
        self._cache = (y_true, total, q, clipped)
        return float(np.mean(-(y_true * np.log(clipped)).sum(axis=-1)))

    def backward_probabilities(self):
        y_true, total, q, clipped = self._cache
        n = y_true.shape[0]
        dq = -y_true / clipped
        dq = np.where((q >= EPSILON) & (q <= 1 - EPSILON), dq, 0)  # clip passes inside [lo, hi]
        # through q = p / sum(p): dp_j = (dq_j - sum_k dq_k q_k) / sum(p)
        dp = (dq - (dq * q).sum(axis=-1, keepdims=True)) / total
        return (dp / n).astype(q.dtype, copy=False)

    def forward_from_logits(self, logits, y_true):
        logp = log_softmax(logits)
        self._logits_cache = (softmax_forward(logits), y_true)
        return float(np.mean(-(y_true * logp).sum(axis=-1)))

    def backward_from_logits(self):
        p, y_true = self._logits_cache
        # softmax_cross_entropy_with_logits does not renormalise the labels
        return ((p * y_true.sum(axis=-1, keepdims=True) - y_true) / y_true.shape[0]).astype(p.dtype, copy=False)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels: ``-log(p[label])`` per sample.

    Labels are ints 0..classes-1, shape (n,) or (n, 1). On probabilities,
    Keras's renormalising and clipping apply as for the categorical loss.
    """

    name = "sparse_categorical_crossentropy"
    fuses_with = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits, reduction, name)
        if ignore_class is not None:
            raise InputError(f"{type(self).__name__}: ignore_class={ignore_class!r} is not supported")
        self._dense = CategoricalCrossentropy(from_logits)

    def check_targets(self, y, n, output_shape, what="y"):
        classes = output_shape[-1]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != n:
            raise InputError(f"{what} must be integer labels of shape ({n},) or ({n}, 1) for {self.name}, "
                             f"got {y.shape}" + ("; one-hot rows go with 'categorical_crossentropy'"
                                                 if y.ndim == 2 and y.shape[1] == classes else ""))
        if np.issubdtype(y.dtype, np.floating):
            if not np.isfinite(y).all() or (y != np.round(y)).any():
                raise InputError(f"{what} must hold whole-number labels for {self.name}")
        elif not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"{what} must hold integer labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise InputError(f"{what} labels must lie in 0..{classes - 1} (the model has {classes} outputs), "
                             f"got {int(y.min())}..{int(y.max())}")
        return y.astype(np.int64)

    def _one_hot(self, labels, like):
        out = np.zeros(like.shape, like.dtype)
        out[np.arange(labels.shape[0]), labels.astype(np.int64).reshape(-1)] = 1
        return out

    def forward_probabilities(self, y_pred, y_true):
        return self._dense.forward_probabilities(y_pred, self._one_hot(y_true, y_pred))

    def backward_probabilities(self):
        return self._dense.backward_probabilities()

    def forward_from_logits(self, logits, y_true):
        return self._dense.forward_from_logits(logits, self._one_hot(y_true, logits))

    def backward_from_logits(self):
        return self._dense.backward_from_logits()


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, mean over the last axis then over the batch.

    On probabilities, as Keras: clipped to [1e-7, 1 - 1e-7], then
    ``-(y log p + (1 - y) log(1 - p))`` (no gradient where clipped). From
    logits z, TensorFlow's stable form ``max(z, 0) - z y + log(1 + exp(-|z|))``,
    whose gradient is (sigmoid(z) - y) / size.
    """

    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits, reduction, name)
        self._refuse(label_smoothing=(label_smoothing, 0), axis=(axis, -1))

    def check_targets(self, y, n, output_shape, what="y"):
        if y.ndim == 1 and output_shape == (1,):
            raise InputError(f"{what} has shape {y.shape}: give binary targets as (n, 1), e.g. y.reshape(-1, 1)")
        y = super().check_targets(y, n, output_shape, what)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise InputError(f"{what} values must lie in [0, 1] for binary cross-entropy, got {y.min()}..{y.max()}")
        return y

    def forward_probabilities(self, y_pred, y_true):
        clipped = np.clip(y_pred, EPSILON, 1 - EPSILON)
        self._cache = (y_pred, y_true, clipped)
        per_value = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped))
        return float(np.mean(per_value))

    def backward_probabilities(self):
        y_pred, y_true, clipped = self._cache
        grad = (-y_true / clipped + (1 - y_true) / (1 - clipped)) / y_pred.size
        inside = (y_pred >= EPSILON) & (y_pred <= 1 - EPSILON)
        return np.where(inside, grad, 0).astype(y_pred.dtype, copy=False)

    def forward_from_logits(self, logits, y_true):
        self._logits_cache = (logits, y_true)
        per_value = np.maximum(logits, 0) - logits * y_true + np.log1p(np.exp(-np.abs(logits)))
        return float(np.mean(per_value))

    def backward_from_logits(self):
        logits, y_true = self._logits_cache
        return ((sigmoid_forward(logits) - y_true) / logits.size).astype(logits.dtype, copy=False)


class MeanSquaredError(Loss):
    """Mean squared error: mean over the last axis, then over the batch."""

    name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name=None):
        super().__init__(False, reduction, name)

    def check_targets(self, y, n, output_shape, what="y"):
        if y.ndim == 1 and output_shape != (n,):
            raise InputError(f"{what} has shape {y.shape}; the model's outputs are ({n}, {', '.join(map(str, output_shape))})")
        return super().check_targets(y, n, output_shape, what)

    def forward_probabilities(self, y_pred, y_true):
        self._cache = (y_pred - y_true)
        return float(np.mean(self._cache ** 2))

    def backward_probabilities(self):
        diff = self._cache
        return (2 * diff / diff.size).astype(diff.dtype, copy=False)

    def get_config(self):
        return {}


CLASSES = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                         BinaryCrossentropy, MeanSquaredError)}
LOSSES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(loss):
    """A loss object from a Keras name, a saved config or an instance."""
    if isinstance(loss, str):
        cls = LOSSES.get(loss) or CLASSES.get(loss)
        if cls is None:
            raise InputError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}")
        return cls()
    if isinstance(loss, dict) and loss.get("class_name") in CLASSES:
        config = loss.get("config") or {}
        try:
            return CLASSES[loss["class_name"]](**{k: v for k, v in config.items() if k not in ("name", "dtype")})
        except TypeError as err:
            raise InputError(f"loss {loss['class_name']}: {err}") from None
    if isinstance(loss, Loss) or (hasattr(loss, "forward") and hasattr(loss, "backward")):
        return loss
    raise InputError(f"loss must be a name or a loss object, got {loss!r}")


def serialize(loss):
    """The name of a default loss, or {'class_name', 'config'} when it has arguments."""
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    if not any(config.values()):
        return loss.name
    return {"class_name": type(loss).__name__, "config": config}
