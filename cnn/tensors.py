"""The symbolic tensor of the functional API (:mod:`cnn.functional`), apart so
that the layers (``cnn.Input`` is one) can use it without importing the models."""
from .errors import InputError


class KerasTensor:
    """A symbolic tensor: a shape with ``None`` for the batch axis, a dtype, and
    the node that made it (None for an input)."""

    def __init__(self, sample_shape, dtype=None, node=None, name=None):
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.dtype = dtype
        self._node = node
        self.name = name

    @property
    def shape(self):
        return (None, *self.sample_shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, name={self.name}>"

    def _refuse_arithmetic(self, *args):
        raise InputError("arithmetic on symbolic tensors is not differentiated here: use a layer "
                         "(cnn.layers.Add, Subtract, Multiply, Concatenate...) so the model knows its gradient")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __neg__ = _refuse_arithmetic
    __rtruediv__ = __pow__ = __matmul__ = __rmatmul__ = _refuse_arithmetic

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):  # np.tanh(t), np.add(t, u), ...
        self._refuse_arithmetic()

    def __array_function__(self, func, types, args, kwargs):  # np.concatenate([t, u]), np.mean(t), ...
        self._refuse_arithmetic()

    def __array__(self, dtype=None, copy=None):  # np.asarray(t): a symbolic tensor holds no numbers
        self._refuse_arithmetic()
