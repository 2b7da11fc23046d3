"""Merge layers: several inputs, one output, as Keras's ``keras.layers.Add``,
``Concatenate``... and the functions ``add``, ``concatenate``...

Element-wise merges broadcast as NumPy (and Keras) do, so a squeeze-excite
block multiplies ``(n, 1, 1, c)`` by ``(n, h, w, c)``; each input's gradient
is the output's, reduced over the axes that input was broadcast along.
``Maximum`` / ``Minimum`` fold their inputs pairwise and send a tie's
gradient to the earlier input, as TensorFlow's gradient of ``maximum`` does.

Shapes (per sample, no batch axis): a list of input shapes -> one output shape.
"""
import numpy as np

from ..errors import InputError
from .base import Example, Layer

S = (3, 4, 5)  # the examples' sample shape


def _broadcast(shapes, name):
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise InputError(f"merge layer {name!r}: inputs of shapes {list(shapes)} do not broadcast together") from None


def _reduce_to(grad, shape):
    """``grad`` summed over the axes along which an input of ``shape`` (batch axis
    included) was broadcast."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


class _Merge(Layer):
    """Base of the merge layers: ``forward(list of arrays)``, ``backward(dout) -> list``."""

    minimum_inputs = 2
    maximum_inputs = None

    def build(self, input_shape):
        if not input_shape or not all(isinstance(s, (tuple, list)) for s in input_shape):
            raise InputError(f"{type(self).__name__} layer {self.name!r} merges several tensors: call it on a list "
                             "of them in a functional model (cnn.Model), not in a Sequential")
        shapes = [tuple(s) for s in input_shape]
        if not isinstance(input_shape, (list, tuple)) or len(shapes) < self.minimum_inputs or (
                self.maximum_inputs is not None and len(shapes) > self.maximum_inputs):
            wanted = (f"exactly {self.maximum_inputs}" if self.maximum_inputs == self.minimum_inputs
                      else f"at least {self.minimum_inputs}")
            raise InputError(f"{type(self).__name__} layer {self.name!r} takes a list of {wanted} inputs, "
                             f"got {len(shapes)}")
        if len({len(s) for s in shapes}) != 1:
            raise InputError(f"{type(self).__name__} layer {self.name!r}: inputs of different ranks {shapes}")
        self.input_shape = tuple(shapes)
        self.output_shape = tuple(self.compute_output_shape(shapes))
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return _broadcast(input_shape, self.name)

    def _check_inputs(self, xs):
        if not isinstance(xs, (list, tuple)):
            raise InputError(f"{type(self).__name__} layer {self.name!r} takes a list of arrays")
        xs = [np.asarray(x) for x in xs]
        if not self.built:
            self.build([x.shape[1:] for x in xs])
        got = tuple(x.shape[1:] for x in xs)
        if got != self.input_shape:
            raise InputError(f"layer {self.name!r} expects samples of shapes {list(self.input_shape)}, got {list(got)}")
        return xs

    def __call__(self, x, training=False):
        from ..functional import is_symbolic

        if is_symbolic(x):  # a node of a functional model (one tensor alone is refused there, by name)
            return super().__call__(x, training)
        return self.forward(x, training=training)

    def forward(self, xs, training=False):
        xs = self._check_inputs(xs)
        self._shapes = [x.shape for x in xs]
        return self._merge(xs)

    def backward(self, dout):
        return [_reduce_to(g, shape) for g, shape in zip(self._grads(dout), self._shapes)]


class Add(_Merge):
    """The sum of the inputs."""

    examples = (Example("3 inputs", {}, [S, S, S]), Example("broadcast (1, 1, 5)", {}, [S, (1, 1, 5)]))

    def _merge(self, xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out

    def _grads(self, dout):
        return [dout.copy() for _ in self._shapes]  # each consumer gets its own array


class Subtract(_Merge):
    """The first input less the second (exactly two)."""

    maximum_inputs = 2
    examples = (Example("", {}, [S, S]),)

    def _merge(self, xs):
        return xs[0] - xs[1]

    def _grads(self, dout):
        return [dout.copy(), -dout]


class Average(_Merge):
    """The mean of the inputs."""

    examples = (Example("3 inputs", {}, [S, S, S]),)

    def _merge(self, xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out / len(xs)

    def _grads(self, dout):
        return [dout / len(self._shapes) for _ in self._shapes]


class Multiply(_Merge):
    """The element-wise product of the inputs."""

    examples = (Example("3 inputs", {}, [S, S, S]),
                Example("squeeze-excite (1, 1, 5)", {}, [S, (1, 1, 5)]))

    def _merge(self, xs):
        self._xs = xs
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        return out

    def _grads(self, dout):
        grads = []
        for i in range(len(self._xs)):
            g = dout
            for j, x in enumerate(self._xs):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads


class _Extreme(_Merge):
    """Maximum or Minimum, folded pairwise left to right; a tie's gradient goes
    to the earlier input (TensorFlow's rule for ``maximum`` / ``minimum``)."""

    def _merge(self, xs):
        self._xs, self._partials = xs, [xs[0]]
        for x in xs[1:]:
            self._partials.append(self._pick(self._partials[-1], x))
        return self._partials[-1]

    def _grads(self, dout):
        grads = [None] * len(self._xs)
        g = dout
        for k in range(len(self._xs) - 1, 0, -1):
            left, right = self._partials[k - 1], self._xs[k]
            first = self._first_wins(left, right)
            grads[k] = np.where(first, 0, g).astype(dout.dtype, copy=False)
            g = np.where(first, g, 0).astype(dout.dtype, copy=False)
        grads[0] = g
        return grads


class Maximum(_Extreme):
    """The element-wise maximum of the inputs."""

    examples = (Example("3 inputs", {}, [S, S, S]),)

    _pick = staticmethod(np.maximum)

    @staticmethod
    def _first_wins(a, b):
        return a >= b


class Minimum(_Extreme):
    """The element-wise minimum of the inputs."""

    examples = (Example("3 inputs", {}, [S, S, S]),)

    _pick = staticmethod(np.minimum)

    @staticmethod
    def _first_wins(a, b):
        return a <= b


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (default -1, the channels), as Keras."""

    examples = (Example("channels", {}, [S, (3, 4, 2), (3, 4, 1)]),
                Example("axis 1", {"axis": 1}, [S, (2, 4, 5)]))

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise InputError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        rank = len(input_shape[0]) + 1  # with the batch axis
        axis = self.axis % rank
        if axis == 0:
            raise InputError(f"Concatenate layer {self.name!r}: axis {self.axis} is the batch axis")
        others = {tuple(d for i, d in enumerate(s) if i != axis - 1) for s in input_shape}
        if len(others) != 1:
            raise InputError(f"Concatenate layer {self.name!r}: inputs {list(input_shape)} differ outside axis "
                             f"{self.axis}")
        out = list(input_shape[0])
        out[axis - 1] = sum(s[axis - 1] for s in input_shape)
        return tuple(out)

    def _merge(self, xs):
        self._sizes = [x.shape[self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def _grads(self, dout):
        cuts = np.cumsum(self._sizes)[:-1]
        return [np.ascontiguousarray(g) for g in np.split(dout, cuts, axis=self.axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _functional(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)

    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"``{cls.__name__}(**kwargs)(inputs)``, as Keras's ``keras.layers.{merge.__name__}``."
    return merge


add, subtract, average, multiply, maximum, minimum = (
    _functional(c) for c in (Add, Subtract, Average, Multiply, Maximum, Minimum))


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``, as Keras's ``keras.layers.concatenate``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
