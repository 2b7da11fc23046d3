"""Gradient checks by central finite differences, for anyone's code.

The idea, for a function ``out = f(*arrays)`` with a backward pass: pick a
random upstream gradient ``dout`` and the scalar ``s = sum(f(*arrays) * dout)``.
Then ``ds/darray`` is exactly the vector-Jacobian product the backward pass
returns for ``dout``, and each of its entries can be estimated by
``(s(v + eps) - s(v - eps)) / (2 eps)``. In float64 with eps = 1e-6 a correct
backward pass agrees to about 1e-9; a wrong one is off by far more.

Three levels, each on top of the one before:

* :func:`check_gradients`: any function of NumPy arrays with a backward
  (``backward(dout) -> grads``, or a CS231n pair ``forward(*arrays) -> (out,
  cache)`` / ``backward(dout, cache) -> grads``);
* :func:`check_layer`: any layer (the engine's or yours), its input and every
  trainable weight, in inference or training mode (random masks held fixed),
  on every algorithm the layer may pick;
* :func:`check_model`: a whole compiled Sequential, the loss's gradient with
  respect to every trainable weight.

Each entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``
(``torch.autograd.gradcheck``'s rule, with its defaults). On failure a
:class:`GradientCheckError` lists the worst entries (index, analytic,
numeric, relative error) and a diagnosis: float32 arithmetic, a kink or tie
within eps of the point (ReLU at 0, a max-pool tie), or a function that is not
deterministic. The report returned on success is a dict ``name -> norm-wise
relative error`` (``||a - n|| / (||a|| + ||n||)``) with the details in
``report.arrays``.

>>> from cnn.layers import Conv2D
>>> report = check_layer(Conv2D(4, 3, padding='same'), input_shape=(5, 5, 2))
>>> report.passed
True
"""
import contextlib
import copy
import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import CNNError, InputError

DEFAULT_EPS = 1e-6
DEFAULT_ATOL = 1e-5  # torch.autograd.gradcheck's defaults
DEFAULT_RTOL = 1e-3
ALL_ENTRIES_UP_TO = 1000  # arrays this small are checked entry by entry; larger ones are sampled
SAMPLED_ENTRIES = 300


class GradientCheckError(CNNError, AssertionError):
    """An analytic gradient disagrees with the finite differences (the
    message shows the worst entries and what may explain them)."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


class LowPrecisionWarning(UserWarning):
    """A gradient check ran in float32, where central differences carry ~1e-3 noise."""


@dataclass
class ArrayCheck:
    """The comparison for one array: which entries, how far apart, the worst ones."""
    name: str
    shape: tuple
    checked: int
    max_abs_error: float
    max_rel_error: float
    norm_rel_error: float
    failures: int
    worst: list = field(default_factory=list)  # (index, analytic, numeric, relative error)

    @property
    def passed(self):
        return self.failures == 0


class GradcheckReport(dict):
    """name -> norm-wise relative error, with ``arrays`` (name -> ArrayCheck),
    ``passed``, ``diagnosis`` and the tolerances used."""

    def __init__(self, arrays, atol, rtol, eps, diagnosis):
        super().__init__({name: a.norm_rel_error for name, a in arrays.items()})
        self.arrays, self.atol, self.rtol, self.eps, self.diagnosis = arrays, atol, rtol, eps, diagnosis

    @property
    def passed(self):
        return all(a.passed for a in self.arrays.values())

    def __str__(self):
        lines = [f"{'array':24s} {'entries':>8s} {'max abs err':>12s} {'max rel err':>12s} {'failed':>7s}"]
        for a in self.arrays.values():
            lines.append(f"{a.name:24s} {a.checked:8d} {a.max_abs_error:12.2e} {a.max_rel_error:12.2e} {a.failures:7d}")
        lines.append(f"tolerance: |analytic - numeric| <= {self.atol:g} + {self.rtol:g} * |numeric|, eps {self.eps:g}")
        return "\n".join(lines)


def relative_error(analytic, numeric):
    """``||a - n|| / (||a|| + ||n||)``: 0 when equal, 1 when unrelated; 0 for two zeros."""
    analytic = np.asarray(analytic, dtype=np.float64).ravel()
    numeric = np.asarray(numeric, dtype=np.float64).ravel()
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


def numerical_gradient(f, array, eps=DEFAULT_EPS, indices=None):
    """Central differences of the scalar function ``f()`` with respect to ``array``.

    ``array`` is perturbed in place, one entry at a time, and restored; ``f``
    reads it. (:func:`check_gradients` wraps this so that ``f`` can simply
    take the arrays as arguments.)

    Returns
    -------
    grad : float64 ndarray of ``array``'s shape; unchecked entries are NaN.
    """
    grad = np.full(array.shape, np.nan)
    flat = array.reshape(-1)  # a view: writes reach ``array``
    for i in range(flat.size) if indices is None else indices:
        original = flat[i]
        flat[i] = original + eps
        up = f()
        flat[i] = original - eps
        down = f()
        flat[i] = original
        grad.flat[i] = (up - down) / (2 * eps)
    return grad


def _sample(size, max_checks, rng):
    if max_checks is None:
        max_checks = size if size <= ALL_ENTRIES_UP_TO else SAMPLED_ENTRIES
    if size <= max_checks:
        return np.arange(size)
    return np.sort(rng.choice(size, max_checks, replace=False))


def _compare(name, analytic, numeric, indices, atol, rtol, shape):
    a = np.asarray(analytic, dtype=np.float64).reshape(-1)[indices]
    n = numeric.reshape(-1)[indices]
    diff = np.abs(a - n)
    bad = diff > atol + rtol * np.abs(n)
    rel = diff / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
    rel[diff == 0] = 0.0
    order = np.argsort(-(diff - (atol + rtol * np.abs(n))))[:5]
    worst = [(tuple(int(v) for v in np.unravel_index(indices[k], shape)), float(a[k]), float(n[k]), float(rel[k]))
             for k in order]
    return ArrayCheck(name, tuple(shape), len(indices), float(diff.max(initial=0.0)), float(rel.max(initial=0.0)),
                      relative_error(a, n), int(bad.sum()), worst)


def _diagnose(scalar, arrays, checks, eps, low_precision, deterministic):
    """Short reasons a failing check may not mean a wrong backward pass."""
    notes = []
    if low_precision:
        notes.append("float32 arithmetic: central differences carry ~1e-3 relative noise there; check in float64 "
                     "(cnn.set_floatx('float64') before building, or float64 arrays)")
    if not deterministic:
        notes.append("the function is not deterministic: two calls at the same point differ (random draws such as "
                     "dropout masks must be held fixed between calls)")
    for name, check in checks.items():
        if check.passed or name not in arrays:
            continue
        array = arrays[name]
        flat = array.reshape(-1)
        for index, *_ in check.worst[:3]:
            i = int(np.ravel_multi_index(index, array.shape))
            original = flat[i]
            base = scalar()
            flat[i] = original + eps
            up = scalar()
            flat[i] = original - eps
            down = scalar()
            flat[i] = original
            right, left = (up - base) / eps, (base - down) / eps
            if abs(right - left) > 1e-3 * max(abs(right), abs(left), 1e-8) + 1e-6:
                notes.append(f"{name}{list(index)}: the slope is {left:.4g} just below and {right:.4g} just above: "
                             "a kink or a tie within eps of the point (ReLU at 0, a max-pool tie, |x| at 0); "
                             "move the input away from it")
                break
    return notes


def check_gradients(f, *arrays, backward=None, names=None, eps=DEFAULT_EPS, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL,
                    max_checks=None, seed=0, raise_on_failure=True):
    """Compare a function's backward pass with central differences, entry by entry.

    Parameters
    ----------
    f : callable, ``f(*arrays) -> out`` (an array or a number)
    *arrays : the NumPy arrays ``f`` takes (float64 for a meaningful check)
    backward : callable
        ``backward(dout) -> grads`` (one gradient per array, None for an array
        not to check), called after ``f`` at the unperturbed point; or, CS231n
        style, ``backward(dout, cache) -> grads`` when ``f`` returns
        ``(out, cache)``.
    names : names of the arrays in the report (default 'arg0', 'arg1', ...)
    eps, atol, rtol : the step and the tolerances (torch.autograd.gradcheck's)
    max_checks : entries checked per array; default every entry up to 1,000,
        else 300 drawn at random
    seed : for ``dout`` and the sampled entries
    raise_on_failure : raise :class:`GradientCheckError` on a failed entry

    Returns
    -------
    GradcheckReport : name -> norm-wise relative error, with the details
    """
    if backward is None:
        raise InputError("check_gradients needs backward=: backward(dout) -> grads, or backward(dout, cache)")
    if not arrays:
        raise InputError("check_gradients needs at least one array")
    names = list(names) if names is not None else [f"arg{i}" for i in range(len(arrays))]
    if len(names) != len(arrays):
        raise InputError(f"{len(names)} names for {len(arrays)} arrays")
    for name, a in zip(names, arrays):
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"{name}: check_gradients takes float NumPy arrays, got "
                             f"{type(a).__name__ if not isinstance(a, np.ndarray) else a.dtype}")
    try:
        cache_style = len(inspect.signature(backward).parameters) >= 2
    except (TypeError, ValueError):
        cache_style = False
    low_precision = any(a.dtype != np.float64 for a in arrays)
    if low_precision:
        warnings.warn("gradient check in float32: expect ~1e-3 noise in the finite differences; use float64",
                      LowPrecisionWarning, stacklevel=2)
    rng = np.random.default_rng(seed)

    def output():
        result = f(*arrays)
        return result[0] if cache_style else result

    first = f(*arrays)
    out, cache = (first if cache_style else (first, None))
    out = np.asarray(out)
    dout = rng.standard_normal(out.shape)

    def scalar():
        return float(np.sum(np.asarray(output(), dtype=np.float64) * dout))

    grads = backward(dout.astype(out.dtype if np.issubdtype(out.dtype, np.floating) else np.float64), cache) \
        if cache_style else backward(dout.astype(out.dtype if np.issubdtype(out.dtype, np.floating) else np.float64))
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(arrays):
        raise InputError(f"backward returned {len(grads)} gradients for {len(arrays)} arrays")
    deterministic = scalar() == scalar()
    checks, by_name = {}, {}
    for name, array, grad in zip(names, arrays, grads):
        if grad is None:
            continue
        grad = np.asarray(grad)
        if grad.shape != array.shape:
            raise InputError(f"{name}: backward's gradient has shape {grad.shape}, the array {array.shape}")
        grad = grad.copy()  # backward's buffers may be reused by the next call
        indices = _sample(array.size, max_checks, rng)
        numeric = numerical_gradient(scalar, array, eps, indices)
        checks[name] = _compare(name, grad, numeric, indices, atol, rtol, array.shape)
        by_name[name] = array
    notes = [] if all(c.passed for c in checks.values()) else _diagnose(scalar, by_name, checks, eps, low_precision,
                                                                        deterministic)
    report = GradcheckReport(checks, atol, rtol, eps, notes)
    if raise_on_failure and not report.passed:
        raise GradientCheckError(_failure_message(report), report)
    return report


def _failure_message(report):
    lines = ["gradient check failed:"]
    for check in report.arrays.values():
        if check.passed:
            continue
        lines.append(f"  {check.name}: {check.failures} of {check.checked} entries outside "
                     f"{report.atol:g} + {report.rtol:g} * |numeric|; worst:")
        lines.append(f"    {'index':18s} {'analytic':>13s} {'numeric':>13s} {'rel. error':>11s}")
        for index, a, n, rel in check.worst:
            lines.append(f"    {str(list(index)):18s} {a:13.6g} {n:13.6g} {rel:11.2e}")
    for note in report.diagnosis:
        lines.append(f"  possible cause: {note}")
    return "\n".join(lines)


# ------------------------------------------------------------ layers
@contextlib.contextmanager
def _float64():
    from . import backend

    with backend.floatx_in_this_thread("float64"):  # this thread's layers only
        yield


def _algorithms(layer):
    """The algorithms a layer may pick, each as a configured copy: a
    convolution on impl='numba' may run im2col or Winograd."""
    from .layers import Conv2D
    from kernels.conv import winograd_applies

    if isinstance(layer, Conv2D) and layer.impl == "numba":
        variants = [("im2col", "im2col")]
        if winograd_applies(layer.kernel_size, layer.strides, layer.dilation_rate):
            variants.append(("winograd", "winograd"))
        return variants
    return [(None, None)]


def check_layer(layer, x=None, input_shape=None, training=False, batch_size=None, eps=DEFAULT_EPS,
                atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL, max_checks=None, seed=0, raise_on_failure=True):
    """Check a layer's backward pass (input and every trainable weight)
    against central differences, in float64.

    Parameters
    ----------
    layer : a layer (built or not); it is copied, never changed
    x : ndarray (n, *input_shape), optional; default normal noise; a list
        of arrays for a merge layer (``Add``, ``Concatenate``, ...)
    input_shape : tuple, when ``x`` is not given and the layer was not given
        one (``input_shape=`` when made) and is not built
    training : bool, forward mode; random draws (Dropout's mask) are held
        fixed between calls
    batch_size : default 8, enough for every algorithm a convolution may pick
    max_checks, eps, atol, rtol, seed, raise_on_failure : as :func:`check_gradients`

    A convolution on its default ``impl='numba'`` is checked on each
    algorithm it may pick (im2col, and Winograd for 3x3 stride-1 kernels):
    the report's names then carry the algorithm, e.g. 'kernel [winograd]'.

    Returns
    -------
    GradcheckReport : name ('input', 'kernel', ...) -> norm-wise relative error
    """
    from .layers import Layer

    if not isinstance(layer, Layer):
        kind = "a Sequential model: use check_model(model, x, y)" if hasattr(layer, "layers") else type(layer).__name__
        raise InputError(f"check_layer takes a layer, got {kind}")
    rng = np.random.default_rng(seed)
    if x is None:
        shape = input_shape or layer.input_shape
        if shape is None:
            raise InputError(f"check_layer: layer {layer.name!r} does not know its input shape; "
                             "give input_shape=(...) (one sample, no batch axis) or x=")
        x = rng.standard_normal((batch_size or 8, *shape))
    several = isinstance(x, (list, tuple))
    xs = [np.array(one, dtype=np.float64) for one in (x if several else [x])]
    sample_shape = [one.shape[1:] for one in xs] if several else xs[0].shape[1:]
    arrays, notes = {}, []
    for label, impl in _algorithms(layer):
        with _float64():
            copy_ = copy.deepcopy(layer)
            if impl is not None:
                copy_.impl = impl
            copy_.needs_input_gradient = True  # even a model's first layer: dx is checked too
            if not copy_.built:
                copy_.build(sample_shape)
        for name in copy_.params:
            copy_.params[name] = copy_.params[name].astype(np.float64)
        report = _check_built_layer(copy_, xs, several, training, eps, atol, rtol, max_checks, seed)
        suffix = f" [{label}]" if label and len(_algorithms(layer)) > 1 else ""
        for name, check in report.arrays.items():
            check.name = name + suffix
            arrays[name + suffix] = check
        notes += report.diagnosis
    report = GradcheckReport(arrays, atol, rtol, eps, notes)
    if raise_on_failure and not report.passed:
        raise GradientCheckError(f"{type(layer).__name__} layer {layer.name!r}: " + _failure_message(report), report)
    return report


def _check_built_layer(layer, xs, several, training, eps, atol, rtol, max_checks, seed):
    trainable = layer.trainable_names  # the weights with gradients (not BatchNorm's moving statistics)
    fixed_rng = copy.deepcopy(layer.rng)
    weights = [layer.params[name] for name in trainable]
    k = len(xs)

    def forward(*arrays):
        if fixed_rng is not None:  # the same dropout mask on every call
            layer.rng = copy.deepcopy(fixed_rng)
        return layer.forward(list(arrays[:k]) if several else arrays[0], training=training)

    def backward(dout):
        dx = layer.backward(dout)
        return (*(dx if several else [dx]), *(layer.grads[name] for name in trainable))

    inputs = [f"input {i}" for i in range(k)] if several else ["input"]
    return check_gradients(forward, *xs, *weights, backward=backward, names=[*inputs, *trainable], eps=eps,
                           atol=atol, rtol=rtol, max_checks=max_checks, seed=seed, raise_on_failure=False)


# ------------------------------------------------------------ models
def check_model(model, x, y, training=True, eps=DEFAULT_EPS, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL, max_checks=None,
                seed=0, raise_on_failure=True):
    """Check the gradient of a compiled model's loss (weight penalties
    included) with respect to every trainable weight, in float64.

    Parameters
    ----------
    model : a compiled model, Sequential or graph (it is copied, never changed)
    x, y : one batch, as ``fit`` takes it
    training : bool, training mode (dropout masks held fixed) or inference
    max_checks : entries per weight (default: all up to 1,000, else 300 at random)

    Returns
    -------
    GradcheckReport : 'layer/weight' -> norm-wise relative error
    """
    if not hasattr(model, "layers") or not hasattr(model, "compute_gradients"):
        raise InputError(f"check_model takes a Sequential, got {type(model).__name__}; for a layer use check_layer")
    if model.loss is None:
        raise InputError("check_model: compile the model first (its loss is what is differentiated)")
    model = copy.deepcopy(model)
    if not model.built:
        model.build(np.asarray(x).shape[1:])
    for layer in model.layers:
        for name in layer.params:
            layer.params[name] = layer.params[name].astype(np.float64)
    if isinstance(x, dict):  # a graph's inputs by name
        x = {key: np.array(value, dtype=np.float64) for key, value in x.items()}
    elif isinstance(x, (list, tuple)):
        x = [np.array(value, dtype=np.float64) for value in x]
    else:
        x = np.array(x, dtype=np.float64)
    y = y if isinstance(y, (list, tuple, dict)) else np.asarray(y)
    states = [copy.deepcopy(layer.rng) for layer in model.layers]
    moving = [{n: v.copy() for n, v in layer.params.items() if n not in layer.trainable_names} for layer in model.layers]
    owners = [(layer, name) for layer in model.layers for name in layer.trainable_names]

    def as_it_was():
        for layer, state, saved in zip(model.layers, states, moving):
            if state is not None:
                layer.rng = copy.deepcopy(state)  # the same dropout masks on every call
            for name, value in saved.items():
                layer.params[name][...] = value  # BatchNorm's moving statistics as they were

    def loss(*weights):  # the model's public API only: a call, then Keras's compute_loss
        as_it_was()
        return model.compute_loss(x, y, model(x, training=training), training=training)

    def backward(dout):
        as_it_was()
        _, grads = model.compute_gradients(x, y, training=training)
        return tuple(grads[(layer.name, name)] * float(dout) for layer, name in owners)

    weights = [layer.params[name] for layer, name in owners]
    names = [f"{layer.name}/{name}" for layer, name in owners]
    report = check_gradients(loss, *weights, backward=backward, names=names, eps=eps, atol=atol, rtol=rtol,
                             max_checks=max_checks, seed=seed, raise_on_failure=False)
    if raise_on_failure and not report.passed:
        raise GradientCheckError("model: " + _failure_message(report), report)
    return report


# ------------------------------------------------------------ losses
def check_loss(loss, y_pred, y_true, from_logits=False, eps=DEFAULT_EPS):
    """Check a loss's gradient with respect to its predictions (or, with
    ``from_logits``, the fused gradient with respect to the logits).

    Returns
    -------
    float : the norm-wise relative error
    """
    y_pred = np.array(y_pred, dtype=np.float64)
    y_true = np.array(y_true, dtype=np.float64)
    forward = loss.forward_from_logits if from_logits else loss.forward
    backward = loss.backward_from_logits if from_logits else loss.backward
    forward(y_pred, y_true)
    analytic = backward()
    numeric = numerical_gradient(lambda: forward(y_pred, y_true), y_pred, eps)
    return relative_error(analytic, numeric)
